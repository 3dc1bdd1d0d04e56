"""Shim for rule study_report: build results/report/index.html, then its provenance sidecar."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # noqa: F821 (injected by Snakemake)

from radiogenomics.provenance import from_snakemake  # noqa: E402
from radiogenomics.report import build_report  # noqa: E402

with open(snakemake.log[0], "w") as log:  # noqa: F821
    sys.stderr = log
    _, shown = build_report(
        ".",
        snakemake.config,
        out_path=snakemake.output.html,  # noqa: F821
        captions_dir=snakemake.params.captions_dir,
    )  # noqa: F821
    declared = list(snakemake.input)  # noqa: F821
    # The flow figure and Table 1 got their own, narrower sidecars from build_report.
    from_snakemake(
        snakemake,
        outputs=[snakemake.output.html],  # noqa: F821
        inputs=declared + [str(p) for p in shown if str(p) not in declared],
    )
