"""results/imaging/registration.tsv: metric per patient and phase, and the error against truth."""

import json
import logging
from pathlib import Path

import pandas as pd

from radiogenomics.core.io import write_tsv
from radiogenomics.core.provenance import from_snakemake
from radiogenomics.imaging.registration import registration_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)
records = [json.loads(Path(path).read_text()) for path in snakemake.input.records]
truth, targets = None, None
if "truth" in snakemake.input.keys():
    truth = pd.read_csv(snakemake.input.truth, sep="\t", dtype={"patient_id": str})
    # results/truth/{patient}/habitats.nii.gz: the planted tumour on the reference grid
    targets = {Path(path).parent.name: path for path in snakemake.input.targets}
table = registration_table(records, truth, targets)
logging.info("%d registered phases; median TRE %s mm", len(table), table["tre_mm"].median())
write_tsv(table, snakemake.output[0])
from_snakemake(snakemake)
