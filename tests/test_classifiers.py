import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from radiogenomics.models.classifiers import (
    CLASSIFIERS,
    fit_classifier,
    fit_xgboost_combined,
    horizon_label,
    plot_shap_importance,
    plot_shap_summary,
    predictions_table,
    region_columns,
    region_set_models,
    region_sets,
    shap_importance,
    shap_values,
)
from radiogenomics.models.selection import SelectionChain

SMALL_GRIDS = {
    "logistic": {"C": [0.1, 1.0]},
    "svm": {"C": [1.0], "kernel": ["rbf"]},
    "random_forest": {"max_depth": [3], "min_samples_leaf": [1]},
    "lightgbm": {"n_estimators": [50], "num_leaves": [4]},
    "naive_bayes": {"var_smoothing": [1e-9]},
    "mlp": {"hidden_layer_sizes": [(8,)], "alpha": [1e-2]},
}


def toy(n=160, p=6, seed=0, imbalance=0.0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"x{j}" for j in range(p)])
    y = ((X["x0"] + X["x1"] + 0.3 * rng.normal(size=n)) > imbalance).astype(int)
    return X, y


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_each_classifier_beats_chance_on_separable_toy(name):
    X, y = toy(imbalance=0.8)  # about 30% positives: balancing matters
    Xt, yt = toy(seed=1, imbalance=0.8)
    search = fit_classifier(name, X, y, seed=0, folds=3, grid=SMALL_GRIDS[name])
    prob = search.predict_proba(Xt)[:, 1]
    assert roc_auc_score(yt, prob) > 0.85
    # balanced training: the minority class is not swamped at the default threshold
    assert np.mean(search.predict(Xt)[yt == 1]) > 0.6


def test_classifier_is_deterministic_given_seed():
    X, y = toy()
    a = fit_classifier("lightgbm", X, y, seed=4, folds=3).predict_proba(X)
    b = fit_classifier("lightgbm", X, y, seed=4, folds=3).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_permuted_training_labels_give_chance_test_auc():
    """Leakage check: the whole chain + classifier on permuted training labels."""
    aucs = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n_train, n_test, p = 150, 200, 40
        X = pd.DataFrame(
            rng.normal(size=(n_train + n_test, p)), columns=[f"f{j}" for j in range(p)]
        )
        y = ((X["f0"] - X["f1"] + 0.5 * rng.normal(size=len(X))) > 0).astype(int).to_numpy()
        train = np.arange(len(X)) < n_train
        y_permuted = rng.permutation(y[train])
        config = {
            "univariate": {"method": "mrmr", "k": 10, "mrmr_score": "f"},
            "lasso": {"folds": 5, "n_lambdas": 10},
        }
        chain = SelectionChain(config, seed=seed).fit(X[train], y_permuted)
        model = fit_classifier(
            "logistic",
            chain.transform(X[train]),
            y_permuted,
            seed=seed,
            folds=3,
            grid=SMALL_GRIDS["logistic"],
        )
        prob = model.predict_proba(chain.transform(X[~train]))[:, 1]
        aucs.append(roc_auc_score(y[~train], prob))
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs


def region_features(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    columns = {}
    for region, signal in (("whole", 0.3), ("habitat1", 0.0), ("habitat2", 1.5), ("peri", 1.2)):
        for j in range(4):
            columns[f"{region}__f{j}"] = rng.normal(size=n) + (signal * y if j == 0 else 0)
    return pd.DataFrame(columns), y


def test_region_sets_pick_best_habitat_and_build_mix():
    features, y = region_features()
    config = {"redundancy": False, "univariate": False, "lasso": {"folds": 3, "n_lambdas": 5}}
    sets, table = region_sets(features, y, ["habitat1", "habitat2"], chain_config=config, folds=3)
    assert sets["mix"] == ["habitat2", "peri"]
    assert set(sets) == {"whole", "habitat1", "habitat2", "peri", "mix"}
    assert table.set_index("habitat")["cv_auc"]["habitat2"] > 0.75
    assert region_columns(features.columns, sets["mix"]) == [
        f"habitat2__f{j}" for j in range(4)
    ] + [f"peri__f{j}" for j in range(4)]


def test_region_set_models_fit_on_train_rows_only():
    features, y = region_features(n=160)
    cohorts = np.where(np.arange(160) < 110, "train", "test")
    ids = [f"P{j:03d}" for j in range(160)]
    config = {"redundancy": False, "univariate": False, "lasso": {"folds": 3, "n_lambdas": 5}}
    grids = {"logistic": SMALL_GRIDS["logistic"]}
    sets = {"peri": ["peri"], "mix": ["habitat2", "peri"]}
    predictions, selected, funnels = region_set_models(
        features, y, cohorts, ids, sets, config, ["logistic"], seed=0, folds=3, grids=grids
    )
    assert list(predictions.columns) == [
        "patient_id",
        "cohort",
        "model",
        "region_set",
        "prediction",
    ]
    assert len(predictions) == 2 * 160
    # test labels scrambled: predictions must not change
    y_scrambled = y.copy()
    y_scrambled[110:] = 1 - y_scrambled[110:]
    again, _, _ = region_set_models(
        features,
        y_scrambled,
        cohorts,
        ids,
        sets,
        config,
        ["logistic"],
        seed=0,
        folds=3,
        grids=grids,
    )
    pd.testing.assert_frame_equal(predictions, again)
    mix = predictions[(predictions.region_set == "mix") & (predictions.cohort == "test")]
    assert roc_auc_score(y[110:], mix["prediction"]) > 0.8
    assert set(funnels["region_set"]) == {"peri", "mix"}


def survival_clinical(n=260, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "radscore": rng.normal(size=n),
            "size_cm": rng.gamma(4, 1.5, n),
            "noise": rng.normal(size=n),
        }
    )
    risk = 1.2 * X["radscore"] + 0.2 * (X["size_cm"] - 6)
    event_time = rng.exponential(30 * np.exp(-risk))
    censor = rng.uniform(6, 80, n)
    return X, np.minimum(event_time, censor), event_time <= censor


def test_horizon_label_hand_made():
    label = horizon_label([10, 20, 40, 5, 36], [1, 0, 1, 0, 1], horizon=36)
    np.testing.assert_array_equal(label, [1, np.nan, 0, np.nan, 1])


def test_xgboost_combined_shap_additivity_and_plots(tmp_path):
    X, time, event = survival_clinical()
    grid = {"max_depth": [2], "n_estimators": [20, 60], "learning_rate": [0.1]}
    search, curve = fit_xgboost_combined(X, time, event, horizon=24, seed=0, folds=4, grid=grid)
    assert list(curve["n_estimators"]) == [20, 60]
    known = ~np.isnan(horizon_label(time, event, 24))
    assert search.best_score_ > 0.7
    values, base = shap_values(search, X)
    margin = search.best_estimator_.predict(X, output_margin=True)
    np.testing.assert_allclose(values.sum(axis=1) + base, margin, atol=1e-4)
    importance = shap_importance(values)
    assert importance["feature"].iloc[0] == "radscore"
    assert importance["feature"].iloc[-1] == "noise"
    assert known.sum() < len(X)  # some censored-before-horizon rows were left out of training
    written = plot_shap_summary(values, X, tmp_path / "shap_summary")
    written += plot_shap_importance(values, tmp_path / "shap_importance")
    assert all(path.exists() and path.stat().st_size > 1000 for path in written)
    assert {path.suffix for path in written} == {".png", ".svg"}
    first = [path.read_bytes() for path in written]
    plot_shap_summary(values, X, tmp_path / "shap_summary")
    plot_shap_importance(values, tmp_path / "shap_importance")
    assert [path.read_bytes() for path in written] == first  # byte-identical reruns


def test_predictions_table_shape():
    X, y = toy(n=60)
    models = {"logistic": fit_classifier("logistic", X, y, folds=3, grid=SMALL_GRIDS["logistic"])}
    table = predictions_table(models, X.iloc[:4], ["a", "b", "c", "d"], ["test"] * 4, "whole")
    assert table["prediction"].between(0, 1).all() and len(table) == 4


def test_balanced_sample_weights_equal_uniform_priors_for_naive_bayes():
    """The documented balancing for naive Bayes: balanced weights == equal class priors."""
    from sklearn.naive_bayes import GaussianNB

    X, y = toy(imbalance=0.8)
    search = fit_classifier("naive_bayes", X, y, folds=3, grid={"var_smoothing": [1e-9]})
    scaled = search.best_estimator_.named_steps["scale"].transform(X)
    reference = GaussianNB(priors=[0.5, 0.5]).fit(scaled, y)
    np.testing.assert_allclose(search.predict_proba(X), reference.predict_proba(scaled), atol=1e-8)
