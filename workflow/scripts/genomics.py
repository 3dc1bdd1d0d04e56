"""Every radiogenomics analysis of the study, tables and figures."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_genomics
from radiogenomics.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
figures_dir = Path(snakemake.output.volcano).parent
summary = run_genomics(
    counts_path=snakemake.input.counts,
    samples_path=snakemake.input.samples,
    scores_path=snakemake.input.scores,
    out_dir=Path(snakemake.output.deg).parent,
    figures_dir=figures_dir,
    gene_set_paths=snakemake.params.libraries,
    estimate_gmt=snakemake.input.estimate_gmt,
    signature_path=snakemake.input.signature,
    maf_path=snakemake.input.get("maf"),
    clinical_path=snakemake.input.clinical,
    features_path=snakemake.input.features,
    selected_path=snakemake.input.selected,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%s", summary)
# run_genomics also writes companion tables and optional figures beyond the declared outputs.
tables_dir = Path(snakemake.output.deg).parent
written = [p for p in figures_dir.glob("genomics_*") if p.suffix in (".png", ".svg")]
written += [p for p in tables_dir.iterdir() if p.suffix in (".tsv", ".json") and ".prov" not in p.name and p.stem != "truth_recovery"]
from_snakemake(snakemake, outputs=sorted(set(map(str, snakemake.output)) | set(map(str, written))))
