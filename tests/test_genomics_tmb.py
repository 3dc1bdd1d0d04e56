"""TMB counting by hand on a small MAF; Spearman against a rank-then-Pearson computation."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, rankdata

from radiogenomics.genomics import tmb

MAF = """#version 2.4
Hugo_Symbol\tTumor_Sample_Barcode\tVariant_Classification\tVariant_Type\tChromosome\tStart_Position
VHL\tTCGA-AA-0001-01A-11D\tMissense_Mutation\tSNP\tchr3\t10
VHL\tTCGA-AA-0001-01A-11D\tFrame_Shift_Del\tDEL\tchr3\t20
PBRM1\tTCGA-AA-0001-01A-11D\tSilent\tSNP\tchr3\t30
PBRM1\tTCGA-AA-0002-01A-11D\tNonsense_Mutation\tSNP\tchr3\t40
BAP1\tTCGA-AA-0002-01A-11D\tIntron\tSNP\tchr3\t50
SETD2\tTCGA-AA-0002-01A-11D\tSplice_Site\tSNP\tchr3\t60
TTN\tTCGA-AA-0003-01A-11D\tIn_Frame_Ins\tINS\tchr2\t70
TTN\tTCGA-AA-0003-01A-11D\t3'UTR\tSNP\tchr2\t80
"""


@pytest.fixture
def maf(tmp_path):
    path = tmp_path / "m.maf"
    path.write_text(MAF)
    return tmb.read_maf(path)


def test_tmb_counts_non_synonymous_per_megabase(maf):
    patients = ["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003", "TCGA-AA-0004"]
    table = tmb.tumour_mutation_burden(maf, patients, exome_mb=38.0).set_index("patient_id")
    # hand count: 0001 missense + frameshift = 2; 0002 nonsense + splice = 2; 0003 in-frame = 1; 0004 none
    assert table["nonsynonymous"].tolist() == [2, 2, 1, 0]
    np.testing.assert_allclose(table["tmb"], [2 / 38, 2 / 38, 1 / 38, 0])
    status = tmb.mutation_status(maf, patients)
    assert status.loc["TCGA-AA-0001", "VHL"] == 1 and "BAP1" not in status.columns
    assert status.loc["TCGA-AA-0004"].sum() == 0
    assert status.sum().to_dict() == {"PBRM1": 1, "SETD2": 1, "TTN": 1, "VHL": 1}
    # sample ids from samples.tsv map to their patients
    renamed = maf.assign(Tumor_Sample_Barcode=maf["Tumor_Sample_Barcode"].str.slice(0, 12).radd("S-"))
    mapped = tmb.tumour_mutation_burden(renamed, ["X1", "X2"], sample_map={"S-TCGA-AA-0001": "X1",
                                                                         "S-TCGA-AA-0003": "X2"})
    assert mapped["nonsynonymous"].tolist() == [2, 1]


def test_deg_tmb_spearman_matches_ranked_pearson():
    rng = np.random.default_rng(0)
    patients = [f"P{i}" for i in range(25)]
    burden = pd.DataFrame({"patient_id": patients, "tmb": rng.gamma(2, 1, size=25)})
    expression = pd.DataFrame(rng.normal(size=(3, 25)), index=["A", "B", "C"], columns=patients)
    expression.loc["A"] = burden["tmb"].to_numpy() ** 2 + rng.normal(scale=0.1, size=25)
    table = tmb.deg_tmb_correlation(expression, burden, ["A", "B", "C"]).set_index("gene")
    for gene in "ABC":
        r = pearsonr(rankdata(expression.loc[gene]), rankdata(burden["tmb"]))[0]
        assert table.loc[gene, "rho"] == pytest.approx(r)
    assert table.loc["A", "rho"] > 0.9 and table.loc["A", "padj"] < 0.01
