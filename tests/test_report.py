import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fakepipe import FAKE_DECLARED, REPORT_CONFIG, make_fake_results
from radiogenomics.core import labels as report_labels
from radiogenomics.reporting import report, methods as report_methods, outputs as report_outputs

FAKE_CONFIG = {**REPORT_CONFIG, "models": {"tasks": {"s2": {"kind": "binary"}}}}


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
    assert "Differential expression" not in text  # a manifest study has no RNA-seq
    text += report.methods_text({**changed, "cohort": {"source": "synthetic"}}, tmp_path)
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


def test_methods_state_segmentation_icc_selection_models_and_stages_that_ran(tmp_path):
    config = {
        **REPORT_CONFIG,
        "segmentation": {"method": "nnunet", "configuration": "3d_fullres", "folds": [0, 1]},
        "models": {
            "robustness_table": "results/features/robustness.tsv",
            "tasks": {
                "os": {"kind": "survival", "selection": {"robustness": {"icc_threshold": 0.85},
                                                         "lasso": {"folds": 3, "rule": "1se"}}},
                "tstage": {"kind": "binary", "classifiers": ["logistic", "svm"],
                           "selection": {"robustness": {"icc_threshold": 0.75},
                                         "univariate": {"method": "mrmr", "k": 25}}},
            },
        },
        "evaluation": {"bootstrap": 50, "td_auc_horizons_months": [12, 36]},
        "pathomics": {"enabled": True, "tiles": {"magnification": 20, "tile_px": 224}},
    }
    text = report.methods_text(config, tmp_path)
    assert "nnU-Net v2 (a model trained here" in text and "3d_fullres configuration" in text
    assert "ICC > 0.85 -> LASSO (3-fold cross-validation, lambda 1se)" in text
    assert "ICC > 0.75 -> mRMR top 25" in text
    assert "logistic regression and SVM classifiers" in text
    assert "time: Overall survival (months), event: Death" in text
    assert "50 bootstrap resamples" in text and "12 and 36 months" in text
    assert "224-pixel tiles at 20x" in text
    # only the stages that ran
    short = report.methods_text(config, tmp_path, ran=["Segmentation"])
    assert "nnU-Net" in short and "ICC >" not in short and "tiles" not in short
    # without a robustness table there is no ICC step
    config["models"]["robustness_table"] = None
    assert "ICC >" not in report.methods_text(config, tmp_path)


def test_methods_read_only_keys_the_schema_allows():
    import yaml
    from conftest import REPO

    schema = yaml.safe_load((REPO / "config/schemas/config.schema.yaml").read_text())
    for key in report_methods.METHODS_KEYS:
        node = schema
        for part in key.split("."):
            assert part in node.get("properties", {}), key
            node = node["properties"][part]


def test_software_versions_come_from_the_sidecars(tmp_path):
    make_fake_results(tmp_path)
    versions = report_methods.software_versions(tmp_path, ["results/figures/km_os.png"])
    assert "Python" in versions and "numpy" in versions


def test_declared_outputs_are_matched_with_their_wildcards(tmp_path):
    declared = report_outputs.declared_outputs(FAKE_DECLARED)
    hit = report_outputs.match("results/figures/km_os.png", declared)
    assert hit.declared.rule == "evaluate" and hit.wildcards == {"task": "os"}
    assert hit.category() == "Models and evaluation" and hit.subcategory() == "os"
    assert report_outputs.match("results/figures/other.png", declared) is None
    make_fake_results(tmp_path)
    found = report_outputs.find_report_files(tmp_path, declared, skip_rules=["study_report"])
    # fig.png is no report() output: not shown, as in snakemake --report
    assert [f.path.as_posix() for f in found] == [
        "results/figures/habitat_bic.png",
        "results/regions/habitat_bic.tsv",
        "results/figures/km_os.png",
        "results/models/s2/metrics.tsv",
    ]


def test_captions_render_like_snakemake(tmp_path):
    """Jinja with snakemake.config / snakemake.wildcards, then docutils' HTML."""
    (tmp_path / "km.rst").write_text(
        "Curves of **{{ snakemake.wildcards.task }}** over "
        "{{ snakemake.config['evaluation']['bootstrap'] }} resamples, ``code``.\n"
    )
    html = report_outputs.render_caption(
        "km.rst", tmp_path, {"evaluation": {"bootstrap": 7}}, {"task": "os"}
    )
    assert html == (
        '<p>Curves of <strong>os</strong> over 7 resamples, '
        '<tt class="docutils literal">code</tt>.</p>'
    )
    assert report_outputs.render_caption("missing.rst", tmp_path, {}) == ""
    assert report_outputs.render_caption(None, tmp_path, {}) == ""


