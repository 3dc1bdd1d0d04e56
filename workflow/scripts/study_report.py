"""Study report: results/report/index.html, then its provenance sidecar."""

import logging

from radiogenomics.core.provenance import from_snakemake
from radiogenomics.reporting.report import build_report

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
page, shown = build_report(
    ".",
    snakemake.config,
    out_path=snakemake.output.html,
    captions_dir=snakemake.params.captions_dir,
    declared=snakemake.params.declared,
)
logging.info("wrote %s showing %d files", page, len(shown))
declared = list(snakemake.input)
# The flow figure and Table 1 got their own, narrower sidecars from build_report.
from_snakemake(
    snakemake,
    outputs=[snakemake.output.html],
    inputs=declared + [str(p) for p in shown if str(p) not in declared],
)
