import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fakepipe import REPORT_CONFIG, make_fake_results
from radiogenomics import report


@pytest.fixture
def clinical():
    rng = np.random.default_rng(3)
    n = 60
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "cohort": np.repeat(["train", "test", "external"], [30, 18, 12]),
            "age": rng.normal(60, 9, n),
            "size_cm": np.where(np.arange(n) == 5, np.nan, rng.gamma(3, 1.5, n)),
            "sex": rng.choice(["F", "M"], n),
            "t_stage": rng.choice(["T1", "T2", "T3", "T4"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )


def test_table1_continuous_matches_scipy_and_hand_anova(clinical):
    table = report.baseline_table(clinical)
    row = table[table["variable"] == "age"].iloc[0]
    groups = [
        clinical.loc[clinical.cohort == g, "age"].to_numpy() for g in ("train", "test", "external")
    ]
    assert row["p"] == f"{stats.f_oneway(*groups).pvalue:.3f}"
    assert row["test"] == "ANOVA"
    # One-way ANOVA by hand: F = (SSB / (k-1)) / (SSW / (N-k)).
    grand = clinical["age"].mean()
    ssb = sum(len(g) * (g.mean() - grand) ** 2 for g in groups)
    ssw = sum(((g - g.mean()) ** 2).sum() for g in groups)
    p_hand = stats.f.sf((ssb / 2) / (ssw / (len(clinical) - 3)), 2, len(clinical) - 3)
    assert row["p"] == f"{p_hand:.3f}"
    train = clinical.loc[clinical.cohort == "train", "age"]
    assert row["train (n=30)"] == f"{train.mean():.1f} ({train.std():.1f})"
    # Missing values are counted, not dropped silently.
    missing = table[(table["level"] == "missing")]
    assert missing["overall (n=60)"].tolist() == ["1"]

    nonparam = report.baseline_table(clinical, parametric=False)
    row = nonparam[nonparam["variable"] == "age"].iloc[0]
    assert row["p"] == f"{stats.kruskal(*groups).pvalue:.3f}"


def test_table1_two_groups_welch():
    rng = np.random.default_rng(1)
    two = pd.DataFrame(
        {
            "patient_id": range(40),
            "cohort": ["train"] * 25 + ["test"] * 15,
            "age": rng.normal(0, 1, 40),
        }
    )
    p, test = report.continuous_test(
        [two.age[:25].to_numpy(), two.age[25:].to_numpy()], parametric=True
    )
    # Welch's t-test by hand (Welch-Satterthwaite degrees of freedom).
    a, b = two.age[:25], two.age[25:]
    va, vb = a.var() / len(a), b.var() / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert test == "Welch t-test"
    assert p == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-10)


def test_table1_categorical_chi_square_by_hand(clinical):
    table = report.baseline_table(clinical)
    block = table[
        table["variable"].eq("t_stage").cumsum().astype(bool) & table["level"].str.startswith("T")
    ]
    assert block["level"].tolist() == ["T1", "T2", "T3", "T4"]
    observed = pd.crosstab(clinical["t_stage"], clinical["cohort"])[["train", "test", "external"]]
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.to_numpy().sum()
    chi2 = ((observed.to_numpy() - expected) ** 2 / expected).sum()
    p_hand = stats.chi2.sf(chi2, (4 - 1) * (3 - 1))
    assert block.iloc[0]["p"] == f"{p_hand:.3f}"
    n_t1 = (clinical.t_stage == "T1").sum()
    assert block.iloc[0]["overall (n=60)"] == f"{n_t1} ({100 * n_t1 / 60:.1f}%)"


