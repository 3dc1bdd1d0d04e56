"""The finished run as a Workflow Run RO-Crate, written in place (ro-crate-metadata.json)."""

import logging

from radiogenomics.reporting.rocrate import export_crate

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
metadata = export_crate(".", snakemake.params.snakefile, config_path=snakemake.params.configfile)
logging.info("wrote %s", metadata)