def test_every_caption_file_renders_with_the_default_config():
    """Each caption of workflow/report renders (templated ones with the embedded config)."""
    import yaml
    from conftest import REPO

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for path in sorted((REPO / "workflow/report").glob("*.rst")):
        rendered = report_outputs.render_caption(path.name, path.parent, config, {"task": "os"})
        assert rendered.startswith("<") and len(rendered) > 40, path.name


def test_readable_labels():
    assert report_labels.label("size_cm") == "Tumour size (cm)"
    assert report_labels.label("td_auc_36") == "Time-dependent AUC at 36 months"
    assert report_labels.label("mix:logistic") == "best habitat + shell: logistic regression"
    assert report_labels.label("sub2:naive_bayes") == "habitat 2: naive Bayes"
    assert report_labels.label("whole__venous_original_shape_MeshVolume").endswith("MeshVolume")
    table = pd.DataFrame({"model": ["clinical_cox"], "metric": ["harrell_c"], "ci_low": [0.5]})
    readable = report_labels.readable_table(table)
    assert list(readable.columns) == ["Model", "Metric", "95% CI, lower"]
    assert readable.iloc[0].tolist() == ["Clinical Cox model", "Harrell's C-index", 0.5]


def test_endpoint_names_drop_the_unit():
    assert report_labels.endpoint_name("os_months") == "Overall survival"
    assert report_labels.endpoint_name("dfs_months") == "Disease-free survival"
    assert report_labels.endpoint_name("unknown_time") == "unknown_time"


def test_table1_for_report_uses_clinical_names_and_skewed_tests(clinical):
    clinical = clinical.assign(os_event=np.tile([0, 1], 30))
    table = report.baseline_table(clinical)
    size = table[table["variable"] == "size_cm"].iloc[0]
    assert size["level"] == "median [IQR]" and size["test"] == "Kruskal-Wallis"
    values = clinical["size_cm"].dropna()
    q1, q2, q3 = np.percentile(values, [25, 50, 75])
    assert size["overall (n=60)"] == f"{q2:.1f} [{q1:.1f}, {q3:.1f}]"
    groups = [clinical.loc[clinical.cohort == g, "size_cm"].dropna() for g in ("train", "test", "external")]
    assert size["p"] == f"{stats.kruskal(*groups).pvalue:.3f}"
    readable = report.table1_for_report(table)
    assert "Tumour size (cm)" in set(readable["Characteristic"])
    assert "size_cm" not in set(readable["Characteristic"])
    death = readable.index[readable["Characteristic"] == "Death"][0]
    assert readable.iloc[death : death + 2, 1].tolist() == ["no", "yes"]
    assert list(readable.columns[:3]) == ["Characteristic", "", "Overall (n=60)"]


def test_categorical_test_uses_fisher_for_small_two_by_two():
    small = pd.DataFrame([[1, 6], [5, 1]])
    p, test = report.categorical_test(small)
    assert test == "Fisher exact"
    # Fisher's exact p by hand: two-sided sum over tables as likely or less (hypergeometric)
    from math import comb

    row1, col1, n = 7, 6, 13
    probability = {a: comb(col1, a) * comb(n - col1, row1 - a) / comb(n, row1) for a in range(0, 7)}
    observed = probability[1]
    assert p == pytest.approx(sum(q for q in probability.values() if q <= observed * (1 + 1e-7)))
    big = pd.DataFrame([[20, 15], [12, 25]])
    assert report.categorical_test(big)[1] == "chi-square"


