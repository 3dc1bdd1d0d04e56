"""Survival statistics against lifelines, statsmodels, brute force and hand calculations."""

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index
from sksurv.compare import compare_survival
from sksurv.util import Surv
from statsmodels.duration.hazard_regression import PHReg

from radiogenomics.evaluation import survival as sv


def make_cohort(n, seed, beta=1.0, censor_rate=0.05):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    event_time = rng.exponential(1.0 / (0.03 * np.exp(beta * z)))
    censor_time = np.minimum(rng.exponential(1.0 / censor_rate, n), 120.0)
    time = np.minimum(event_time, censor_time)
    event = event_time <= censor_time
    return time, event, z + rng.normal(scale=0.5, size=n)


def brute_force_censoring_km(times, events):
    """KM of the censoring distribution G(t) = P(C > t), a plain loop over distinct times."""
    grid = np.unique(times)
    survival, value = [], 1.0
    for t in grid:
        at_risk = np.sum(times >= t)
        censored = np.sum((times == t) & ~events)
        value *= 1.0 - censored / at_risk
        survival.append(value)
    grid, survival = np.asarray(grid), np.asarray(survival)
    return lambda t: survival[grid <= t][-1] if np.any(grid <= t) else 1.0


def brute_force_td_auc(train_time, train_event, time, event, risk, horizon):
    """Cumulative/dynamic AUC with IPCW weights (Uno 2007 / Hung & Chiang 2010), double sum."""
    G = brute_force_censoring_km(train_time, train_event)
    numerator = denominator = 0.0
    for i in range(len(time)):
        if not (event[i] and time[i] <= horizon):
            continue
        w = 1.0 / G(time[i])
        for j in range(len(time)):
            if time[j] > horizon:
                denominator += w
                numerator += w * ((risk[i] > risk[j]) + 0.5 * (risk[i] == risk[j]))
    return numerator / denominator


def test_harrell_c_matches_lifelines_and_brute_force():
    time, event, risk = make_cohort(80, seed=1)
    risk = np.round(risk, 1)  # force ties in risk
    ours = sv.harrell_c(time, event, risk)
    assert ours == pytest.approx(concordance_index(time, -risk, event), abs=1e-12)
    concordant = permissible = 0.0
    for i in range(len(time)):
        for j in range(len(time)):
            if event[i] and time[i] < time[j]:
                permissible += 1
                concordant += (risk[i] > risk[j]) + 0.5 * (risk[i] == risk[j])
    assert ours == pytest.approx(concordant / permissible, abs=1e-12)


def test_harrell_c_ci_contains_estimate_and_is_deterministic():
    time, event, risk = make_cohort(100, seed=2)
    a = sv.harrell_c_ci(time, event, risk, n_boot=200, seed=5)
    b = sv.harrell_c_ci(time, event, risk, n_boot=200, seed=5)
    assert a == b
    assert a["ci_low"] < a["value"] < a["ci_high"]
    assert 0.6 < a["value"] < 0.9


def test_uno_c_without_censoring_equals_harrell():
    rng = np.random.default_rng(3)
    time = rng.exponential(10, 60)
    event = np.ones(60, bool)
    risk = -time + rng.normal(scale=5, size=60)
    assert sv.uno_c(time, event, time, event, risk) == pytest.approx(
        sv.harrell_c(time, event, risk)
    )


def test_td_auc_matches_brute_force_ipcw():
    train_time, train_event, _ = make_cohort(150, seed=4, censor_rate=0.02)
    time, event, risk = make_cohort(90, seed=5, censor_rate=0.02)
    horizons = [12.0, 24.0, 36.0]
    ours = sv.td_auc(train_time, train_event, time, event, risk, horizons)
    for k, h in enumerate(horizons):
        expected = brute_force_td_auc(train_time, train_event, time, event, risk, h)
        assert ours[k] == pytest.approx(expected, abs=1e-10)


def test_td_auc_ci_table():
    train_time, train_event, _ = make_cohort(150, seed=4, censor_rate=0.02)
    time, event, risk = make_cohort(90, seed=5, censor_rate=0.02)
    table = sv.td_auc_ci(
        train_time, train_event, time, event, risk, [12.0, 24.0], n_boot=100, seed=1
    )
    assert list(table.columns) == ["horizon", "auc", "ci_low", "ci_high"]
    assert (table["ci_low"] <= table["auc"]).all() and (table["auc"] <= table["ci_high"]).all()


