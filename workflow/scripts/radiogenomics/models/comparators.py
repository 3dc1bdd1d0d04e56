"""Clinical comparator scores for ccRCC, from their published rules.

SSIGN  Frank I, Blute ML, Cheville JC, Lohse CM, Weaver AL, Zincke H. An outcome prediction
       model for patients with clear cell renal cell carcinoma treated with radical nephrectomy
       based on tumor stage, size, grade and necrosis: the SSIGN score. J Urol 2002;168:2395-400
       (scoring algorithm table; 1997 TNM). Points: pT1 0, pT2 1, pT3a/b/c 2, pT4 4;
       pNx/pN0 0, pN1/pN2 2; pM0 0, pM1 4; size < 5 cm 0, >= 5 cm 2; nuclear grade 1-2 0,
       3 1, 4 3; histologic tumour necrosis 2. Range 0-17. Outcome categories of the paper's
       survival table: 0-2, 3-4, 5-6, 7-9, >= 10.
UISS   Zisman A, Pantuck AJ, Wieder J, et al. Risk group assessment and clinical outcome
       algorithm to predict the natural history of patients with surgically resected renal cell
       carcinoma. J Clin Oncol 2002;20:4559-66 (UISS algorithm figure, localized N0M0 branch;
       first described in J Clin Oncol 2001;19:1649-57). Localized disease:
         low:          T1, Fuhrman grade 1-2, ECOG 0
         intermediate: T1 G1-2 ECOG >= 1; T1 G3-4 any ECOG; T2 any; T3 G1 any ECOG;
                       T3 G2-4 ECOG 0
         high:         T3 G2-4 ECOG >= 1; T4 any
       The metastatic branch (N1-2 or M1) is not implemented: its published cell definitions
       could not be verified from a primary source here, so metastatic patients get NaN.

Karakiewicz PI, Briganti A, Chun FK, et al. Multi-institutional validation of a new renal
cancer-specific survival nomogram. J Clin Oncol 2007;25:1316-22. Inputs: 2002 TNM stage, tumour
size, Fuhrman grade and the symptom classification (asymptomatic / local / systemic); output:
points and the predicted 1-, 2-, 5- and 10-year cancer-specific survival. Not computed: its point
values are printed only as the axes of the nomogram figure, no transcription of them could be
found in any source available to this project (only the abstract), and point values guessed
from memory would make a comparator that is not the published one.
:func:`karakiewicz_gap` says so at run time and names the inputs a cohort lacks (neither the
synthetic cohort nor GDC's case records have the symptom classification).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from ..core.cases import BadCase

T_PATTERN = re.compile(r"^[pcy]?T([1-4])([abc]?)$", re.IGNORECASE)
N_PATTERN = re.compile(r"^[pcy]?N([0-2X])$", re.IGNORECASE)
M_PATTERN = re.compile(r"^[pcy]?M([01X])$", re.IGNORECASE)

UISS_GROUPS = {1: "low", 2: "intermediate", 3: "high"}
KARAKIEWICZ_INPUTS = ("t_stage", "n_stage", "m_stage", "size_cm", "grade", "symptoms")
SSIGN_CATEGORIES = [(0, 2), (3, 4), (5, 6), (7, 9), (10, 17)]


def parse_t(value) -> tuple[int, str]:
    """'pT3a' -> (3, 'a'); raises ValueError on anything else."""
    match = T_PATTERN.match(str(value).strip())
    if not match:
        raise ValueError(f"T stage {value!r} is not one of T1, T1a..T4 (optional p/c prefix)")
    return int(match.group(1)), match.group(2).lower()


def _n_positive(value) -> bool:
    match = N_PATTERN.match(str(value).strip())
    if not match:
        raise ValueError(f"N stage {value!r} is not one of N0, N1, N2, NX")
    return match.group(1) in ("1", "2")


def _m_positive(value) -> bool:
    match = M_PATTERN.match(str(value).strip())
    if not match:
        raise ValueError(f"M stage {value!r} is not one of M0, M1, MX")
    return match.group(1) == "1"


def _grade(value) -> int:
    grade = int(value)
    if grade not in (1, 2, 3, 4):
        raise ValueError(f"grade {value!r} is not a Fuhrman/ISUP grade 1-4")
    return grade


def ssign_score(t_stage, n_stage, m_stage, size_cm, grade, necrosis) -> int:
    """SSIGN points (Frank et al. 2002). NX counts as N0 and MX as M0, as in the paper."""
    t, _ = parse_t(t_stage)
    size = float(size_cm)
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"tumour size {size_cm!r} cm is not a positive number")
    points = {1: 0, 2: 1, 3: 2, 4: 4}[t]
    points += 2 if _n_positive(n_stage) else 0
    points += 4 if _m_positive(m_stage) else 0
    points += 2 if size >= 5.0 else 0
    points += {1: 0, 2: 0, 3: 1, 4: 3}[_grade(grade)]
    points += 2 if bool(int(necrosis)) else 0
    return points


def ssign_category(score: int) -> str:
    """The outcome category of Frank et al.'s survival table, e.g. '3-4' or '>=10'."""
    for low, high in SSIGN_CATEGORIES:
        if low <= score <= high:
            return ">=10" if low == 10 else f"{low}-{high}"
    raise ValueError(f"SSIGN score {score} outside 0-17")


