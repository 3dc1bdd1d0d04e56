"""A small three-step fake pipeline with provenance sidecars, shared by the provenance tests.

raw/data.tsv + raw/extra/ (folder)  --normalize-->  results/norm.tsv
results/norm.tsv                     --summarize-->  results/tables/summary.tsv
results/tables/summary.tsv           --plot------->  results/figures/fig.png + fig.svg
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from radiogenomics.core.figure_writer import save_figure  # noqa: E402
from radiogenomics.core.io import read_tsv, write_tsv  # noqa: E402
from radiogenomics.core.provenance import write_sidecar  # noqa: E402

CONFIG = {"normalize": {"scale": 2.0}, "plot": {"title": "fake"}, "seed": 7}
T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def make_scripts(root: Path) -> dict[str, Path]:
    scripts = {}
    for rule in ("normalize", "summarize", "plot"):
        script = root / "workflow" / "scripts" / f"{rule}.py"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f"# shim for rule {rule}\n")
        scripts[rule] = script
    return scripts


def run_pipeline(root: Path, config: dict = CONFIG) -> dict[str, Path]:
    """Run the three steps in ``root`` (the workdir) and write the config and every sidecar."""
    scripts = (
        make_scripts(root)
        if not (root / "workflow").exists()
        else {
            rule: root / "workflow" / "scripts" / f"{rule}.py"
            for rule in ("normalize", "summarize", "plot")
        }
    )
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    raw = root / "raw"
    if not raw.exists():
        (raw / "extra").mkdir(parents=True)
        write_tsv(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": list("aabb")}), raw / "data.tsv")
        (raw / "extra" / "b.txt").write_text("second\n")
        (raw / "extra" / "a.txt").write_text("first\n")

    scale = config["normalize"]["scale"]
    data = read_tsv(raw / "data.tsv")
    data["x"] = data["x"] * scale
    write_tsv(data, root / "results" / "norm.tsv")
    write_sidecar(
        "results/norm.tsv",
        "normalize",
        {},
        {"scale": scale},
        ["raw/data.tsv", "raw/extra"],
        config,
        {},
        T0,
        T0 + dt.timedelta(seconds=1),
        log=["logs/normalize.log"],
        script=scripts["normalize"],
        param_sources={"scale": "normalize.scale"},
        root=root,
    )

    summary = read_tsv(root / "results" / "norm.tsv").groupby("g", as_index=False)["x"].mean()
    write_tsv(summary, root / "results" / "tables" / "summary.tsv")
    write_sidecar(
        "results/tables/summary.tsv",
        "summarize",
        {},
        {},
        ["results/norm.tsv"],
        config,
        {},
        T0,
        T0,
        script=scripts["summarize"],
        root=root,
    )

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(summary["g"], summary["x"])
    ax.set_title(config["plot"]["title"])
    figures = root / "results" / "figures"
    save_figure(fig, figures / "fig.png")
    save_figure(fig, figures / "fig.svg")
    plt.close(fig)
    write_sidecar(
        ["results/figures/fig.png", "results/figures/fig.svg"],
        "plot",
        {"name": "fig"},
        {"title": config["plot"]["title"]},
        ["results/tables/summary.tsv"],
        config,
        {"seed": config["seed"]},
        T0,
        T0,
        script=scripts["plot"],
        param_sources={"title": "plot.title"},
        root=root,
    )
    return scripts


REPORT_CONFIG = {  # the shape of config/config.yaml
    "study": {"seed": 42, "synthetic_banner": True},
    "cohort": {"source": "synthetic"},
    "synthetic": {"n_internal": 9, "n_external": 5},
    "imaging": {
        "analysis_phase": "venous",
        "spacing_mm": [1.0, 1.0, 1.0],
        "interpolator": "bspline",
        "window": {"level": 50, "width": 350},
    },
    "regions": {"habitats": {"k_range": [2, 3, 4]}, "peri": {"margin_mm": 3.0}},
    "features": {
        "radiomics": {
            "params": "resources/radiomics_params.yaml",
            "regions": ["whole", "habitats", "peri"],
        }
    },
}


def make_fake_results(root: Path) -> None:
    """A small results tree like a finished synthetic study (cohort, regions, models, figures)."""
    import json

    import numpy as np

    run_pipeline(root)  # results/figures/fig.png with a full lineage
    rng = np.random.default_rng(0)
    n = 12
    clinical = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "cohort": ["train"] * 6 + ["test"] * 3 + ["external"] * 3,
            "site": ["A"] * 6 + ["B"] * 3 + ["C"] * 3,
            "age": rng.normal(60, 10, n).round(1),
            "size_cm": rng.gamma(4, 1.2, n).round(2),
            "sex": rng.choice(["F", "M"], n),
            "t_stage": rng.choice(["T1", "T2", "T3"], n),
            "grade": rng.choice([1, 2, 3, 4], n),
        }
    )
    write_tsv(clinical, root / "results/cohort/clinical.tsv")
    exclusions = pd.DataFrame(
        {
            "patient_id": ["P100", "P101"],
            "stage": ["inspect", "segment"],
            "reason": ["missing venous phase", "empty mask"],
            "file": ["raw/P100", "raw/P101"],
            "fix": ["add the phase", "redraw the mask"],
        }
    )
    write_tsv(exclusions, root / "results/cohort/exclusions.tsv")
    (root / "results/truth").mkdir(parents=True, exist_ok=True)
    (root / "results/regions").mkdir(parents=True, exist_ok=True)
    (root / "results/features").mkdir(parents=True, exist_ok=True)
    (root / "results/regions/habitat_model.json").write_text(
        json.dumps({"k": 2, "bic": {"2": 1000.5, "3": 1010.2, "4": 1022.0}})
    )
    write_tsv(
        pd.DataFrame({"k": [2, 3, 4], "bic": [1000.5, 1010.2, 1022.0], "chosen": [True, False, False]}),
        root / "results/regions/habitat_bic.tsv",
    )

    metrics = pd.DataFrame(
        {
            "model": ["radscore"],
            "cohort": ["test"],
            "metric": ["auc"],
            "value": [0.81],
            "ci_low": [0.7],
            "ci_high": [0.9],
        }
    )
    write_tsv(metrics, root / "results/models/s2/metrics.tsv")
    write_sidecar(
        "results/models/s2/metrics.tsv",
        "evaluate",
        {"task": "s2"},
        {},
        ["results/cohort/clinical.tsv"],
        REPORT_CONFIG,
        {},
        T0,
        T0,
        root=root,
    )
    for name in ("habitat_bic", "km_os"):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([2, 3, 4] if name == "habitat_bic" else [0, 1, 2], [3, 1, 2])
        ax.set_title(name)
        save_figure(fig, root / "results/figures" / f"{name}.png")
        plt.close(fig)
        write_sidecar(
            f"results/figures/{name}.png",
            "plot_" + name,
            {},
            {},
            ["results/cohort/clinical.tsv"],
            REPORT_CONFIG,
            {},
            T0,
            T0,
            root=root,
        )
    write_fake_regions(root, "P000")
    (root / "resources").mkdir(exist_ok=True)
    (root / "resources/radiomics_params.yaml").write_text("setting:\n  binWidth: 25\n")
    captions = root / "workflow/report"
    captions.mkdir(parents=True, exist_ok=True)
    (captions / "km.rst").write_text(
        "Kaplan-Meier curves of **{{ snakemake.wildcards.task }}** by group "
        "(seed {{ snakemake.config['study']['seed'] }}).\n"
    )
    (captions / "habitat_bic.rst").write_text("BIC per number of habitats ``K``.\n")
    (captions / "patient_flow.rst").write_text("Patients from assessment to analysis.\n")
    (captions / "table1.rst").write_text("Baseline characteristics.\n")
    (captions / "table_habitat_bic.rst").write_text("One row per number of habitats ``K``.\n")
    (captions / "table_metrics.rst").write_text(
        "Metrics of task **{{ snakemake.wildcards.task }}** per cohort.\n"
    )


# report_outputs() of common.smk for the fake results: what rules wrap in report(...)
FAKE_DECLARED = [
    {"rule": "fit_habitats", "pattern": "results/figures/habitat_bic.png",
     "regex": r"results/figures/habitat_bic\.png$", "caption": "habitat_bic.rst",
     "category": "Regions", "subcategory": None, "labels": {}},
    {"rule": "fit_habitats", "pattern": "results/regions/habitat_bic.tsv",
     "regex": r"results/regions/habitat_bic\.tsv$", "caption": "table_habitat_bic.rst",
     "category": "Regions", "subcategory": None, "labels": {"table": "Habitat model: BIC per K"}},
    {"rule": "evaluate", "pattern": "results/figures/km_{task}.png",
     "regex": r"results/figures/km_(?P<task>.+)\.png$", "caption": "km.rst",
     "category": "Models and evaluation", "subcategory": "{task}", "labels": {}},
    {"rule": "evaluate", "pattern": "results/models/{task}/metrics.tsv",
     "regex": r"results/models/(?P<task>[^/]+)/metrics\.tsv$", "caption": "table_metrics.rst",
     "category": "Models and evaluation", "subcategory": "{task}", "labels": {"table": "Performance"}},
    {"rule": "study_report", "pattern": "results/report/assets/patient_flow.png",
     "regex": r"results/report/assets/patient_flow\.png$", "caption": "patient_flow.rst",
     "category": "Report", "subcategory": None, "labels": {}},
    {"rule": "study_report", "pattern": "results/report/assets/table1.tsv",
     "regex": r"results/report/assets/table1\.tsv$", "caption": "table1.rst",
     "category": "Report", "subcategory": None, "labels": {}},
]  # fmt: skip


def write_fake_regions(root: Path, patient: str) -> None:
    """CT, two-habitat tumour (core 2, rim 1) and a 3-voxel shell; the tumour peaks at z = 6."""
    import numpy as np
    import SimpleITK as sitk

    z, y, x = np.mgrid[:12, :48, :48]
    distance = np.sqrt(((z - 6) * 2.0) ** 2 + (y - 24) ** 2 + (x - 24) ** 2)
    habitats = np.where(distance <= 5, 2, np.where(distance <= 10, 1, 0)).astype(np.uint8)
    peri = ((distance > 10) & (distance <= 13)).astype(np.uint8)
    ct = (np.random.default_rng(1).normal(0, 15, z.shape) + 40 + 60 * (habitats == 1)).astype(
        np.int16
    )
    for name, array, folder in (
        ("ct", ct, "imaging"),
        ("habitats", habitats, "regions"),
        ("peri", peri, "regions"),
    ):
        path = root / "results" / folder / patient / f"{name}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
