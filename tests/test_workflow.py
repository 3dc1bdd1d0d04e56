"""End to end: the tiny synthetic study through Snakemake, checked against planted truth."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import exclusive, run_snakemake

from radiogenomics.regions.recovery import habitat_agreement

pytestmark = pytest.mark.workflow


def read_array(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_planted_defects_are_excluded_with_reasons(tiny_study):
    exclusions = pd.read_csv(tiny_study / "results/cohort/exclusions.tsv", sep="\t")
    reasons = dict(zip(exclusions.patient_id, exclusions.reason))
    assert "empty" in reasons["SYN0003"]
    assert "arterial phase is missing" in reasons["SYN0008"]
    clinical = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t")
    assert len(clinical) + len(exclusions) == 26
    assert set(clinical.cohort) == {"train", "test", "external"}


def test_phases_on_different_grids_are_registered_within_a_millimetre(tiny_study):
    """Against the planted misalignment (results/truth/phase_transforms.tsv), over the planted
    tumour's voxels; no patient is lost to phases lying on different grids."""
    clinical = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t")
    table = pd.read_csv(tiny_study / "results/imaging/registration.tsv", sep="\t")
    assert sorted(table.patient_id) == sorted(clinical.patient_id)
    test = table.loc[table.patient_id.isin(clinical.loc[clinical.cohort == "test", "patient_id"])]
    assert test.tre_mm.median() < 1.0 and test.tre_mm.max() < 2.0, test
    assert (table.tre_unregistered_mm > table.tre_mm).all()
    exclusions = pd.read_csv(tiny_study / "results/cohort/exclusions.tsv", sep="\t")
    assert not exclusions.reason.str.contains("grid|registration").any(), exclusions
    record = json.loads((tiny_study / f"results/imaging/{clinical.patient_id.iloc[0]}/registration.json").read_text())
    assert record["ok"] and record["phases"]["arterial"]["transform"]["type"] == "Euler3DTransform"
    assert (tiny_study / "results/figures/registration_qc.prov.json").exists()


def test_features_cover_every_included_patient_and_region(tiny_study):
    clinical = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t")
    features = pd.read_parquet(tiny_study / "results/features/radiomics.parquet")
    assert sorted(features.patient_id) == sorted(clinical.patient_id)
    model = json.loads((tiny_study / "results/regions/habitat_model.json").read_text())
    regions = {column.split("__")[0] for column in features.columns if "__" in column}
    assert regions == {"whole", "peri", *[f"sub{k}" for k in range(1, model["k"] + 1)]}
    per_region = sum(column.startswith("whole__") for column in features.columns)
    assert per_region == 200  # tiny params: 14 shape + 93 x (original, LoG 2 mm)


def test_habitats_recover_planted_structure(tiny_study):
    model = json.loads((tiny_study / "results/regions/habitat_model.json").read_text())
    truth = pd.read_csv(tiny_study / "results/truth/patients.tsv", sep="\t")
    assert model["k"] == int(truth.true_k.iloc[0])
    clinical = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t")
    agreement = habitat_agreement(tiny_study / "results", clinical.loc[clinical.cohort == "test"])
    assert len(agreement) > 0 and agreement.ari.mean() >= 0.8, agreement


def test_masks_are_label_maps_with_slicer_colour_tables(tiny_study):
    import nibabel

    patient = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t").patient_id.iloc[0]
    for path in ("segment/{p}/tumor.nii.gz", "imaging/{p}/reference_tumor.nii.gz",
                 "regions/{p}/habitats.nii.gz", "regions/{p}/peri.nii.gz", "truth/{p}/habitats.nii.gz"):  # fmt: skip
        image = nibabel.load(str(tiny_study / "results" / path.format(p=patient)))
        assert image.get_data_dtype() == np.uint8 and image.header.get_intent()[0] == "label", path
    k = json.loads((tiny_study / "results/regions/habitat_model.json").read_text())["k"]
    table = (tiny_study / f"results/regions/{patient}/habitats.ctbl").read_text().splitlines()
    names = [line.split()[1] for line in table if not line.startswith("#")]
    assert names[0] == "Background" and [n.split("_")[0] for n in names[1:]] == [f"sub{i}" for i in range(1, k + 1)]
    assert (tiny_study / f"results/regions/{patient}/peri.ctbl").exists()


