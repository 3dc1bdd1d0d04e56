"""How much of the planted biology the genomics stage recovered (synthetic studies)."""

import logging
from pathlib import Path

import pandas as pd

from radiogenomics.genomics.recovery import evaluate
from radiogenomics.core.io import write_tsv
from radiogenomics.core.provenance import from_snakemake

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
metrics = evaluate(Path(snakemake.input.deg).parent, Path(snakemake.input.truth).parent)
write_tsv(pd.DataFrame(sorted(metrics.items()), columns=["metric", "value"]), snakemake.output[0])
logging.info("%s", metrics)
from_snakemake(snakemake)
