"""Parity with R (survival 3.5, glmnet 4.1) on data that ships with R and on the synthetic cohort.

R's outputs are stored in tests/reference/survival/ (made by make.R there; `make reference`).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radiogenomics.models import lasso_cox
from radiogenomics.evaluation import survival as sv
from radiogenomics.models.selection import lasso_cox_cv, survival_target

REFERENCE = Path(__file__).parent / "reference" / "survival"
COX_MODELS = {
    "lung": ["age", "sex", "ph_ecog", "ph_karno", "wt_loss"],
    "veteran": ["trt", "karno", "diagtime", "age", "prior", "smallcell", "adeno", "large"],
    "synthetic": ["age", "size_cm", "grade", "ecog", "mvi", "UP_Z001", "DOWN_Z001"],
}
LASSO_SETS = ["coxexample", "veteran", "lung", "synthetic"]


def cox_data(name):
    return pd.read_csv(REFERENCE / ("synthetic_cohort.csv" if name == "synthetic" else f"{name}.csv"))


def lasso_input(name):
    table = pd.read_csv(REFERENCE / f"lasso_{name}_input.csv")
    X = table.drop(columns=["time", "status", "foldid"])
    return X, table["time"].to_numpy(float), table["status"].to_numpy(bool), table["foldid"]


@pytest.mark.parametrize("name", COX_MODELS)
def test_fit_cox_matches_coxph(name):
    data, covariates = cox_data(name), COX_MODELS[name]
    reference = pd.read_csv(REFERENCE / f"coxph_{name}.csv").set_index("variable")
    fitter = sv.fit_cox(data, "time", "status", covariates)
    summary = fitter.summary.loc[covariates]
    np.testing.assert_allclose(fitter.params_[covariates], reference["coef"], rtol=1e-6)
    np.testing.assert_allclose(summary["se(coef)"], reference["se"], rtol=1e-6)
    np.testing.assert_allclose(summary["p"], reference["p"], rtol=1e-5)
    loglik = json.loads((REFERENCE / f"coxph_{name}.json").read_text())["loglik"]
    assert fitter.log_likelihood_ == pytest.approx(loglik[1], rel=1e-10)


@pytest.mark.parametrize("transform", ["km", "rank", "identity"])
@pytest.mark.parametrize("name", COX_MODELS)
def test_schoenfeld_test_matches_cox_zph(name, transform):
    data, covariates = cox_data(name), COX_MODELS[name]
    reference = pd.read_csv(REFERENCE / f"zph_{name}_{transform}.csv")
    fitter = sv.fit_cox(data, "time", "status", covariates)
    table = sv.schoenfeld_test(fitter, data, transform)
    assert list(table["variable"]) == list(reference["term"])  # per covariate, then GLOBAL
    assert list(table["df"]) == list(reference["df"])
    np.testing.assert_allclose(table["statistic"], reference["chisq"], rtol=1e-4)
    np.testing.assert_allclose(table["p"], reference["p"], atol=1e-4)


def test_schoenfeld_default_is_km():
    data, covariates = cox_data("veteran"), COX_MODELS["veteran"]
    fitter = sv.fit_cox(data, "time", "status", covariates)
    reference = pd.read_csv(REFERENCE / "zph_veteran_km.csv")
    np.testing.assert_allclose(sv.schoenfeld_test(fitter, data)["p"], reference["p"], atol=1e-4)
    assert reference.loc[reference["term"] == "karno", "p"].item() < 0.01  # known non-PH


@pytest.mark.parametrize("name", LASSO_SETS)
def test_coxnet_path_matches_glmnet(name):
    X, time, event, _ = lasso_input(name)
    reference = pd.read_csv(REFERENCE / f"lasso_{name}_path.csv")
    beta = pd.read_csv(REFERENCE / f"lasso_{name}_beta.csv").set_index("variable")
    lambdas, coefficients = lasso_cox.coxnet_path(X, time, event)
    assert len(lambdas) == len(reference)  # glmnet's early stop
    np.testing.assert_allclose(lambdas, reference["lambda"], rtol=1e-10)
    assert np.array_equal(coefficients != 0, beta.to_numpy() != 0)  # same support everywhere
    np.testing.assert_allclose(coefficients, beta.to_numpy(), atol=1e-8)
    # at R's lambdas (no early stop), too
    _, fixed = lasso_cox.coxnet_path(X, time, event, lambdas=reference["lambda"].to_numpy())
    assert np.array_equal(fixed != 0, beta.to_numpy() != 0)


@pytest.mark.parametrize("measure", ["deviance", "C"])
@pytest.mark.parametrize("name", LASSO_SETS)
def test_cv_coxnet_matches_cv_glmnet(name, measure):
    X, time, event, foldid = lasso_input(name)
    reference = pd.read_csv(REFERENCE / f"lasso_{name}_cv_{measure}.csv")
    choice = json.loads((REFERENCE / f"lasso_{name}_cv_{measure}.json").read_text())
    cv = lasso_cox.cv_coxnet(X.to_numpy(), time, event, foldid.to_numpy(), measure)
    np.testing.assert_allclose(cv["cv_mean"], reference["cvm"], rtol=1e-6)
    np.testing.assert_allclose(cv["cv_se"], reference["cvsd"], rtol=1e-5)
    assert cv["index_min"] + 1 == choice["index_min"]
    assert cv["index_1se"] + 1 == choice["index_1se"]
    genes = X.columns.to_numpy()
    assert list(genes[cv["coefficients"][:, cv["index_min"]] != 0]) == choice["genes_min"]
    assert list(genes[cv["coefficients"][:, cv["index_1se"]] != 0]) == choice["genes_1se"]


@pytest.mark.parametrize(("rule", "scoring"), [("1se", "deviance"), ("min", "cindex")])
def test_lasso_cox_cv_selects_cv_glmnets_genes(rule, scoring):
    X, time, event, foldid = lasso_input("synthetic")
    measure = "deviance" if scoring == "deviance" else "C"
    choice = json.loads((REFERENCE / f"lasso_synthetic_cv_{measure}.json").read_text())
    coefficients, table = lasso_cox_cv(
        X, survival_target(time, event), rule=rule, scoring=scoring, foldid=foldid
    )
    assert list(coefficients[coefficients != 0].index) == choice[f"genes_{rule}"]
    chosen = table.loc[table["chosen"], "lambda"].item()
    assert chosen == pytest.approx(choice[f"lambda_{rule}"], rel=1e-10)


def test_lasso_path_does_not_depend_on_row_order_with_tied_times():
    # lung in days ties deaths with censorings; glmnet's fit changes with row order there
    # (tie_order.json); ours counts a tied censoring at risk whatever the order.
    data = cox_data("lung")
    X = data[COX_MODELS["lung"]].to_numpy(float)
    time, event = data["time"].to_numpy(float), data["status"].to_numpy(bool)
    lambdas, coefficients = lasso_cox.coxnet_path(X, time, event)
    order = np.random.default_rng(0).permutation(len(time))
    _, permuted = lasso_cox.coxnet_path(X[order], time[order], event[order], lambdas=lambdas)
    np.testing.assert_allclose(permuted, coefficients, atol=1e-10)
    measured = json.loads((REFERENCE / "tie_order.json").read_text())
    assert measured["lung_days_max_coefficient_change_over_8_row_permutations"] > 1e-5
    assert measured["lung_months_max_coefficient_change_over_8_row_permutations"] < 1e-12


@pytest.mark.parametrize("name", LASSO_SETS)
def test_cox_deviance_matches_coxnet_deviance(name):
    X, time, event, _ = lasso_input(name)
    reference = pd.read_csv(REFERENCE / f"lasso_{name}_path.csv")
    beta = pd.read_csv(REFERENCE / f"lasso_{name}_beta.csv").set_index("variable").to_numpy()
    deviance = lasso_cox.cox_deviance(X.to_numpy() @ beta, time, event)
    np.testing.assert_allclose(deviance, reference["deviance"], rtol=1e-10)
    # ... and the deviance ratio glmnet's early stop reads
    null = lasso_cox.cox_deviance(np.zeros(len(time)), time, event)
    np.testing.assert_allclose(1 - deviance / null, reference["dev_ratio"], atol=1e-10)
