import hashlib

import numpy as np
import pytest
import SimpleITK as sitk
import timm
import torch

from radiogenomics.features import deep
from radiogenomics.core.cases import BadCase

torch.set_num_threads(1)

SHAPE = (20, 48, 48)
LARGEST_Z, CENTRE_ROW, CENTRE_COL = 12, 20, 27


def _phantom(seed: int, intensity: float = 60.0):
    """Tumour = stack of discs whose radius peaks (8 px) at z = 12, centred at (20, 27)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(SHAPE)
    radius = 8 - np.abs(zz - LARGEST_Z)
    inside = (yy - CENTRE_ROW) ** 2 + (xx - CENTRE_COL) ** 2 <= np.maximum(radius, 0) ** 2
    inside &= radius > 0
    hu = np.where(inside, intensity, -100.0) + rng.normal(0, 20, SHAPE)
    hu += 30 * np.sin(xx / (2 + seed % 3))  # patient-specific texture
    images = {}
    for phase, offset in (("arterial", 40), ("venous", 0)):
        image = sitk.GetImageFromArray((hu + offset * inside).astype(np.int16))
        images[phase] = image
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    return images, mask


def _cohort(n=6):
    images, masks = {}, {}
    for i in range(n):
        images[f"P{i}"], masks[f"P{i}"] = _phantom(i, intensity=40 + 10 * i)
    return images, masks


def test_crop_centred_on_largest_slice():
    images, mask = _phantom(0)
    mask_array = sitk.GetArrayFromImage(mask)
    assert deep.largest_slice_index(mask_array) == LARGEST_Z
    margin = 5
    tensor, box = deep.prepare_slice(
        sitk.GetArrayFromImage(images["venous"]).astype(np.float32),
        mask_array,
        margin_mm=margin,
        size=64,
    )
    assert box.z == LARGEST_Z
    assert box.centre == (CENTRE_ROW, CENTRE_COL)
    assert box.side == 2 * 8 + 1 + 2 * margin  # disc diameter 17 px plus margins
    assert tensor.shape == (3, 64, 64) and tensor.dtype == np.float32
    # the three repeated channels differ only by the per-channel ImageNet normalisation
    pixels = tensor * deep.IMAGENET_STD[:, None, None] + deep.IMAGENET_MEAN[:, None, None]
    np.testing.assert_allclose(pixels[0], pixels[2], atol=1e-6)
    # the tumour (brighter) sits in the middle of the crop
    assert pixels[0, 28:36, 28:36].mean() > pixels[0, :4, :4].mean()


def test_crop_centred_on_the_planted_tumour_of_a_synthetic_patient(tmp_path):
    """Through the real generator and imaging stage: the crop sits on the axial slice where the
    planted tumour (results/truth habitats) is largest, centred on the planted tumour there."""
    from radiogenomics.cohort.synthetic import generator as synthetic
    from radiogenomics.imaging.ct import preprocess_case

    row = synthetic.simulate_cohort({"seed": 5, "n_internal": 1, "n_external": 0})["phantoms"].iloc[0]
    files = synthetic.write_phantom(row, tmp_path / "raw", tmp_path / "truth")
    images, mask = preprocess_case(
        {p: sitk.ReadImage(files[p]) for p in ("arterial", "venous")},
        sitk.ReadImage(files["mask"]), (1.0, 1.0, 1.0), "bspline", reference="venous",
    )
    planted = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "truth/habitats.nii.gz"))) > 0
    assert planted.shape == sitk.GetArrayFromImage(mask).shape
    slices = deep.patient_slices("SYN0001", images, mask, ["venous"], margin_mm=10.0, size=64)
    _, box = slices["venous"]
    areas = planted.sum(axis=(1, 2))
    # the reference mask is the planted tumour drawn on the native (thick-slice) grid
    assert areas[box.z] >= 0.95 * areas.max()
    rows, cols = np.nonzero(planted[box.z])
    planted_centre = ((rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2)
    assert np.allclose(box.centre, planted_centre, atol=1.5)
    assert box.side >= max(np.ptp(rows), np.ptp(cols)) + 1 + 2 * 10 - 2


def test_neighbour_channels_and_padding_at_edge():
    volume = np.arange(5, dtype=np.float32)[:, None, None] * 100 - 150 + np.zeros((5, 8, 8))
    mask = np.zeros((5, 8, 8), np.uint8)
    mask[0, 0:3, 0:3] = 1  # tumour in the first slice, touching the corner
    tensor, box = deep.prepare_slice(volume, mask, margin_mm=2, size=7, channels="neighbours")
    assert box.z == 0 and box.row0 < 0  # crop extends past the image -> padded with air
    pixels = tensor * deep.IMAGENET_STD[:, None, None] + deep.IMAGENET_MEAN[:, None, None]
    # channels are slices (0, 0, 1) -> HU -150, -150, -50 -> window W350/L50 by hand
    expected = [(hu - (50 - 175)) / 350 for hu in (-150, -150, -50)]
    centre = pixels[:, 3, 3]
    np.testing.assert_allclose(centre, np.clip(expected, 0, 1), atol=1e-5)
    assert pixels[0, 0, 0] == pytest.approx(0.0, abs=1e-6)  # padded air -> 0


def test_window_mapping_by_hand():
    out = deep.window_to_uint8_range(np.array([-125, 50, 225, -1000, 1000]))
    np.testing.assert_allclose(out, [0, 127.5, 255, 0, 255])


def test_features_identical_across_runs_and_named():
    images, masks = _cohort(4)
    kwargs = dict(backbone="resnet18", size=64, batch_size=3, seed=1, device="cpu")
    first = deep.deep_features_table(images, masks, **kwargs)
    second = deep.deep_features_table(images, masks, **kwargs)
    assert first.shape == (4, 1 + 2 * 512)
    assert (
        first.columns[1] == "arterial_resnet18_0000" and first.columns[-1] == "venous_resnet18_0511"
    )
    assert list(first["patient_id"]) == ["P0", "P1", "P2", "P3"]
    np.testing.assert_array_equal(first.iloc[:, 1:].to_numpy(), second.iloc[:, 1:].to_numpy())
    assert first.attrs["weights"]["venous"]["weights"] == "random-init seed 1"
    # batching does not change values: one patient alone gives its row
    alone = deep.deep_features_table({"P2": images["P2"]}, {"P2": masks["P2"]}, **kwargs)
    np.testing.assert_allclose(
        alone.iloc[0, 1:].to_numpy(dtype=float),
        first.iloc[2, 1:].to_numpy(dtype=float),
        rtol=1e-5,
        atol=1e-6,
    )


def test_max_pooling_matches_manual():
    model, _ = deep.build_backbone("resnet18", "none", pooling="max", seed=0)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    pooled = deep.extract(model, x.numpy(), device="cpu")
    with torch.no_grad():
        manual = model.forward_features(x).amax(dim=(2, 3)).numpy()
    np.testing.assert_allclose(pooled, manual, rtol=1e-6)


def test_fine_tuned_features_differ_and_are_reproducible():
    images, masks = _cohort(8)
    labels = {f"P{i}": int(i >= 4) for i in range(8)}
    kwargs = dict(
        phases=("venous",),
        backbone="resnet18",
        size=64,
        seed=0,
        device="cpu",
        fine_tune=dict(epochs=2, patience=2, batch_size=4, lr=1e-3, val_fraction=0.25),
    )
    untuned = deep.deep_features_table(images, masks, **{**kwargs, "fine_tune": None})
    tuned = deep.deep_features_table(images, masks, fine_tune_labels=labels, **kwargs)
    again = deep.deep_features_table(images, masks, fine_tune_labels=labels, **kwargs)
    assert not np.allclose(untuned.iloc[:, 1:].to_numpy(), tuned.iloc[:, 1:].to_numpy())
    np.testing.assert_array_equal(tuned.iloc[:, 1:].to_numpy(), again.iloc[:, 1:].to_numpy())
    record = tuned.attrs["weights"]["venous"]
    assert record["fine_tuned_from"] == "random-init seed 0"
    assert record["weights"].startswith("fine-tuned sha256:")
    assert record["fine_tune_patients"] == 8


def test_local_checkpoint_loads_and_hash_recorded(tmp_path):
    torch.manual_seed(3)
    source = timm.create_model("resnet18", pretrained=False)  # with its 1000-class fc
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model, record = deep.build_backbone("resnet18", str(path), seed=0)
    assert record["weights"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    torch.testing.assert_close(model.conv1.weight, source.conv1.weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        source.eval()
        expected = source.forward_head(source.forward_features(x), pre_logits=True)
    np.testing.assert_allclose(
        deep.extract(model, x.numpy(), device="cpu"), expected.numpy(), rtol=1e-5, atol=1e-6
    )


def test_checkpoint_of_wrong_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), path)
    with pytest.raises(ValueError, match="does not fit resnet18"):
        deep.build_backbone("resnet18", str(path))
    with pytest.raises(FileNotFoundError, match="pretrained"):
        deep.build_backbone("resnet18", str(tmp_path / "absent.pth"))


def test_imagenet_offline_fails_with_instructions(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"not available offline.*pretrained: resources/weights"):
        deep.build_backbone("resnet18", "imagenet")


def test_imagenet_from_local_cache(tmp_path, monkeypatch):
    """A populated Hugging Face cache is used without network, and its file hash recorded."""
    import huggingface_hub.constants
    from safetensors.torch import save_file

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--timm--resnet18.a1_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    torch.manual_seed(5)
    save_file(timm.create_model("resnet18").state_dict(), snapshot / "model.safetensors")
    model, record = deep.build_backbone("resnet18", "imagenet")
    digest = hashlib.sha256((snapshot / "model.safetensors").read_bytes()).hexdigest()
    assert record["weights"] == f"sha256:{digest}"


def test_missing_phase_and_off_grid_mask_name_the_patient():
    images, masks = _cohort(1)
    with pytest.raises(BadCase, match="P0.*arterial phase image is missing"):
        deep.patient_slices("P0", {"venous": images["P0"]["venous"]}, masks["P0"], ["arterial"])
    shifted = sitk.Image(masks["P0"])
    shifted.SetOrigin((5.0, 0.0, 0.0))
    with pytest.raises(BadCase, match="different grids"):
        deep.patient_slices("P0", images["P0"], shifted, ["venous"])


def test_deep_feature_icc_from_perturbed_masks():
    """The robustness path: one network, features re-extracted per perturbed mask set."""
    from radiogenomics.features import robustness

    images, masks = _cohort(5)
    sets = robustness.perturbed_mask_sets(masks, 2, seed=0, grow_mm=1.0, shift_mm=1.0)
    assert list(sets) == ["original", "perturbation1", "perturbation2"]
    tables = deep.deep_features_tables(
        images, sets, phases=("venous",), backbone="resnet18", size=64, seed=0, device="cpu"
    )
    reference = deep.deep_features_table(
        images, masks, phases=("venous",), backbone="resnet18", size=64, seed=0, device="cpu"
    )
    np.testing.assert_array_equal(tables["original"].iloc[:, 1:], reference.iloc[:, 1:])
    iccs = robustness.icc_table({r: t.set_index("patient_id") for r, t in tables.items()})
    assert len(iccs) == 512
    # ICC is undefined exactly for the features that are constant (dead ReLUs at random init)
    stacked = np.concatenate([t.iloc[:, 1:].to_numpy() for t in tables.values()])
    constant = np.ptp(stacked, axis=0) == 0
    np.testing.assert_array_equal(iccs["icc"].isna().to_numpy(), constant)
    print("median deep-feature ICC", iccs["icc"].median())
    assert iccs["icc"].median() > 0.5  # ~1 mm perturbations keep most deep features stable


def test_endpoint_labels_by_hand():
    import pandas as pd

    clinical = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C", "D", "E"],
            "cohort": ["train", "train", "train", "train", "test"],
            "os_months": [10.0, 30.0, 12.0, 50.0, 5.0],
            "os_event": [1, 1, 0, 0, 1],
            "t_group": ["low", "high", "low", "high", "high"],
            "t_stage": ["T1b", "T3a", "T2", "T4", "T3"],
            "grade": [2, 2, 3, 1, 4],
            "necrosis": [0, 0, 0, 1, 0],
        }
    )
    # A died at 10 (<= 24) -> 1; B died at 30 -> 0; C censored at 12 -> unknown; D -> 0
    assert deep.endpoint_labels(clinical, "death_before_horizon", 24) == {"A": 1, "B": 0, "D": 0}
    assert deep.endpoint_labels(clinical, "high_t_stage") == {"A": 0, "B": 1, "C": 0, "D": 1}
    assert deep.endpoint_labels(clinical, "aggressive", cohort=None) == {
        "A": 0,
        "B": 1,
        "C": 1,
        "D": 1,
        "E": 1,
    }
    with pytest.raises(ValueError, match="horizon"):
        deep.endpoint_labels(clinical, "death_before_horizon")


def test_early_stopping_keeps_the_best_weights_and_counts_patience():
    model = torch.nn.Linear(1, 1)
    stopping = deep.EarlyStopping(model, patience=2, fix="lower the learning rate")
    stops = []
    for k, loss in enumerate([1.0, 0.5, 0.5 - 1e-7, 0.4, 0.45, 0.41]):
        with torch.no_grad():
            model.weight.fill_(k)
        stops.append(stopping.should_stop(loss, f"epoch {k}"))
    # 0.5 - 1e-7 is no improvement (tolerance 1e-6); 0.4 resets; two misses in a row stop.
    assert stops == [False, False, False, False, False, True]
    assert stopping.best_model().weight.item() == 3.0
    assert not model.training
    with pytest.raises(FloatingPointError, match="epoch 9 .*lower the learning rate"):
        stopping.should_stop(float("nan"), "epoch 9")


def test_validation_split_stratifies_only_when_each_class_has_two():
    labels = np.array([0] * 6 + [1] * 4)
    for seed in range(10):  # stratified: every hold-out of 5 has two of the four positives
        fit, val = deep.validation_split(labels, 0.5, seed=seed)
        assert sorted(np.r_[fit, val]) == list(range(10))
        assert labels[val].sum() == 2
    fit, val = deep.validation_split(np.array([0] * 9 + [1]), 0.2, seed=0)
    assert len(val) == 2 and sorted(np.r_[fit, val]) == list(range(10))
