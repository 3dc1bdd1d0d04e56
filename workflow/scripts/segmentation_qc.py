"""qc.tsv, the segmentation exclusions and the QC sheet (flagged patients first)."""

import json
import logging

import pandas as pd

from radiogenomics.cohort.assembly import EXCLUSION_COLUMNS
from radiogenomics.core.io import write_tsv
from radiogenomics.core.provenance import from_snakemake
from radiogenomics.segmentation.qc import qc_sheet, qc_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
records = [json.loads(open(path).read()) for path in snakemake.input.qc]
table = qc_table([{k: v for k, v in r.items() if k != "problem"} for r in records])
write_tsv(table, snakemake.output.qc)
problems = [r["problem"] for r in records if r["problem"]]
write_tsv(pd.DataFrame(problems, columns=EXCLUSION_COLUMNS), snakemake.output.exclusions)
cases = {
    patient: {"ct": ct, "tumor": tumor, "reference": reference}
    for patient, ct, tumor, reference in zip(
        snakemake.params.patients, snakemake.input.cts, snakemake.input.tumors,
        snakemake.input.references, strict=True,
    )
}  # fmt: skip
qc_sheet(table, cases, snakemake.output.png, snakemake.output.svg, window=snakemake.params.window)
logging.info("%d patients, %d flagged, %d excluded", len(table), int(table["flagged"].sum()), len(problems))
from_snakemake(snakemake)