def uiss_risk(t_stage, n_stage, m_stage, grade, ecog) -> float:
    """UISS risk group for localized disease: 1 low, 2 intermediate, 3 high; NaN if metastatic."""
    t, _ = parse_t(t_stage)
    g = _grade(grade)
    performance = int(ecog)
    if performance < 0 or performance > 4:
        raise ValueError(f"ECOG performance status {ecog!r} is not 0-4")
    if _n_positive(n_stage) or _m_positive(m_stage):
        return float("nan")
    if t == 4:
        return 3.0
    if t == 3:
        if g == 1 or performance == 0:
            return 2.0
        return 3.0
    if t == 2:
        return 2.0
    return 1.0 if (g <= 2 and performance == 0) else 2.0


def score_table(
    clinical: pd.DataFrame,
    scores=("ssign", "uiss"),
    source: str = "results/cohort/clinical.tsv",
    assume_n0m0: bool = False,
) -> pd.DataFrame:
    """Comparator scores per patient: patient_id, ssign, ssign_category, uiss, uiss_group.

    Needs t_stage, size_cm, grade, necrosis (SSIGN) and ecog (UISS); n_stage and m_stage are
    taken as N0/M0 when absent only if ``assume_n0m0`` (e.g. a cohort of localized tumours).
    A patient with an unusable value raises BadCase naming the patient and the column.
    """
    table = clinical.copy()
    for column, fill in (("n_stage", "N0"), ("m_stage", "M0")):
        if column not in table:
            if not assume_n0m0:
                raise ValueError(
                    f"{source}: column {column} missing; set assume_n0m0 for localized cohorts"
                )
            table[column] = fill
    needed = {
        "ssign": ["t_stage", "size_cm", "grade", "necrosis"],
        "uiss": ["t_stage", "grade", "ecog"],
    }
    missing = sorted({c for s in scores for c in needed[s] if c not in table})
    if missing:
        raise ValueError(f"{source}: columns {missing} are needed for scores {list(scores)}")
    rows = []
    for record in table.to_dict("records"):
        row = {"patient_id": record["patient_id"]}
        try:
            if "ssign" in scores:
                row["ssign"] = ssign_score(
                    record["t_stage"],
                    record["n_stage"],
                    record["m_stage"],
                    record["size_cm"],
                    record["grade"],
                    record["necrosis"],
                )
                row["ssign_category"] = ssign_category(row["ssign"])
            if "uiss" in scores:
                row["uiss"] = uiss_risk(
                    record["t_stage"],
                    record["n_stage"],
                    record["m_stage"],
                    record["grade"],
                    record["ecog"],
                )
                row["uiss_group"] = (
                    UISS_GROUPS[int(row["uiss"])]
                    if np.isfinite(row["uiss"])
                    else "metastatic (not scored)"
                )
        except (ValueError, TypeError) as error:
            raise BadCase(
                record["patient_id"],
                source,
                f"clinical comparator score: {error}",
                "correct the clinical value (T as T1a..T4, N0-2/NX, M0/M1, grade 1-4, "
                "necrosis 0/1, size in cm, ECOG 0-4)",
                stage="models",
            ) from error
        rows.append(row)
    return pd.DataFrame(rows)


def karakiewicz_gap(clinical: pd.DataFrame, source: str = "results/cohort/clinical.tsv") -> str:
    """Why the Karakiewicz nomogram is not among the comparators of ``clinical``: the missing
    inputs (by column name), and the missing published point values in every case."""
    missing = [c for c in KARAKIEWICZ_INPUTS if c not in clinical]
    inputs = f"{source} lacks column(s) {missing}; " if missing else ""
    return (
        f"Karakiewicz nomogram (J Clin Oncol 2007) not computed: {inputs}its published point "
        "values (a figure in the paper) are not transcribed in this project"
    )
