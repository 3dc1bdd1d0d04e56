"""Decision curves against dcurves (MSKCC's Python port of Vickers' dca; pinned in
requirements/lock.txt as a test dependency only), on the example data that ships with it: the
binary net benefit of radiogenomics.evaluation.binary and the survival net benefit of
radiogenomics.evaluation.survival give its numbers wherever it gives one."""

from pathlib import Path

import dcurves
import numpy as np
import pandas as pd
import pytest

from radiogenomics.evaluation import binary as metrics, survival

DATA = Path(dcurves.__file__).parent / "data"
THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


def dcurves_table(data, **options) -> pd.DataFrame:
    with np.errstate(all="ignore"):
        table = dcurves.dca(data=data, thresholds=THRESHOLDS, **options)
    return table.set_index(["model", "threshold"])["net_benefit"].astype(float)


@pytest.mark.parametrize("model", ["cancerpredmarker", "famhistory"])
def test_binary_net_benefit_equals_dcurves(model):
    data = pd.read_csv(DATA / "df_binary.csv")
    theirs = dcurves_table(data, outcome="cancer", modelnames=[model])
    ours = metrics.net_benefit(data["cancer"], data[model], THRESHOLDS)
    np.testing.assert_allclose(ours["model"], theirs.loc[model].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(ours["treat_all"], theirs.loc["all"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(ours["treat_none"], theirs.loc["none"].to_numpy(), atol=1e-12)


def test_survival_net_benefit_equals_dcurves_where_it_is_defined():
    data = pd.read_csv(DATA / "df_surv.csv")
    horizon = 1.5
    theirs = dcurves_table(
        data, outcome="cancer", modelnames=["cancerpredmarker"], time=horizon,
        time_to_outcome_col="ttcancer",
    )
    ours = survival.survival_net_benefit(
        data["ttcancer"], data["cancer"], data["cancerpredmarker"], horizon, THRESHOLDS
    )
    model = theirs.loc["cancerpredmarker"].to_numpy()
    defined = np.isfinite(model)
    assert defined.sum() >= 50
    np.testing.assert_allclose(ours["model"][defined], model[defined], atol=1e-12)
    np.testing.assert_allclose(ours["treat_all"], theirs.loc["all"].to_numpy(), atol=1e-12)
    # dcurves leaves the net benefit undefined exactly where the follow-up of the patients
    # above the threshold ends before the horizon; there our Kaplan-Meier carries its last
    # value forward (0 when every such patient had the event), the usual KM convention.
    last_follow_up = [data.loc[data["cancerpredmarker"] >= t, "ttcancer"].max() for t in THRESHOLDS]
    treated = [(data["cancerpredmarker"] >= t).any() for t in THRESHOLDS]
    expected_undefined = np.array(treated) & (np.array(last_follow_up) < horizon)
    np.testing.assert_array_equal(~defined & np.array(treated), expected_undefined)
