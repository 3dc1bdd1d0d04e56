"""The synthetic cohort carries real, recoverable structure (and is deterministic)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from lifelines import CoxPHFitter
from scipy import ndimage, optimize, stats

from radiogenomics.imaging import grid
from radiogenomics.cohort.synthetic import generator as synthetic, phantoms as synthetic_images, omics as synthetic_omics

SMALL = {"seed": 7, "n_internal": 10, "n_external": 2, "n_genes": 300}


def _small_row(**changes) -> pd.Series:
    """A site-C phantom with a small FOV: fast to render, still a full phantom."""
    row = synthetic.simulate_cohort(SMALL)["phantoms"].iloc[10].copy()
    row.update(pd.Series({"fov_x": 110.0, "fov_y": 100.0, "fov_z": 90.0, "centre_x": 0.0,
                          "centre_y": 0.0, "centre_z": 0.0, "radius_mm": 22.0,
                          "kidney_x": 30.0, "kidney_y": 0.0, "kidney_z": 0.0}))  # fmt: skip
    for key, value in changes.items():
        row[key] = value
    return row


def _array(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_simulate_cohort_is_deterministic_and_per_patient():
    first, second = synthetic.simulate_cohort(SMALL), synthetic.simulate_cohort(SMALL)
    for name in ("clinical", "phantoms", "truth"):
        pd.testing.assert_frame_equal(first[name], second[name])
    # A patient's draws do not depend on how many patients are simulated.
    bigger = synthetic.simulate_cohort({**SMALL, "n_internal": 30})
    pd.testing.assert_frame_equal(first["truth"].iloc[:10], bigger["truth"].iloc[:10])


def test_tables_have_contract_columns_and_consistent_clinical_values():
    cohort = synthetic.simulate_cohort({**SMALL, "n_internal": 100, "n_external": 20})
    clinical, truth, phantoms = cohort["clinical"], cohort["truth"], cohort["phantoms"]
    expected = ["patient_id", "site", "os_months", "os_event", "dfs_months", "dfs_event",
                "t_stage", "t_group", "grade", "necrosis", "size_cm", "age", "sex", "ecog",
                "bmi", "mvi", "m_stage", "n_stage"]  # fmt: skip
    assert list(clinical.columns) == expected
    assert clinical["patient_id"].tolist() == [f"SYN{i:04d}" for i in range(1, 121)]
    assert set(clinical["site"][:100]) == {"A", "B"} and set(clinical["site"][100:]) == {"C"}
    assert {"patient_id", "z", "true_k", "site", "risk"} <= set(truth.columns)
    assert (truth["true_k"] == 3).all()
    assert clinical["size_cm"].between(1.8, 9.5).all()
    assert stats.spearmanr(truth["z"], clinical["size_cm"]).statistic > 0.5
    low = clinical["t_group"] == "low"
    assert (clinical.loc[low & (clinical["size_cm"] <= 4), "t_stage"] == "T1a").all()
    assert (clinical.loc[low & (clinical["size_cm"] > 7), "t_stage"].str.startswith("T2")).all()
    assert (clinical.loc[~low, "t_stage"].str[:2].isin(["T3", "T4"])).all()
    # stranding is an imperfect sign of invasion: shown by ~80 % of T3+ and ~15 % of T1-2
    shown = phantoms["stranding_strength"] > 0
    assert 0.65 < shown[~low].mean() < 0.95 and 0.04 < shown[low].mean() < 0.3
    assert (truth["stranding_strength"] == phantoms["stranding_strength"]).all()
    assert (clinical["necrosis"] == (phantoms["necrotic_fraction"] > 0.2).astype(int)).all()
    assert stats.spearmanr(truth["z"], clinical["grade"]).statistic > 0.6
    assert (clinical["dfs_months"] <= clinical["os_months"]).all()
    assert (phantoms["format"] == "dicom").sum() == 20  # every sixth patient
    np.testing.assert_allclose(truth["risk"], 0.9 * truth["z"] + 0.5 * truth["invasion"])


def test_cox_recovers_planted_log_hazard_ratios():
    cohort = synthetic.simulate_cohort({"seed": 11, "n_internal": 400, "n_external": 0})
    table = pd.DataFrame({"time": cohort["clinical"]["os_months"],
                          "event": cohort["clinical"]["os_event"],
                          "z": cohort["truth"]["z"], "t3": cohort["truth"]["invasion"]})  # fmt: skip
    assert 0.35 <= table["event"].mean() <= 0.45
    fit = CoxPHFitter().fit(table, "time", "event")
    assert abs(fit.params_["z"] - 0.9) < 0.3
    assert abs(fit.params_["t3"] - 0.5) < 0.45


def test_necrotic_fraction_of_truth_habitats_rises_with_z():
    cohort = synthetic.simulate_cohort({"seed": 3, "n_internal": 0, "n_external": 16})
    measured = []
    for _, row in cohort["phantoms"].iterrows():
        geometry = synthetic_images.native_geometry(row)
        native = sitk.Image([int(n) for n in geometry["size"]], sitk.sitkInt16)
        native.SetSpacing(geometry["spacing"].tolist())
        native.SetOrigin(geometry["origin"].tolist())
        labels = sitk.GetArrayFromImage(synthetic_images.truth_habitats(row, native, (1.5,) * 3))
        measured.append(np.sum(labels == 2) / np.sum(labels > 0))
    measured = np.array(measured)
    np.testing.assert_allclose(measured, cohort["phantoms"]["necrotic_fraction"], atol=0.03)
    assert stats.spearmanr(cohort["truth"]["z"], measured).statistic > 0.6


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantom")
    row = _small_row()
    manifest = synthetic.write_phantom(row, root / "raw" / "P", root / "truth" / "P")
    return row, manifest, root


def test_write_phantom_files_types_and_truth_grid(written):
    row, manifest, root = written
    assert Path(manifest["arterial"]).name == "arterial.nii.gz"
    venous = sitk.ReadImage(manifest["venous"])
    assert venous.GetPixelID() == sitk.sitkInt16
    assert venous.GetSpacing() == pytest.approx((0.9, 0.9, 5.0))
    mask = sitk.ReadImage(manifest["mask"])
    assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetSize() == venous.GetSize()
    habitats = sitk.ReadImage(str(root / "truth" / "P" / "habitats.nii.gz"))
    reference = grid.reference_like(venous, (1.0, 1.0, 1.0))
    assert habitats.GetSize() == reference.GetSize()
    np.testing.assert_allclose(habitats.GetSpacing(), reference.GetSpacing())
    np.testing.assert_allclose(habitats.GetOrigin(), reference.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(habitats.GetDirection(), reference.GetDirection())
    labels = sitk.GetArrayFromImage(habitats)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    # The native reference mask and the planted tumour agree once on the same grid.
    resampled = sitk.GetArrayFromImage(
        sitk.Resample(mask, habitats, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    )
    dice = 2 * np.sum((resampled > 0) & (labels > 0)) / (np.sum(resampled > 0) + np.sum(labels > 0))
    assert dice > 0.9
    # The tumour sits inside the FOV with at least a 10 mm margin.
    assert not labels[:, :, :10].any() and not labels[:, :, -10:].any()
    # The arterial phase is another acquisition: same in-plane grid, its own z range and slices.
    arterial = sitk.ReadImage(manifest["arterial"])
    assert arterial.GetSpacing() == venous.GetSpacing()
    assert arterial.GetSize()[:2] == venous.GetSize()[:2]
    assert (arterial.GetSize()[2], arterial.GetOrigin()[2]) != (venous.GetSize()[2], venous.GetOrigin()[2])


def test_phases_are_misaligned_by_the_planted_transform(written):
    """Resampled through its planted transform the arterial phase matches the noise-free
    arterial phantom on the reference grid as well as the (unmoved) venous phase matches its
    own; without the transform it does not."""
    row, manifest, root = written
    habitats = sitk.ReadImage(str(root / "truth" / "P" / "habitats.nii.gz"))
    axes = [origin + spacing * np.arange(n) for origin, spacing, n in
            zip(habitats.GetOrigin(), habitats.GetSpacing(), habitats.GetSize())]  # fmt: skip
    expected_arterial, expected_venous, tumour, _ = synthetic_images.Phantom(row).sample(*axes)
    region = ndimage.binary_dilation(tumour, iterations=8)
    planted = synthetic_images.phase_transform(row, "arterial")
    assert np.linalg.norm(planted.GetTranslation()) > 1.0
    error = {}
    for name, phase, transform, expected in (
        ("planted", "arterial", planted, expected_arterial),
        ("identity", "arterial", sitk.Transform(), expected_arterial),
        ("venous", "venous", sitk.Transform(), expected_venous),
    ):
        values = sitk.GetArrayFromImage(sitk.Resample(
            sitk.ReadImage(manifest[phase]), habitats, transform, sitk.sitkLinear, -1024, sitk.sitkFloat32
        ))  # fmt: skip
        error[name] = np.mean(np.abs(values[region] - expected[region]))
    # (its 5 mm slices are tilted against the reference grid: partial volume costs a little more)
    assert error["planted"] < 1.2 * error["venous"]
    assert error["identity"] > 1.25 * error["planted"]
    table = synthetic.phase_transform_table(pd.DataFrame([row]))
    venous_row = table.loc[table["phase"] == "venous"].iloc[0]
    assert venous_row[[f"translation_{a}_mm" for a in "xyz"]].abs().sum() == 0
    arterial_row = table.loc[table["phase"] == "arterial"].iloc[0]
    from radiogenomics.imaging.registration import planted_transform

    np.testing.assert_allclose(planted_transform(arterial_row).GetParameters(), planted.GetParameters())


def test_habitats_are_separable_in_both_phases(written):
    """Interior voxels: gaps between habitat means well above the within-habitat spread."""
    row, manifest, root = written
    habitats = sitk.ReadImage(str(root / "truth" / "P" / "habitats.nii.gz"))
    labels = sitk.GetArrayFromImage(habitats)
    phases = [
        sitk.GetArrayFromImage(
            sitk.Resample(sitk.ReadImage(manifest[p]), habitats, synthetic_images.phase_transform(row, p),
                          sitk.sitkLinear, 0, sitk.sitkFloat32)  # fmt: skip
        )
        for p in ("arterial", "venous")
    ]
    points = np.stack(phases, axis=-1)
    means, spreads = {}, []
    for k in (1, 2, 3):
        interior = ndimage.binary_erosion(labels == k, iterations=3)
        means[k] = points[interior].mean(axis=0)
        spreads.append(points[interior].std(axis=0).max())
    gaps = [np.linalg.norm(means[a] - means[b]) for a, b in ((1, 2), (1, 3), (2, 3))]
    assert min(gaps) > 3 * max(spreads)
    assert means[1][0] > means[3][0] + 50 and means[3][1] > means[2][1] + 50


def test_stranding_raises_peritumoral_fat_attenuation():
    """Same phantom with and without stranding: the 1-5 mm shell outside the tumour brightens."""
    shells = {}
    for flag in (0, 1):
        volumes = synthetic_images.render_native(_small_row(stranding_strength=float(flag)))
        mask, venous = volumes["mask"], volumes["phases"]["venous"]
        outside = ndimage.distance_transform_edt(mask["array"] == 0, sampling=mask["spacing"][::-1])
        shell = (outside > 1) & (outside < 5)
        shells[flag] = (venous["array"][shell].astype(float), shell)
    plain, stranded = shells[0][0], shells[1][0]
    fat = plain < -60  # voxels that are fat without stranding
    assert np.median(stranded[fat]) - np.median(plain[fat]) > 20
    assert np.mean(stranded[fat] > -50) > 0.25  # streaky patches, not a uniform ring
    assert np.mean(stranded[fat] > -50) < 0.9


def test_dicom_series_reads_back_like_the_nifti(tmp_path, written):
    row, manifest, _ = written
    dicom_manifest = synthetic.write_phantom(
        _small_row(format="dicom"), tmp_path / "raw", tmp_path / "truth"
    )
    folder = Path(dicom_manifest["venous"])
    assert folder.is_dir()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    from_dicom = reader.Execute()
    from_nifti = sitk.ReadImage(manifest["venous"])
    assert from_dicom.GetSize() == from_nifti.GetSize()
    np.testing.assert_allclose(from_dicom.GetSpacing(), from_nifti.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(from_dicom.GetOrigin(), from_nifti.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(from_dicom.GetDirection(), from_nifti.GetDirection())
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(from_dicom), sitk.GetArrayFromImage(from_nifti)
    )
    header = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0])
    assert header.Modality == "CT" and "venous" in header.SeriesDescription
    assert header.ContrastBolusAgent and float(header.SliceThickness) == pytest.approx(5.0)
    arterial = pydicom.dcmread(sorted(Path(dicom_manifest["arterial"]).glob("*.dcm"))[0])
    assert arterial.SeriesInstanceUID != header.SeriesInstanceUID


def test_injected_defects(tmp_path):
    small = {"fov_x": 110.0, "fov_y": 100.0, "fov_z": 90.0, "radius_mm": 15.0}

    def write(defect, **changes):
        row = _small_row(defect=defect, **{**small, **changes})
        return synthetic.write_phantom(row, tmp_path / defect, tmp_path / f"t_{defect}")

    assert not _array(write("empty_mask")["mask"]).any()
    missing = write("missing_phase", phases="venous")
    assert (
        missing["arterial"] == "" and not (tmp_path / "missing_phase" / "arterial.nii.gz").exists()
    )
    with pytest.raises(RuntimeError):
        sitk.ReadImage(write("unreadable")["arterial"])
    off_grid = write("off_grid_mask")
    assert (
        sitk.ReadImage(off_grid["mask"]).GetSize() != sitk.ReadImage(off_grid["venous"]).GetSize()
    )
    cohort = synthetic.simulate_cohort({**SMALL, "bad_cases": {"touching_border": ["SYN0011"]}})
    row = cohort["phantoms"].set_index("patient_id").loc["SYN0011"].copy()
    row["patient_id"] = "SYN0011"
    assert row["defect"] == "touching_border"
    border = synthetic.write_phantom(row, tmp_path / "border", tmp_path / "t_border")
    assert _array(border["mask"])[:, :, 0].any()
    with pytest.raises(ValueError):
        synthetic.simulate_cohort({**SMALL, "bad_cases": {"no_such_defect": ["SYN0001"]}})


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    params = {"seed": 5, "n_internal": 150, "n_external": 30, "n_genes": 400}
    result = synthetic.write_cohort_tables(params, root / "raw", root / "truth")
    return params, result, root


def test_write_cohort_tables_files_and_determinism(tables, tmp_path):
    params, result, root = tables
    names = ["raw/clinical.tsv", "raw/phantoms.tsv", "raw/expression/counts.tsv",
             "raw/expression/samples.tsv", "raw/signatures/immune_signature.tsv",
             "raw/mutations.maf", "truth/patients.tsv", "truth/de_genes.tsv",
             "truth/cell_fractions.tsv", "truth/modules.tsv"] + [
        f"raw/genesets/{lib}.gmt" for lib in ("go_bp", "go_cc", "go_mf", "kegg", "hallmark",
                                              "estimate")]  # fmt: skip
    for name in names:
        assert (root / name).stat().st_size > 0, name
    synthetic.write_cohort_tables(params, tmp_path / "raw", tmp_path / "truth")
    for name in names:
        assert (root / name).read_bytes() == (tmp_path / name).read_bytes(), name
    counts = pd.read_csv(root / "raw/expression/counts.tsv", sep="\t")
    assert counts.columns[0] == "gene" and counts.shape[1] == 181
    assert counts["gene"].str.startswith("GENE").sum() == 400
    maf = pd.read_csv(root / "raw/mutations.maf", sep="\t")
    assert list(maf.columns) == ["Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification",
                                 "Variant_Type", "Chromosome", "Start_Position"]  # fmt: skip
    truth = pd.read_csv(root / "truth/patients.tsv", sep="\t")
    assert truth.loc[truth["bap1_mutated"] == 1, "z"].mean() > truth["z"].mean() + 0.4
    assert truth["n_mutations"].std() > 5
    sets = {line.split("\t")[0]: line.rstrip("\n").split("\t")[2:]
            for line in (root / "raw/genesets/kegg.gmt").read_text().splitlines(True)}  # fmt: skip
    assert 30 <= len(sets) <= 60
    assert np.mean([g.startswith("UP_Z") for g in sets["KEGG_SYN_HYPOXIA_UP"]]) > 0.7
    modules = pd.read_csv(root / "truth/modules.tsv", sep="\t")
    sizes = modules.groupby("module").size()
    assert sizes.between(100, 160).drop("M1").all()
    assert modules.loc[modules["z_module"] == 1, "module"].nunique() == 1
    # the planted up genes are members of the z-module; the down genes belong to no module
    z_module = set(modules.loc[modules["z_module"] == 1, "gene"])
    de = pd.read_csv(root / "truth/de_genes.tsv", sep="\t")
    assert set(de.loc[de["direction"].eq("up") & de["kind"].eq("planted_de"), "gene"]) <= z_module
    assert not set(de.loc[de["direction"].eq("down"), "gene"]) & set(modules["gene"])


def _log_cpm(counts: pd.DataFrame) -> pd.DataFrame:
    values = counts.set_index("gene")
    return np.log2(values / values.sum() * 1e6 + 1)


def test_planted_genes_follow_z(tables):
    _, result, _ = tables
    z = result["truth"]["z"].to_numpy()
    log_cpm = _log_cpm(result["counts"])
    de = result["de_genes"].query("kind == 'planted_de'")
    rho = np.array([stats.spearmanr(log_cpm.loc[g], z).statistic for g in de["gene"]])
    sign = np.where(de["direction"] == "up", 1, -1)
    assert np.all(rho * sign > 0.5)
    # High- vs low-z halves differ by |log2FC| > 1 for planted genes.
    high = z > np.median(z)
    fold = log_cpm.loc[de["gene"]].iloc[:, high].mean(1) - log_cpm.loc[de["gene"]].iloc[
        :, ~high
    ].mean(1)
    assert np.all(np.abs(fold) > 1.0)
    # The z-module's first principal component tracks z; another module does not.
    modules = result["modules"]
    for module, expect_tied in (("M1", True), ("M2", False)):
        block = log_cpm.loc[modules.loc[modules["module"] == module, "gene"]].to_numpy()
        block = (block - block.mean(1, keepdims=True)).T
        pc1 = np.linalg.svd(block, full_matrices=False)[0][:, 0]
        r = abs(stats.pearsonr(pc1, z).statistic)
        assert (r > 0.8) if expect_tied else (r < 0.3)


def test_immune_mixture_is_recoverable_by_nnls(tables):
    """Independent deconvolution (scipy NNLS on the signature) recovers the planted fractions."""
    _, result, _ = tables
    signature = result["signature"].set_index("gene")
    assert np.linalg.cond(signature.to_numpy()) < 50
    truth = result["truth"].set_index("patient_id")
    marker_counts = result["counts"].set_index("gene").loc[signature.index]
    estimates = []
    for sample, patient in zip(result["samples"]["sample_id"], result["samples"]["patient_id"]):
        expression = marker_counts[sample].to_numpy() / truth.loc[patient, "library_size"]
        weights, _ = optimize.nnls(signature.to_numpy(), expression)
        estimates.append(weights / weights.sum())
    estimates = np.array(estimates)
    fractions = result["cell_fractions"].set_index("patient_id")[list(signature.columns)]
    for j, cell in enumerate(signature.columns):
        assert stats.pearsonr(estimates[:, j], fractions[cell]).statistic > 0.9, cell
    z = truth.loc[fractions.index, "z"]
    assert stats.spearmanr(fractions["CD8_T"], z).statistic > 0.3
    assert stats.spearmanr(fractions["Treg"], z).statistic > 0.3
    assert set(synthetic_omics.CELL_TYPES) == set(signature.columns)


def test_write_manifest(tmp_path, written):
    _, manifest, _ = written
    table = synthetic.write_manifest([manifest], tmp_path / "raw" / "manifest.tsv")
    back = pd.read_csv(tmp_path / "raw" / "manifest.tsv", sep="\t", keep_default_na=False)
    assert list(back.columns) == ["patient_id", "site", "format", "arterial", "venous", "mask", "mask_phase"]
    assert back.iloc[0]["mask_phase"] == "venous"
    assert back.iloc[0]["venous"] == table.iloc[0]["venous"]


def test_write_phantom_is_deterministic(tmp_path, written):
    row, manifest, root = written
    again = synthetic.write_phantom(row, tmp_path / "P", tmp_path / "truth")
    for key in ("arterial", "venous", "mask"):
        np.testing.assert_array_equal(_array(again[key]), _array(manifest[key]))
    np.testing.assert_array_equal(
        _array(tmp_path / "truth" / "habitats.nii.gz"),
        _array(root / "truth" / "P" / "habitats.nii.gz"),
    )
