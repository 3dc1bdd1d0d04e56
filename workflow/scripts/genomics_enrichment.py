"""Gene-set enrichment of the DEGs (ORA + prerank GSEA) and of the score's WGCNA modules (ORA)."""

import logging
from pathlib import Path

from radiogenomics.genomics.pipeline import run_enrichment_analysis
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
table = run_enrichment_analysis(
    out_dir=Path(snakemake.output.enrichment).parent,
    figures_dir=Path(snakemake.output.dotplot).parent,
    gene_set_paths=snakemake.params.libraries,
    params=snakemake.params.options,
    threads=snakemake.threads,
)
logging.info("%d enrichment rows", len(table))
from_snakemake(snakemake)
