"""WGCNA co-expression modules and their correlation with the score and the selected features."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_wgcna_analysis
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
result = run_wgcna_analysis(
    out_dir=Path(snakemake.output.modules).parent,
    figures_dir=Path(snakemake.output.soft_threshold).parent,
    features_path=snakemake.input.features,
    selected_path=snakemake.input.selected,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%s", result)
from_snakemake(snakemake)
