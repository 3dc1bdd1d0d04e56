"""SSIGN and UISS on worked examples computed by hand from the published tables."""

import math

import pandas as pd
import pytest

from radiogenomics.models import comparators as cs
from radiogenomics.core.cases import BadCase


@pytest.mark.parametrize(
    ("t", "n", "m", "size", "grade", "necrosis", "expected"),
    [
        # pT1a 0 + N0 0 + M0 0 + 3 cm 0 + grade 2 0 + no necrosis 0 = 0
        ("pT1a", "N0", "M0", 3.0, 2, 0, 0),
        # pT1b 0 + 0 + 0 + 6 cm 2 + grade 3 1 + necrosis 2 = 5
        ("T1b", "N0", "M0", 6.0, 3, 1, 5),
        # pT2 1 + 0 + 0 + 8 cm 2 + grade 4 3 + 0 = 6
        ("T2a", "NX", "M0", 8.0, 4, 0, 6),
        # pT3b 2 + N1 2 + 0 + exactly 5 cm 2 + grade 3 1 + necrosis 2 = 9
        ("pT3b", "pN1", "M0", 5.0, 3, 1, 9),
        # the maximum: pT4 4 + N2 2 + M1 4 + 12 cm 2 + grade 4 3 + necrosis 2 = 17
        ("T4", "N2", "M1", 12.0, 4, 1, 17),
        # 4.9 cm stays below the 5 cm cut: pT3a 2 + 0 + 0 + 0 + grade 1 0 + 0 = 2
        ("T3a", "N0", "MX", 4.9, 1, 0, 2),
    ],
)
def test_ssign_worked_examples(t, n, m, size, grade, necrosis, expected):
    assert cs.ssign_score(t, n, m, size, grade, necrosis) == expected


def test_ssign_categories():
    assert [cs.ssign_category(s) for s in (0, 2, 3, 5, 7, 9, 10, 17)] == [
        "0-2",
        "0-2",
        "3-4",
        "5-6",
        "7-9",
        "7-9",
        ">=10",
        ">=10",
    ]


@pytest.mark.parametrize(
    ("t", "grade", "ecog", "expected"),
    [
        ("T1a", 1, 0, 1),  # T1 G1-2 ECOG 0: low
        ("T1b", 2, 1, 2),  # T1 G1-2 ECOG >= 1: intermediate
        ("T1a", 3, 0, 2),  # T1 G3-4: intermediate
        ("T2", 4, 2, 2),  # T2 any: intermediate
        ("T3a", 1, 2, 2),  # T3 G1 any ECOG: intermediate
        ("T3c", 3, 0, 2),  # T3 G2-4 ECOG 0: intermediate
        ("T3b", 2, 1, 3),  # T3 G2-4 ECOG >= 1: high
        ("T4", 1, 0, 3),  # T4 any: high
    ],
)
def test_uiss_localized_table(t, grade, ecog, expected):
    assert cs.uiss_risk(t, "N0", "M0", grade, ecog) == expected


def test_uiss_metastatic_not_scored():
    assert math.isnan(cs.uiss_risk("T2", "N1", "M0", 2, 0))
    assert math.isnan(cs.uiss_risk("T2", "N0", "M1", 2, 0))


def test_score_table_and_bad_case():
    clinical = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "t_stage": ["T1a", "T3a"],
            "size_cm": [3.0, 7.5],
            "grade": [2, 3],
            "necrosis": [0, 1],
            "ecog": [0, 1],
        }
    )
    table = cs.score_table(clinical, assume_n0m0=True)
    assert table["ssign"].tolist() == [0, 7]  # P2: T3a 2 + size 2 + grade 3 1 + necrosis 2
    assert table["uiss_group"].tolist() == ["low", "high"]
    with pytest.raises(ValueError, match="n_stage"):
        cs.score_table(clinical)
    clinical.loc[1, "t_stage"] = "T5"
    with pytest.raises(BadCase) as error:
        cs.score_table(clinical, assume_n0m0=True)
    assert error.value.patient_id == "P2" and "T5" in error.value.reason


def test_karakiewicz_gap_names_the_missing_inputs():
    # The synthetic cohort's comparator columns: everything but the symptom classification.
    synthetic = pd.DataFrame(
        columns=["patient_id", "t_stage", "n_stage", "m_stage", "size_cm", "grade", "ecog"]
    )
    message = cs.karakiewicz_gap(synthetic, "clinical.tsv")
    assert "clinical.tsv lacks column(s) ['symptoms']" in message
    # GDC's case records (public.gdc.harmonise_clinical) have neither N/M stage nor symptoms.
    gdc = pd.DataFrame(columns=["patient_id", "t_stage", "grade", "size_cm"])
    assert "['n_stage', 'm_stage', 'symptoms']" in cs.karakiewicz_gap(gdc)
    complete = synthetic.assign(symptoms=[])
    message = cs.karakiewicz_gap(complete)
    assert "lacks" not in message and "point values" in message