def test_shell_is_within_margin_and_outside_tumour(tiny_study):
    from scipy.ndimage import distance_transform_edt

    patient = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t").patient_id.iloc[0]
    tumor = read_array(tiny_study / f"results/segment/{patient}/tumor.nii.gz") > 0
    peri = read_array(tiny_study / f"results/regions/{patient}/peri.nii.gz") > 0
    distance = distance_transform_edt(~tumor, sampling=(1.0, 1.0, 1.0))
    assert not (peri & tumor).any()
    assert distance[peri].max() <= 3.0 + np.sqrt(3) / 2
    assert peri.sum() > 0


def test_feature_extraction_reruns_byte_identical(tiny_study):
    """Two patients' extraction (one internal, one external) and the table, rerun."""
    clinical = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t")
    patients = [clinical.loc[clinical.cohort == c, "patient_id"].iloc[0] for c in ("train", "external")]
    outputs = [tiny_study / f"results/features/patients/{p}.radiomics.json" for p in patients]
    table = tiny_study / "results/features/radiomics.parquet"
    first = [path.read_bytes() for path in (table, *outputs)]
    forced = [str(path.relative_to(tiny_study)) for path in outputs]
    with exclusive(tiny_study):  # a concurrent session may be reading the run's records
        done = run_snakemake(tiny_study, "features", "--forcerun", *forced)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("rule radiomics:") == 2, done.stderr[-4000:]
    assert [path.read_bytes() for path in (table, *outputs)] == first


def test_every_figure_has_a_provenance_sidecar(tiny_study):
    from radiogenomics.core.audit import figures_without_provenance

    assert figures_without_provenance(tiny_study) == []


def test_contract_tables_of_models_and_genomics(tiny_study):
    results = tiny_study / "results"
    columns = {
        "selected_features": ["feature", "coefficient"],
        "scores": ["patient_id", "cohort", "score", "group"],
        "predictions": ["patient_id", "cohort", "model", "region_set", "prediction"],
        "metrics": ["model", "cohort", "metric", "value", "ci_low", "ci_high"],
    }
    for task in ("os", "tstage"):
        for name, expected in columns.items():
            table = pd.read_csv(results / f"models/{task}/{name}.tsv", sep="\t")
            assert list(table.columns[: len(expected)]) == expected, (task, name)
    for name in ("deg", "enrichment", "wgcna_modules", "deconvolution", "estimate"):
        assert len(pd.read_csv(results / f"genomics/{name}.tsv", sep="\t")) > 0, name


def test_report_and_audit_of_a_figure(tiny_study):
    from radiogenomics.core.audit import audit

    page = (tiny_study / "results/report/index.html").read_text()
    assert "synthetic" in page.lower()
    report = audit(tiny_study / "results/figures/habitat_bic.png", root=tiny_study)
    assert report.ok, report


def test_robustness_table_covers_radiomics_and_deep_features(tiny_study):
    table = pd.read_csv(tiny_study / "results/features/robustness.tsv", sep="\t")
    radiomics = pd.read_parquet(tiny_study / "results/features/radiomics.parquet")
    deep = pd.read_parquet(tiny_study / "results/features/deep.parquet")
    by_source = {source: set(group.feature) for source, group in table.groupby("source")}
    assert by_source["radiomics"] == set(radiomics.columns) - {"patient_id"}
    assert by_source["deep"] == set(deep.columns) - {"patient_id"}
    assert table.n_patients.max() == 6  # tiny.yaml: features.robustness.n_patients
    icc = table.set_index("feature").icc
    # tumour volume is planted structure that a 1-mm re-delineation barely changes
    assert icc["whole__venous_original_shape_MeshVolume"] > 0.9
    assert (tiny_study / "results/figures/robustness_icc.png").exists()


@pytest.fixture(scope="module")
def snakemake_report(tiny_study, tmp_path_factory):
    """`snakemake --report` of the tiny study, as one HTML page."""
    page = tmp_path_factory.mktemp("snakemake_report") / "report.html"
    done = run_snakemake(tiny_study, "--report", str(page))
    assert done.returncode == 0, done.stderr[-4000:]
    return page.read_text()


