"""The genomics stage's shared inputs: filtered patient counts, log2 normalised expression, score groups."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import prepare_expression
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
record = prepare_expression(
    snakemake.input.counts,
    snakemake.input.samples,
    snakemake.input.scores,
    out_dir=Path(snakemake.output.normalisation).parent,
    params=snakemake.params.options,
)
logging.info("%d genes x %d patients", record["n_genes"], record["n_samples"])
from_snakemake(snakemake)
