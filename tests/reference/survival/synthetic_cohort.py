"""Write synthetic_cohort.csv, the synthetic-cohort input of make.R (run from the repository root:
``.venv/bin/python tests/reference/survival/synthetic_cohort.py``).

160 patients of the project's synthetic generator: overall survival in whole months (so that
deaths and censorings tie, as in registry data), clinical covariates, and log2 CPM of 40 genes
(20 planted up, 10 planted down, 10 background): a radiogenomic LASSO-Cox candidate list.
"""

from pathlib import Path
import sys

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
from radiogenomics.cohort.synthetic import generator as synthetic, omics as synthetic_omics  # noqa: E402

params = synthetic.resolve_params({"n_internal": 160, "n_external": 0, "n_genes": 600})
cohort = synthetic.simulate_cohort(params)
omics = synthetic_omics.simulate_omics(params, cohort["truth"])
counts = omics["counts"].set_index("gene")
log_cpm = np.log2(counts / counts.sum() * 1e6 + 1.0)
de = omics["de_genes"]
planted = set(de["gene"]) | set(omics["modules"]["gene"])
genes = (
    list(de.loc[de["direction"] == "up", "gene"][:20])
    + list(de.loc[(de["direction"] == "down") & (de["kind"] == "planted_de"), "gene"][:10])
    + [g for g in counts.index if g not in planted][:10]
)
clinical = cohort["clinical"]
table = pd.DataFrame(
    {
        "patient_id": clinical["patient_id"],
        "time": np.maximum(np.round(clinical["os_months"]), 1.0),
        "status": clinical["os_event"].astype(int),
        "age": clinical["age"],
        "size_cm": clinical["size_cm"],
        "grade": clinical["grade"],
        "ecog": clinical["ecog"],
        "mvi": clinical["mvi"],
    }
)
expression = log_cpm.loc[genes].T.round(6).reset_index(drop=True)
table = pd.concat([table, expression], axis=1)
table.to_csv(Path(__file__).with_name("synthetic_cohort.csv"), index=False)