def test_build_report_is_self_contained(tmp_path):
    make_fake_results(tmp_path)
    captions = tmp_path / "workflow/report"
    out, shown = report.build_report(
        tmp_path, FAKE_CONFIG, captions_dir=captions, declared=FAKE_DECLARED
    )
    assert out == tmp_path / "results/report/index.html"
    page = out.read_text()
    assert 'id="synthetic-banner"' in page
    assert "http://" not in page.replace('xmlns="http://', "") and "https://" not in page
    assert "<script src" not in page and "<link" not in page  # one inline script, nothing fetched
    # flow, one habitat overlay, the 2 declared figures (fig.png is no report() output)
    assert page.count('src="data:image/png;base64,') == 4
    for name in ("habitat_bic", "km_os", "habitat_overlay_P000", "patient_flow"):
        assert f'id="fig-{name}"' in page
    assert 'id="fig-fig"' not in page
    assert 'href="../figures/km_os.prov.json"' in page
    # the caption file, rendered with the wildcards and the config as Snakemake does
    assert "<p>Kaplan-Meier curves of <strong>os</strong> by group (seed 42).</p>" in page
    assert "Patients from assessment to analysis." in page and "Baseline characteristics." in page
    assert "Table 1. Baseline characteristics by cohort" in page
    assert "Tumour size (cm)" in page and "size_cm" not in page
    assert "fixed bin width of 25 HU" in page
    assert "14 patients assessed, 2 excluded, 12 included (train: 6, test: 3, external: 3)" in page
    assert "Habitat model: BIC per K" in page and "1000.5" in page and "Number of habitats (K)" in page
    # tables: the declared ones, readable headers, titled by their report label, not by their
    # path, with their caption file (rendered with the wildcards) and an id per file
    assert "95% CI, lower" in page and "<h4>Performance</h4>" in page
    assert "<h4>results/" not in page and "Task s2: t stage group (high)" in page
    assert (
        '<div class="tablewrap" id="tab-models-s2-metrics"><h4>Performance</h4>'
        "<p>Metrics of task <strong>s2</strong> per cohort.</p>" in page
    )
    assert '<div class="tablewrap" id="tab-regions-habitat-bic"><h4>Habitat model' in page
    assert "One row per number of habitats <tt" in page
    assert '<div class="tablewrap" id="tab-report-assets-table1">' in page
    assert "a 3 mm peritumoral shell" in page
    assert '<section id="regions"><h2>Regions</h2>' in page
    assert '<section id="models-and-evaluation"><h2>Models and evaluation</h2>' in page
    assert "<b>Software.</b>" in page
    # The report's own tables and flow figure have sidecars; a rebuild gives the same page.
    assert (tmp_path / "results/report/assets/table1.prov.json").is_file()
    assert (tmp_path / "results/report/assets/patient_flow.prov.json").is_file()
    again = report.build_report(tmp_path, FAKE_CONFIG, captions_dir=captions, declared=FAKE_DECLARED)
    assert again[0].read_text() == page
    assert [p.as_posix() for p in shown] == [
        "results/report/assets/patient_flow.png",
        "results/report/assets/table1.tsv",
        "results/figures/habitat_bic.png",
        "results/regions/habitat_bic.tsv",
        "results/report/assets/habitat_overlay_P000.png",
        # configured tasks (s2) come first within a category, then other subcategories
        "results/models/s2/metrics.tsv",
        "results/figures/km_os.png",
    ]
    # Not synthetic: no banner.
    real = {
        **FAKE_CONFIG,
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


def test_a_declared_table_without_a_label_is_titled_by_its_name(tmp_path):
    """Only declared tables are shown (nothing hard-coded); no ``table`` label: the file name."""
    make_fake_results(tmp_path)
    declared = [
        {**entry, "labels": {}} if entry["pattern"].endswith("metrics.tsv") else entry
        for entry in FAKE_DECLARED
        if entry["pattern"] != "results/regions/habitat_bic.tsv"
    ]
    page = report.build_report(tmp_path, FAKE_CONFIG, declared=declared)[0].read_text()
    assert '<div class="tablewrap" id="tab-models-s2-metrics"><h4>Metrics</h4>' in page
    assert "tab-regions-habitat-bic" not in page and "Habitat model: BIC per K" not in page
    assert report.table_anchor("results/genomics/truth_recovery.tsv") == "tab-genomics-truth-recovery"


def test_long_tables_are_sortable_and_short_ones_plain(tmp_path):
    make_fake_results(tmp_path)
    long = report.TableItem("Long", pd.DataFrame({"feature": [f"f{i}" for i in range(30)], "icc": np.linspace(0, 1, 30)}))
    short = report.TableItem("Short", pd.DataFrame({"icc": [0.5]}))
    sections = [report.Section("t", "Tables", [long, short])]
    page = report.build_report(tmp_path, REPORT_CONFIG, sections=sections)[0].read_text()
    assert page.count('class="dataframe data sortable"') == 1
    assert page.count('class="dataframe data"') == 1
    assert 'data-table="table-1"' in page and 'id="table-1"' in page
    assert "<script>" in page and "localeCompare" in page


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
    sections = report.default_sections(tmp_path, REPORT_CONFIG, declared=FAKE_DECLARED) + [extra]
    page = report.build_report(tmp_path, REPORT_CONFIG, sections=sections)[0].read_text()
    assert '<section id="extra"><h2>Extra stage</h2><p>hello</p>' in page