def test_snakemake_report_has_every_stage_category(snakemake_report):
    for category in ("Imaging", "Regions", "Features", "Models and evaluation", "Radiogenomics", "Pathomics"):
        assert category in snakemake_report, category


# The project's column ids and coded values that the study report must show in words.
RAW_IDS = ("size_cm", "os_months", "os_event", "dfs_months", "dfs_event", "t_group", "t_stage",
           "patient_id", "clinical_cox", "cox_nomogram", "radscore_groups", "harrell_c", "uno_c",
           "td_auc_", "hr_high_vs_low", "logrank_p", "ci_low", "ci_high", "hd95_mm", "tre_mm",
           "volume_diff_ml", "n_features", "naive_bayes", "random_forest", "log2FoldChange",
           "padj", "set_size", "tumor_purity", "stromal_score")  # fmt: skip


def _visible_text(page: str) -> str:
    """What a reader sees: no tags, scripts, styles, image data or collapsed provenance."""
    import html as html_module
    import re

    for pattern in (r"<script.*?</script>", r"<style.*?</style>", r"<details.*?</details>",
                    r'src="data:[^"]*"'):  # fmt: skip
        page = re.sub(pattern, " ", page, flags=re.S)
    return html_module.unescape(re.sub(r"<[^>]+>", " ", page))


def _snakemake_report_captions(page: str) -> dict:
    """{file name: caption HTML} from the data that `snakemake --report` embeds."""
    import re

    captions = {}
    for match in re.finditer(r'"filename":\s*"([^"]+)".{0,4000}?"caption":\s*"((?:[^"\\]|\\.)*)"', page, re.S):
        captions.setdefault(match.group(1), json.loads(f'"{match.group(2)}"'))
    return captions


def test_every_figure_is_in_both_reports_with_a_caption(tiny_study, snakemake_report):
    """Every figure the tiny study writes (results/figures/*.png and the patient flow) is in
    the study report and in `snakemake --report`, each time with a non-empty caption."""
    import re

    page = (tiny_study / "results/report/index.html").read_text()
    figures = sorted((tiny_study / "results/figures").glob("*.png"))
    figures.append(tiny_study / "results/report/assets/patient_flow.png")
    assert len(figures) > 60
    theirs = _snakemake_report_captions(snakemake_report)
    missing = []
    for figure in figures:
        found = re.search(rf'<figure id="fig-{re.escape(figure.stem)}">(.*?)</figure>', page, re.S)
        caption = found and re.search(r"<figcaption>.*?</p>(.*?)<details", found.group(1), re.S)
        if not caption or not _visible_text(caption.group(1)).strip():
            missing.append(("study report", figure.name))
        if not re.sub(r"<[^>]+>", "", theirs.get(figure.name, "")).strip():
            missing.append(("snakemake --report", figure.name))
    assert missing == []


def _snakemake_report_tables(page: str) -> dict:
    """{path: entry (name, labels, caption, ...)} of the tables that `snakemake --report` embeds."""
    import re

    decoder, entries = json.JSONDecoder(), {}
    for match in re.finditer(r'"([^"]+\.tsv)":\s*(?=\{"name")', page):
        entries.setdefault(match.group(1), decoder.raw_decode(page, match.end())[0])
    return entries


def test_every_table_is_in_both_reports_with_a_caption(tiny_study, snakemake_report):
    """Every table a rule wraps in report(...) that the tiny study wrote, and Table 1, is in the
    study report (block id tab-<path>) and in `snakemake --report`, each time with a non-empty
    caption, and titled by its report label in both."""
    import re

    from radiogenomics.reporting.report import table_anchor

    page = (tiny_study / "results/report/index.html").read_text()
    # the declarations as report_outputs() read them at DAG time (the page's sidecar params)
    record = json.loads((tiny_study / "results/report/index.prov.json").read_text())
    declared = [d for d in record["params"]["declared"] if d["pattern"].endswith(".tsv")]
    written = sorted(
        path.relative_to(tiny_study).as_posix() for path in (tiny_study / "results").rglob("*.tsv")
    )
    tables = [path for path in written if any(re.match(d["regex"], path) for d in declared)]
    assert "results/report/assets/table1.tsv" in tables
    assert len(tables) >= 27
    theirs = _snakemake_report_tables(snakemake_report)
    missing = []
    for path in tables:
        anchor = table_anchor(path)
        found = re.search(
            rf'<div class="tablewrap" id="{re.escape(anchor)}"><h4>([^<]*)</h4>(.*?)'
            r'(?:<p class="tools">|<div class="scroll">|<table)',
            page,
            re.S,
        )
        if not found or not _visible_text(found.group(2)).strip():
            missing.append(("study report", path))
        entry = theirs.get(path, {})
        if not re.sub(r"<[^>]+>", "", entry.get("caption") or "").strip():
            missing.append(("snakemake --report", path))
        label = (entry.get("labels") or {}).get("table")
        if found and label and found.group(1) != label:
            missing.append(("title", path, found.group(1), label))
    assert missing == []


