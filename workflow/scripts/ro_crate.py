"""Shim for rule ro_crate: the finished run as a Workflow Run RO-Crate, written in place."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # noqa: F821 (injected by Snakemake)

from radiogenomics.rocrate_export import export_crate  # noqa: E402

with open(snakemake.log[0], "w") as log:  # noqa: F821
    sys.stderr = log
    export_crate(
        ".", snakemake.params.snakefile, config_path=snakemake.params.configfile  # noqa: F821
    )  # noqa: F821