def test_kaplan_meier_six_patients_by_hand_and_lifelines():
    time = np.array([2.0, 3.0, 3.0, 5.0, 7.0, 9.0])
    event = np.array([1, 1, 0, 1, 0, 1], bool)
    km = sv.kaplan_meier(time, event)
    # Hand: t=2: 5/6; t=3: 5/6*4/5 = 2/3 (one death, 5 at risk); t=5: 2/3*2/3 = 4/9
    # (3 at risk after the censoring at 3); t=7 censored; t=9: 4/9 * 0 = 0.
    assert sv.survival_at(km, 2.5) == pytest.approx(5 / 6)
    assert sv.survival_at(km, 3.0) == pytest.approx(2 / 3)
    assert sv.survival_at(km, 6.0) == pytest.approx(4 / 9)
    assert sv.survival_at(km, 9.0) == pytest.approx(0.0)
    kmf = KaplanMeierFitter().fit(time, event)
    reference = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    for t in [2.0, 3.0, 5.0, 7.0]:
        assert sv.survival_at(km, t) == pytest.approx(reference.loc[t])
        assert sv.survival_at(km, t, "ci_low") == pytest.approx(ci.loc[t].iloc[0], abs=1e-6)
        assert sv.survival_at(km, t, "ci_high") == pytest.approx(ci.loc[t].iloc[1], abs=1e-6)


def test_logrank_matches_scikit_survival_two_and_three_groups():
    time, event, risk = make_cohort(120, seed=6)
    for n_groups in (2, 3):
        groups = pd.qcut(risk, n_groups, labels=False)
        _, expected = compare_survival(Surv.from_arrays(event, time), groups)
        assert sv.logrank_p(time, event, groups) == pytest.approx(expected, rel=1e-6)


def test_numbers_at_risk_by_hand():
    time = np.array([1.0, 4.0, 6.0, 8.0, 10.0, 12.0])
    groups = np.array(["high", "high", "high", "low", "low", "low"])
    table = sv.numbers_at_risk(time, groups, [0, 5, 10])
    assert table.loc["high"].tolist() == [3, 1, 0]
    assert table.loc["low"].tolist() == [3, 3, 2]


def test_censoring_weights_match_lifelines_reverse_km():
    # Without ties between an event and a censoring, G is the plain KM of the censoring times.
    rng = np.random.default_rng(4)
    event_time, censor_time = rng.exponential(10, 80), rng.exponential(15, 80)
    time, event = np.minimum(event_time, censor_time), event_time <= censor_time
    new_time = rng.uniform(0, np.quantile(time, 0.8), 30)
    new_event = rng.random(30) < 0.7
    reverse = KaplanMeierFitter().fit(time, ~event)
    G = reverse.survival_function_at_times(new_time).to_numpy()
    weights = sv.censoring_weights(time, event, new_time, new_event)
    np.testing.assert_allclose(weights[new_event], 1.0 / G[new_event], rtol=1e-12)
    assert np.all(weights[~new_event] == 0)


def test_censoring_weights_by_hand_with_a_tie():
    # t=3 a censoring with 4 at risk -> G = 3/4; t=5 an event and a censoring with 3 at risk:
    # the event leaves the censoring risk set first, so 2 are at risk, G = 3/4 * 1/2 (a plain
    # reverse KM, lifelines', would keep 3 at risk and give 3/4 * 2/3).
    time = np.array([1, 2, 3, 5, 5, 9], float)
    event = np.array([1, 1, 0, 1, 0, 1], bool)
    weights = sv.censoring_weights(time, event, time, event)
    np.testing.assert_allclose(weights, [1, 1, 0, 1 / (3 / 4 * 1 / 2), 0, 1 / (3 / 4 * 1 / 2)])


def cox_frame(n=200, seed=7):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.binomial(1, 0.4, n), "noise": rng.normal(size=n)}
    )
    hazard = 0.05 * np.exp(0.8 * frame["a"] + 0.7 * frame["b"])
    t = rng.exponential(1 / hazard)
    c = rng.exponential(40, n)
    frame["time"] = np.minimum(t, c)
    frame["event"] = (t <= c).astype(int)
    return frame


def test_cox_univariate_and_multivariate_match_statsmodels():
    frame = cox_frame()
    uni = sv.cox_univariate(frame, "time", "event", ["a", "b"])
    for name in ["a", "b"]:
        result = PHReg(frame["time"], frame[[name]], status=frame["event"], ties="efron").fit()
        row = uni.set_index("variable").loc[name]
        assert row["coef"] == pytest.approx(result.params[0], abs=1e-4)
        assert row["p"] == pytest.approx(result.pvalues[0], rel=1e-3)
    _, table = sv.cox_multivariate(frame, "time", "event", ["a", "b", "noise"])
    result = PHReg(
        frame["time"], frame[["a", "b", "noise"]], status=frame["event"], ties="efron"
    ).fit()
    np.testing.assert_allclose(table["coef"], result.params, atol=1e-4)
    np.testing.assert_allclose(table["hr"], np.exp(result.params), rtol=1e-3)
    assert (table["ci_low"] < table["hr"]).all() and (table["hr"] < table["ci_high"]).all()


