"""ICC of every radiomics and deep feature over the re-read patients: results/features/robustness.tsv."""

import json
import logging
from pathlib import Path

import pandas as pd

from radiogenomics.core.io import read_tsv, write_tsv
from radiogenomics.evaluation.figures import icc_distribution_plot
from radiogenomics.core.provenance import from_snakemake
from radiogenomics.features.raters import robustness_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
reference = pd.DataFrame([json.loads(Path(p).read_text()) for p in snakemake.input.reference])
raters = [pd.DataFrame(json.loads(Path(p).read_text())) for p in snakemake.input.raters]
table = robustness_table(reference, raters, snakemake.params.form, deep=read_tsv(snakemake.input.deep))
write_tsv(table, snakemake.output.table)
icc_distribution_plot(
    table, Path(snakemake.output.png).with_suffix(""), thresholds=snakemake.params.thresholds,
    title=f"Feature robustness, {snakemake.params.form}, {table.n_patients.max()} re-read patients",
)
for source, group in table.groupby("source"):
    logging.info("%s: median ICC %.3f over %d features", source, group.icc.median(), len(group))
from_snakemake(snakemake)