def test_patient_flow_counts():
    clinical = pd.DataFrame(
        {"patient_id": ["a", "b", "c", "d"], "cohort": ["train", "train", "test", "external"]}
    )
    exclusions = pd.DataFrame(
        {
            "patient_id": ["x", "y", "x"],
            "stage": ["inspect", "segment", "segment"],
            "reason": ["no venous phase", "empty mask", "empty mask"],
        }
    )
    counts = report.patient_flow_counts(clinical, exclusions)
    assert counts == {
        "assessed": 6,
        "excluded": 2,
        "excluded_by_reason": [("inspect", "no venous phase", 1), ("segment", "empty mask", 1)],
        "included": 4,
        "by_cohort": {"train": 2, "test": 1, "external": 1},
        "unaccounted": 0,
    }
    raw = pd.DataFrame({"patient_id": list("abcdxyz")})
    assert report.patient_flow_counts(clinical, exclusions, raw)["unaccounted"] == 1


def test_methods_text_follows_config(tmp_path):
    (tmp_path / "params.yaml").write_text("setting:\n  binWidth: 25\n")
    config = {
        **REPORT_CONFIG,
        "features": {
            "radiomics": {"params": "params.yaml", "regions": ["whole", "habitats", "peri"]}
        },
    }
    default = report.methods_text(config, tmp_path)
    assert "resampled to 1 x 1 x 1 mm with B-spline interpolation" in default
    assert "the venous phase was analysed; a soft-tissue window of W350/L50 HU" in default
    assert "a 3 mm peritumoral shell" in default
    assert "K = 2 to 4" in default
    assert "simulated" in default and "9 internal and 5 external patients" in default
    assert "from the whole tumour, each habitat and the peritumoral shell" in default
    assert "fixed bin width of 25 HU" in default and "(42)" in default
    assert "high versus low os radscore groups was tested with DESeq2 Wald tests (PyDESeq2" in default
    assert "with DESeq2 1.38's own GLM, dispersion and trend fits" in default
    assert "dynamic hybrid tree cut (dynamicTreeCut, deepSplit 2, PAM stage on" in default

    changed = {
        **REPORT_CONFIG,
        "regions": {"habitats": {"k_range": [2, 6]}, "peri": {"margin_mm": 2.0}},
        "imaging": {
            "spacing_mm": [0.8, 0.8, 1.5],
            "interpolator": "linear",
            "analysis_phase": "arterial",
        },
        "cohort": {"source": "manifest"},
        "features": {"radiomics": {"params": "no-such-params.yaml"}},
        "genomics": {"deg": {"method": "limma_voom", "covariates": ["site"],
                             "paired": {"column": "sample_type", "test": "tumour", "reference": "normal"}},
                     "wgcna": {"network_type": "unsigned", "deep_split": 3, "min_kme": None}},
    }
    text = report.methods_text(changed, tmp_path)
    assert "tumour versus normal samples of the same patients (design ~ patient + site + sample_type)" in text
    assert "limma-voom" in text and "deepSplit 3" in text and "kME" not in text
    assert "a 2 mm peritumoral shell" in text and "3 mm" not in text
    assert "0.8 x 0.8 x 1.5 mm with linear interpolation" in text
    assert "arterial phase" in text and "W350" not in text
    assert "manifest cohort" in text and "K = 2 to 6" in text
    assert "bin width" not in text  # unknown params file: the fact is left out, not guessed


def test_largest_slice_and_overlay(tmp_path):
    import SimpleITK as sitk

    from fakepipe import write_fake_regions

    write_fake_regions(tmp_path, "P9")
    habitats = sitk.GetArrayFromImage(
        sitk.ReadImage(str(tmp_path / "results/regions/P9/habitats.nii.gz"))
    )
    brute = max(range(habitats.shape[0]), key=lambda z: (np.count_nonzero(habitats[z]), -z))
    assert report.largest_slice(habitats) == brute == 6
    with pytest.raises(ValueError):
        report.largest_slice(np.zeros((2, 3, 3)))
    items = report.overlay_items(tmp_path, REPORT_CONFIG)
    assert [i.path.as_posix() for i in items] == ["results/report/assets/habitat_overlay_P9.png"]
    record = json.loads(
        (tmp_path / "results/report/assets/habitat_overlay_P9.prov.json").read_text()
    )
    assert [i["path"] for i in record["inputs"]] == [
        "results/imaging/P9/ct.nii.gz",
        "results/regions/P9/habitats.nii.gz",
        "results/regions/P9/peri.nii.gz",
    ]
    assert record["params"] == {"window": [50.0, 350.0]}