def test_schoenfeld_flags_non_proportional_hazards():
    frame = cox_frame(300, seed=8)
    fitter, _ = sv.cox_multivariate(frame, "time", "event", ["a", "b"])
    ph = sv.schoenfeld_test(fitter, frame[["a", "b", "time", "event"]])
    assert list(ph["variable"]) == ["a", "b", "GLOBAL"] and list(ph["df"]) == [1, 1, 2]
    assert (ph["p"] > 0.01).all()
    # Crossing hazards: x doubles the early hazard and halves it after t = 5.
    rng = np.random.default_rng(9)
    n = 400
    x = rng.binomial(1, 0.5, n)
    early = rng.exponential(1 / np.where(x == 1, 0.4, 0.1))
    late = 5 + rng.exponential(1 / np.where(x == 1, 0.02, 0.2))
    t = np.where(early < 5, early, late)
    crossing = pd.DataFrame({"x": x, "time": np.minimum(t, 30), "event": (t < 30).astype(int)})
    fitter, _ = sv.cox_multivariate(crossing, "time", "event", ["x"])
    assert sv.schoenfeld_test(fitter, crossing)["p"].iloc[0] < 1e-3


def test_backward_stepwise_aic_matches_statsmodels_search():
    frame = cox_frame(250, seed=10)
    frame["noise2"] = np.random.default_rng(11).normal(size=len(frame))
    covariates = ["a", "b", "noise", "noise2"]
    kept, trace = sv.backward_stepwise_aic(frame, "time", "event", covariates)

    def aic(cols):
        if not cols:
            return sv.cox_aic(frame, "time", "event", [])
        res = PHReg(frame["time"], frame[cols], status=frame["event"], ties="efron").fit()
        return -2 * res.llf + 2 * len(cols)

    expected, current = list(covariates), aic(covariates)
    while expected:
        options = {c: aic([k for k in expected if k != c]) for c in expected}
        name, value = min(options.items(), key=lambda kv: (kv[1], kv[0]))
        if value >= current:
            break
        expected.remove(name)
        current = value
    assert kept == expected
    assert {"a", "b"} <= set(kept)
    assert trace["aic"].is_monotonic_decreasing


def test_null_cox_log_likelihood_matches_statsmodels_efron_with_ties():
    frame = cox_frame(60, seed=12)
    frame["time"] = np.ceil(frame["time"] / 3)  # coarse times: many tied deaths
    model = PHReg(frame["time"], frame[["a"]], status=frame["event"], ties="efron")
    assert sv.cox_aic(frame, "time", "event", []) == pytest.approx(-2 * model.loglike(np.zeros(1)))


def test_nomogram_reproduces_lifelines_prediction():
    frame = cox_frame(200, seed=13)
    fitter, _ = sv.cox_multivariate(frame, "time", "event", ["a", "b"])
    # An event time as horizon: lifelines interpolates between event times, the step
    # function (Breslow) and the interpolation agree exactly there.
    horizon = float(np.sort(frame.loc[frame["event"] == 1, "time"])[20])
    spec = sv.nomogram_spec(fitter, frame, horizon=horizon)
    assert max(
        abs(spec["coefficients"][n]) * np.ptp(frame[n]) * spec["points_per_unit_lp"]
        for n in ["a", "b"]
    ) == pytest.approx(100.0)
    patients = frame[["a", "b"]].iloc[:5]
    expected = fitter.predict_survival_function(patients, times=[horizon]).iloc[0].to_numpy()
    points = [sv.nomogram_points(spec, row) for row in patients.to_dict("records")]
    np.testing.assert_allclose(sv.nomogram_survival(spec, points), expected, rtol=1e-6)


def test_compare_c_bootstrap():
    time, event, risk = make_cohort(200, seed=14)
    same = sv.compare_c_bootstrap(time, event, risk, risk, n_boot=100, seed=0)
    assert same["difference"] == 0.0 and same["p"] == 1.0
    noise = np.random.default_rng(15).normal(size=len(time))
    different = sv.compare_c_bootstrap(time, event, risk, noise, n_boot=200, seed=0)
    assert different["difference"] == pytest.approx(
        sv.harrell_c(time, event, risk) - sv.harrell_c(time, event, noise)
    )
    assert different["p"] < 0.01 and different["ci_low"] > 0


def test_calibration_groups_use_kaplan_meier():
    time, event, risk = make_cohort(160, seed=16)
    predicted = 1 / (1 + np.exp(risk))
    table = sv.calibration_at_horizon(time, event, predicted, horizon=24.0, n_groups=4)
    assert table["n"].sum() == 160 and len(table) == 4
    members = predicted <= np.quantile(predicted, 0.25)
    kmf = KaplanMeierFitter().fit(time[members], event[members])
    assert table["observed"].iloc[0] == pytest.approx(kmf.predict(24.0))
    assert table["predicted"].iloc[0] == pytest.approx(predicted[members].mean())


