"""summary.json of the genomics stage, from the analyses' outputs."""

import logging

from radiogenomics.genomics.pipeline import write_summary
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
summary = write_summary(snakemake.input.normalisation, snakemake.input.deg, snakemake.input.network, snakemake.output[0])
logging.info("%s", summary)
from_snakemake(snakemake)
