"""Table 1 against tableone (Pollard et al., JAMIA Open 2018; pinned in requirements/lock.txt as
a test dependency only): the same summaries and, test by test, the same p-values.

One deliberate difference: for a skewed variable in two cohorts the report uses the
Mann-Whitney U test (with continuity correction, as R's wilcox.test and SPSS report it), where
tableone uses Kruskal-Wallis for any number of groups; with three or more cohorts both use
Kruskal-Wallis.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from tableone import TableOne

from radiogenomics.reporting import report

CONTINUOUS, NONNORMAL = ["age", "size_cm"], ["size_cm"]


def clinical(cohorts, n=90, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "cohort": rng.choice(cohorts, n),
            "age": rng.normal(60, 10, n).round(0),
            "size_cm": rng.lognormal(1.3, 0.5, n).round(1),
            "sex": rng.choice(["F", "M"], n),
            "grade": rng.choice(["1", "2", "3", "4"], n),
            "mvi": np.where(rng.random(n) < 0.08, "1", "0"),  # rare: small expected counts
        }
    )


def theirs(data, categorical) -> TableOne:
    return TableOne(
        data, columns=[*CONTINUOUS, *categorical], categorical=categorical, groupby="cohort",
        nonnormal=NONNORMAL, pval=True, htest_name=True, decimals=1,
    )  # fmt: skip


def our_p(data, variable) -> tuple[float, str]:
    groups = [data.loc[data.cohort == g, variable] for g in sorted(set(data.cohort))]
    if variable in CONTINUOUS:
        return report.continuous_test([g.to_numpy(float) for g in groups], variable not in NONNORMAL)
    return report.categorical_test(pd.crosstab(data[variable], data.cohort))


def summaries(table: pd.DataFrame) -> set[str]:
    """Every summary cell, formatting aside ("%" and the space after a comma)."""
    return {str(cell).replace("%", "").replace(", ", ",") for cell in table.to_numpy().ravel()}


@pytest.mark.parametrize(
    "variable, test",
    [("age", "One-way ANOVA"), ("size_cm", "Kruskal-Wallis"), ("sex", "Chi-squared"),
     ("grade", "Chi-squared (warning: expected count < 5)")],
)  # fmt: skip
def test_three_cohorts_give_tableones_p_values(variable, test):
    data = clinical(["train", "test", "external"])
    table = theirs(data, ["sex", "grade"]).htest_table
    assert table.loc[variable, "Test"] == test
    assert our_p(data, variable)[0] == pytest.approx(float(table.loc[variable, "P-Value"]), rel=1e-10)


@pytest.mark.parametrize("variable, test", [("age", "Welch’s T-test"), ("mvi", "Fisher's exact")])
def test_two_cohorts_give_tableones_welch_and_fisher(variable, test):
    data = clinical(["train", "test"])
    table = theirs(data, ["mvi"]).htest_table
    assert table.loc[variable, "Test"] == test
    p, ours = our_p(data, variable)
    assert ours in ("Welch t-test", "Fisher exact")
    assert p == pytest.approx(float(table.loc[variable, "P-Value"]), rel=1e-10)


def test_skewed_variable_in_two_cohorts_is_mann_whitney_not_kruskal_wallis():
    data = clinical(["train", "test"])
    table = theirs(data, ["mvi"]).htest_table
    train, test = (data.loc[data.cohort == g, "size_cm"] for g in ("test", "train"))
    assert float(table.loc["size_cm", "P-Value"]) == pytest.approx(stats.kruskal(train, test).pvalue)
    p, name = our_p(data, "size_cm")
    assert name == "Mann-Whitney U"
    assert p == pytest.approx(stats.mannwhitneyu(train, test, alternative="two-sided").pvalue)


def test_summaries_equal_tableones():
    data = clinical(["train", "test", "external"])
    ours = report.baseline_table(data, continuous=CONTINUOUS, categorical=["sex", "grade"], nonnormal=NONNORMAL)
    cells = ours.drop(columns=["variable", "level", "p", "test"])
    expected = theirs(data, ["sex", "grade"]).tableone.drop(columns=[("Grouped by cohort", c) for c in ("Missing", "P-Value", "Test")])
    expected = expected.drop(index=[("n", "")])
    assert len(summaries(cells)) > 15
    assert summaries(cells) == summaries(expected) - {""}
