"""Every figure kind is written as non-empty PNG + SVG, byte-identical across two calls."""

import numpy as np
import pandas as pd
import pytest

from radiogenomics.evaluation import binary as mt
from radiogenomics.evaluation import figures as plots
from radiogenomics.evaluation import survival as sv


def survival_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    t = rng.exponential(1 / (0.03 * np.exp(z)))
    c = np.minimum(rng.exponential(60, n), 72)
    frame = pd.DataFrame(
        {
            "time": np.minimum(t, c),
            "event": (t <= c).astype(int),
            "z": z,
            "stage": rng.binomial(1, 0.3, n),
        }
    )
    frame["group"] = np.where(z > 0, "high", "low")
    return frame


def binary_data(n=120, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.4, n)
    score = 1 / (1 + np.exp(-(1.5 * y - 0.75 + rng.normal(size=n))))
    return y, score


def figure_makers():
    frame = survival_data()
    y, score = binary_data()
    fitter, hazards = sv.cox_multivariate(frame, "time", "event", ["z", "stage"])
    td = pd.DataFrame(
        {
            "model": ["radscore"] * 2 + ["SSIGN"] * 2,
            "horizon": [12, 36] * 2,
            "auc": [0.8, 0.75, 0.7, 0.65],
            "ci_low": [0.7, 0.65, 0.6, 0.55],
            "ci_high": [0.9, 0.85, 0.8, 0.75],
        }
    )
    calibration = sv.calibration_at_horizon(
        frame["time"], frame["event"], 1 / (1 + np.exp(frame["z"])), 24.0, 4
    )
    thresholds = np.linspace(0.05, 0.6, 12)
    return {
        "km": lambda stem: plots.kaplan_meier_plot(
            frame["time"], frame["event"], frame["group"], stem, [0, 12, 24, 36, 48, 60, 72]
        ),
        "forest": lambda stem: plots.forest_plot(hazards, stem),
        "roc": lambda stem: plots.roc_plot(
            {"model": (y, score), "noise": (y, np.linspace(0, 1, len(y)))}, stem
        ),
        "td_auc": lambda stem: plots.td_auc_plot(td, stem),
        "calibration": lambda stem: plots.calibration_plot(
            {"Cox": calibration, "LR": mt.calibration_curve(y, score, 4)}, stem
        ),
        "dca": lambda stem: plots.decision_curve_plot(
            {"model": mt.net_benefit(y, score, thresholds)}, stem
        ),
        "confusion": lambda stem: plots.confusion_matrix_plot(
            mt.confusion_matrix(y, score, 0.5), stem, ["T1-T2", "T3-T4"]
        ),
        "nomogram": lambda stem: plots.nomogram_plot(sv.nomogram_spec(fitter, frame, 36.0), stem),
        "icc": lambda stem: plots.icc_distribution_plot(icc_table(), stem, thresholds=[0.75, 0.8]),
    }


def icc_table():
    rng = np.random.default_rng(2)
    rows = [("radiomics", f"{region}__venous_f{i}") for region in ("whole", "peri") for i in range(40)]
    rows += [("deep", f"venous_resnet18_{i:04d}") for i in range(30)]
    icc = np.r_[rng.uniform(0.6, 1.0, 80), rng.uniform(-0.5, 0.9, 29), np.nan]
    return pd.DataFrame(rows, columns=["source", "feature"]).assign(icc=icc)


def test_icc_plot_legend_counts_and_shares(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    table = icc_table()
    drawn = []
    monkeypatch.setattr(plots, "save_png_svg", lambda fig, stem: drawn.append(fig) or [])
    plots.icc_distribution_plot(table, tmp_path / "icc", thresholds=[0.8])
    labels = [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()]
    plt.close(drawn[0])
    finite = table.dropna()
    expected = {}
    for name, rows in [("deep", finite[finite.source == "deep"]),
                       ("radiomics peri", finite[finite.feature.str.startswith("peri__")]),
                       ("radiomics whole", finite[finite.feature.str.startswith("whole__")])]:
        n = len(table[table.feature.isin(rows.feature)]) + (name == "deep")  # NaN counted, not drawn
        expected[name] = f"{name} (n={n}, {np.mean(rows.icc > 0.8):.0%} > 0.8)"
    assert labels == list(expected.values())


@pytest.mark.parametrize("kind", list(figure_makers()))
def test_figure_written_and_byte_identical(tmp_path, kind):
    make = figure_makers()[kind]
    first = make(tmp_path / "a" / kind)
    second = make(tmp_path / "b" / kind)
    assert [p.suffix for p in first] == [".png", ".svg"]
    for a, b in zip(first, second):
        data = a.read_bytes()
        assert len(data) > 1000
        assert data == b.read_bytes(), f"{a.name} differs between two calls"
    assert b"Software" not in first[0].read_bytes()
    assert b"<dc:date>" not in first[1].read_bytes()