def test_study_report_shows_no_raw_column_ids(tiny_study):
    text = _visible_text((tiny_study / "results/report/index.html").read_text())
    shown = {raw: text.count(raw) for raw in RAW_IDS if raw in text}
    assert shown == {}, shown
    # the Methods state the segmentation, the ICC threshold and every stage that ran
    for fact in ("Tumours were delineated with", "ICC > 0.8", "ICC > 0.75", "Evaluation.",
                 "Radiogenomics.", "Pathomics.", "Software."):  # fmt: skip
        assert fact in text, fact


def test_figures_show_no_raw_column_ids(tiny_study):
    """Axis labels, legends and tick labels in words: the figure writer keeps SVG text as text,
    so every string a figure shows can be read back."""
    import xml.etree.ElementTree as ET

    figures = sorted((tiny_study / "results/figures").glob("*.svg"))
    assert len(figures) > 60
    shown = {}
    for figure in figures:
        texts = ["".join(t.itertext()) for t in ET.parse(figure).iter("{http://www.w3.org/2000/svg}text")]
        assert texts, figure.name
        raw = sorted({raw for text in texts for raw in RAW_IDS if raw in text})
        if raw:
            shown[figure.name] = raw
    assert shown == {}


def test_pathomics_tiles_features_and_frozen_mil(tiny_study):
    import h5py

    clinical = pd.read_csv(tiny_study / "results/cohort/clinical.tsv", sep="\t")
    training = set(clinical.loc[clinical.cohort == "train", "patient_id"])
    for patient in clinical.patient_id:
        tiles = pd.read_parquet(tiny_study / f"results/pathomics/{patient}/tiles.parquet")
        kept = tiles[tiles.kept]
        assert len(kept) > 0 and kept.entropy.min() >= 5.0
        assert set(tiles.reason) <= {"", "background", "entropy"}
        with h5py.File(tiny_study / f"results/pathomics/{patient}/features.h5") as handle:
            assert handle["features"].shape[0] == len(kept)
            assert ("augmented" in handle) == (patient in training)  # training only
    summary = json.loads((tiny_study / "results/models/pathomics/mil.json").read_text())
    assert set(summary["training_patients"]) <= training
    predictions = pd.read_csv(tiny_study / "results/models/pathomics/predictions.tsv", sep="\t")
    assert set(predictions.model) == {"abmil", "gated_abmil"}
    assert sorted(set(predictions.patient_id)) == sorted(clinical.patient_id)
    metrics = pd.read_csv(tiny_study / "results/models/pathomics/metrics.tsv", sep="\t")
    assert {"auc", "accuracy", "precision", "recall", "fpr", "fnr"} <= set(metrics.metric)
    table = pd.read_parquet(tiny_study / "results/features/pathomics.parquet")
    assert list(table.columns) == ["patient_id", "pathomics__abmil", "pathomics__gated_abmil"]
    recovery = pd.read_csv(tiny_study / "results/models/pathomics/truth_recovery.tsv", sep="\t")
    assert {"attention_auc", "attention_ratio", "score_spearman_z", "auc_ratio"} <= set(
        recovery.measure
    )
    assert np.isfinite(recovery.value).all()
    for name in ("pathomics_attention", "pathomics_correlation", "pathomics_km_subgroups_test"):
        assert (tiny_study / f"results/figures/{name}.png").is_file()
        assert (tiny_study / f"results/figures/{name}.prov.json").is_file()