def test_survival_net_benefit_hand_example():
    # 10 patients, no censoring before t=12. Events by t=12: patients 0, 1, 2, 5.
    time = np.array([3, 5, 8, 20, 30, 10, 40, 50, 60, 70], float)
    event = np.ones(10, bool)
    risk = np.array([0.9, 0.8, 0.1, 0.7, 0.6, 0.2, 0.1, 0.1, 0.1, 0.1])
    table = sv.survival_net_benefit(time, event, risk, 12.0, [0.5]).iloc[0]
    # Treated (risk >= 0.5): patients 0, 1, 3, 4 -> 2 of 4 with an event by 12: S = 0.5.
    assert table["model"] == pytest.approx(0.4 * 0.5 - 0.4 * 0.5 * 1.0)
    # Treat all: 4 events of 10 -> S = 0.6: NB = 0.4 - 0.6 * 1
    assert table["treat_all"] == pytest.approx(0.4 - 0.6)
    tp, fp = 2, 2  # same thing as counts: TP/n - FP/n * odds
    assert table["model"] == pytest.approx(tp / 10 - fp / 10 * 1.0)


def test_survival_metrics_rows():
    train_time, train_event, _ = make_cohort(150, seed=4)
    time, event, risk = make_cohort(90, seed=5)
    rows = pd.DataFrame(
        sv.survival_metrics_rows(
            "radscore",
            "test",
            train_time,
            train_event,
            time,
            event,
            risk,
            [12, 36, 10_000],
            n_boot=50,
        )
    )
    assert list(rows.columns) == ["model", "cohort", "metric", "value", "ci_low", "ci_high"]
    assert rows["metric"].tolist() == [
        "harrell_c",
        "uno_c",
        "td_auc_12",
        "td_auc_36",
        "td_auc_10000",
    ]
    assert np.isnan(rows["value"].iloc[-1]) and rows["value"].iloc[:-1].notna().all()


def test_uno_c_rows_when_test_outlives_training_follow_up():
    train_time, train_event, _ = make_cohort(100, seed=4)
    time, event, risk = make_cohort(80, seed=5)
    short = np.minimum(train_time, 20.0)
    rows = sv.survival_metrics_rows(
        "r", "external", short, train_event & (train_time <= 20), time, event, risk, [12], n_boot=20
    )
    assert np.isnan(rows[1]["value"])
    truncated = sv.survival_metrics_rows(
        "r",
        "external",
        short,
        train_event & (train_time <= 20),
        time,
        event,
        risk,
        [12],
        n_boot=20,
        uno_tau=19.0,
    )
    assert 0.5 < truncated[1]["value"] < 1.0


def test_separating_covariates_are_those_whose_cox_likelihood_has_no_maximum():
    # the tiny study's training DFS: every event has necrosis (a monotone likelihood)
    data = pd.DataFrame(
        {
            "dfs_months": [38.81, 73.10, 7.78, 33.61, 81.49, 20.60, 19.96, 25.30, 5.79, 2.26, 24.30, 39.25],
            "dfs_event": [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
            "necrosis": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1.0],
        }
    )
    # separates within risk sets only: each event has the largest value still at risk, though
    # later times have smaller values than earlier events (no split of events from the rest)
    order = data["dfs_months"].rank(ascending=False).to_numpy()
    data["falling"] = np.where(data["dfs_event"] == 1, order, order - 0.5)
    data["reversed"] = -data["necrosis"]
    data["mixed"] = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8.0]
    data["constant"] = 1.0
    columns = ["necrosis", "falling", "reversed", "mixed", "constant"]
    found = sv.separating_covariates(data, "dfs_months", "dfs_event", columns)
    assert found == ["necrosis", "falling", "reversed", "constant"]
    # the maximum-likelihood fit diverges: lifelines either raises ConvergenceError (what the
    # workflow's fit did) or stops at a huge coefficient with no usable standard error
    try:
        fitted = sv.fit_cox(data, "dfs_months", "dfs_event", ["necrosis"])
    except Exception as error:
        assert "Convergence" in type(error).__name__ + str(error)
    else:
        coef, se = fitted.params_["necrosis"], fitted.standard_errors_["necrosis"]
        assert coef > 10 and not se < coef, (coef, se)
    # statsmodels' Efron partial likelihood: rising without end in one direction, or flat
    grid = np.linspace(-5, 5, 41)
    for name in columns:
        model = PHReg(data["dfs_months"], data[[name]], status=data["dfs_event"], ties="efron")
        interior = max(model.loglike(np.array([b])) for b in grid)
        far = max(model.loglike(np.array([b])) for b in (-25.0, 25.0))
        if name in found:
            assert far >= interior - 1e-9, name
        else:
            assert interior > far + 1.0, name