def test_caption_lookup(tmp_path):
    (tmp_path / "habitat_overlay.rst").write_text("Habitats on the `largest` slice.\n")
    assert report.caption_for("habitat_overlay_P001", tmp_path) == "Habitats on the largest slice."
    assert report.caption_for("unknown", tmp_path) == ""


def test_build_report_is_self_contained(tmp_path):
    make_fake_results(tmp_path)
    out, shown = report.build_report(
        tmp_path, REPORT_CONFIG, captions_dir=tmp_path / "workflow/report"
    )
    assert out == tmp_path / "results/report/index.html"
    page = out.read_text()
    assert 'id="synthetic-banner"' in page
    assert "http://" not in page.replace('xmlns="http://', "") and "https://" not in page
    assert "<script" not in page and "<link" not in page
    # flow, one habitat overlay, 3 figures under results/figures
    assert page.count('src="data:image/png;base64,') == 5
    for name in ("fig", "habitat_bic", "km_os", "habitat_overlay_P000"):
        assert f'id="fig-{name}"' in page
    assert 'href="../figures/km_os.prov.json"' in page
    assert "Kaplan-Meier curves of overall survival by group." in page
    assert "Table 1. Baseline characteristics by cohort" in page
    assert "fixed bin width of 25 HU" in page
    assert "14 patients assessed, 2 excluded, 12 included (train: 6, test: 3, external: 3)" in page
    assert (
        "Habitat model: BIC per K" in page
        and "1000.5" in page
        and "results/models/s2/metrics.tsv" in page
    )
    assert "a 3 mm peritumoral shell" in page
    # The report's own tables and flow figure have sidecars; a rebuild gives the same page.
    assert (tmp_path / "results/report/assets/table1.prov.json").is_file()
    assert (tmp_path / "results/report/assets/patient_flow.prov.json").is_file()
    assert (
        report.build_report(tmp_path, REPORT_CONFIG, captions_dir=tmp_path / "workflow/report")[
            0
        ].read_text()
        == page
    )
    assert [p.as_posix() for p in shown] == [
        "results/report/assets/patient_flow.png",
        "results/report/assets/table1.tsv",
        "results/regions/habitat_model.json",
        "results/figures/habitat_bic.png",
        "results/report/assets/habitat_overlay_P000.png",
        "results/figures/km_os.png",
        "results/models/s2/metrics.tsv",
        "results/figures/fig.png",
    ]
    # Not synthetic: no banner.
    real = {
        **REPORT_CONFIG,
        "cohort": {"source": "manifest"},
        "study": {"seed": 42, "synthetic_banner": False},
    }
    import shutil

    shutil.rmtree(tmp_path / "results/truth")
    page = report.build_report(tmp_path, real)[0].read_text()
    assert "synthetic-banner" not in page
    # A manifest study has no RNA-seq: the radiogenomics section says why it is empty.
    assert "Not run: no expression data: a manifest study" in page
    assert "Not run" not in report.build_report(tmp_path, REPORT_CONFIG)[0].read_text()


def test_custom_sections(tmp_path):
    make_fake_results(tmp_path)
    extra = report.Section(
        "extra",
        "Extra stage",
        [
            report.TextItem("<p>hello</p>"),
            report.FigureItem(__import__("pathlib").Path("results/figures/km_os.png"), "custom"),
        ],
    )
    sections = report.default_sections(tmp_path, REPORT_CONFIG) + [extra]
    page = report.build_report(tmp_path, REPORT_CONFIG, sections=sections)[0].read_text()
    assert '<section id="extra"><h2>Extra stage</h2><p>hello</p>' in page
