import numpy as np
import pytest
import torch

from radiogenomics import multiphase

torch.set_num_threads(1)

SIZE = 48
PHASES = ("arterial", "venous")


def _cases(n=16, seed=0):
    """Positives carry a bright blob in the arterial phase and a dark one in the venous phase
    (wash-out); negatives are noise. Blob position varies per patient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices((SIZE, SIZE))
    cases, labels = {}, {}
    for i in range(n):
        label = i % 2
        cy, cx = rng.integers(12, 36, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 5.0**2))
        cases[f"P{i:02d}"] = {
            phase: np.repeat(
                (rng.normal(0, 0.3, (SIZE, SIZE)) + sign * 2.0 * label * blob)[None], 3, axis=0
            ).astype(np.float32)
            for phase, sign in (("arterial", 1.0), ("venous", -1.0))
        }
        labels[f"P{i:02d}"] = label
    return cases, labels


TRAIN = dict(
    epochs=3,
    patience=3,
    batch_size=8,
    lr=1e-3,
    val_fraction=0.25,
    device="cpu",
    embed_dim=32,
    heads=2,
)


def test_multiphase_trains_and_loss_decreases():
    cases, labels = _cases(12)
    patients = sorted(labels)
    slices = {ph: np.stack([cases[p][ph] for p in patients]) for ph in PHASES}
    y = np.array([labels[p] for p in patients], dtype=np.float32)
    model, history = multiphase.train_multiphase(slices, y, PHASES, seed=0, **TRAIN)
    assert len(history) >= 2
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    # deterministic on CPU: a second, one-epoch pair of runs gives the same weights
    one = {**TRAIN, "epochs": 1}
    first, _ = multiphase.train_multiphase(slices, y, PHASES, seed=3, **one)
    again, _ = multiphase.train_multiphase(slices, y, PHASES, seed=3, **one)
    torch.testing.assert_close(first.head.weight, again.head.weight, rtol=0, atol=0)
    torch.testing.assert_close(
        first.branches["venous"].conv1.weight, again.branches["venous"].conv1.weight, rtol=0, atol=0
    )


def test_fusion_uses_both_phases():
    model = multiphase.MultiPhaseNet(PHASES, embed_dim=32, heads=2, seed=0).eval()
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = model(x, x)
        changed = model(x, torch.zeros_like(x))
    assert base.shape == (2,)
    assert not torch.allclose(base, changed)


def test_variants_route_patients_missing_a_phase():
    cases, labels = _cases(12)
    train = {p: labels[p] for p in list(labels)[:10]}
    del cases["P11"]["venous"]  # a test patient without the venous phase
    variants = multiphase.fit_phase_variants(
        cases,
        train,
        PHASES,
        subsets=[PHASES, ("arterial",)],
        seed=0,
        **{**TRAIN, "epochs": 1},
    )
    predictions = multiphase.predict_variants(variants, cases, device="cpu")
    routed = predictions[predictions["model"] == "multiphase"].set_index("patient_id")
    assert routed.loc["P11", "phases"] == "arterial"
    assert routed.loc["P10", "phases"] == "arterial+venous"
    assert len(routed) == 12
    assert predictions["prediction"].between(0, 1).all()
    cohorts = {p: ("train" if p in train else "test") for p in cases}
    table = multiphase.compare_variants(predictions, labels, cohorts)
    assert set(table["model"]) == {
        "multiphase",
        "multiphase[arterial+venous]",
        "multiphase[arterial]",
    }
    assert table.loc[table["cohort"] == "train", "value"].between(0, 1).all()


def test_grad_cam_equals_cam_for_single_phase_linear_readout():
    """Independent computation: with a linear read-out of globally pooled maps, Grad-CAM
    equals the class activation map of Zhou et al. 2016, sum_k w_k A_k with
    w = head.weight @ project.weight (Selvaraju et al. 2017, section 3.1)."""
    model = multiphase.MultiPhaseNet(("venous",), embed_dim=16, heads=2, seed=2).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():  # orient the read-out so the map is not all clipped by the ReLU
        maps = model.branches["venous"](x)
        w = (model.head.weight @ model.project.weight)[0]
        if torch.einsum("k,bkhw->bhw", w, maps).amax(dim=(1, 2)).min() <= 0:
            model.head.weight.neg_()
    cam = multiphase.grad_cam(model, [x], "venous")
    with torch.no_grad():
        w = (model.head.weight @ model.project.weight)[0]
        manual = torch.relu(torch.einsum("k,bkhw->bhw", w, maps))[:, None]
        manual = torch.nn.functional.interpolate(
            manual, size=(96, 96), mode="bilinear", align_corners=False
        )[:, 0]
        manual = manual / manual.amax(dim=(1, 2), keepdim=True)
    assert cam.shape == (2, 96, 96) and (cam.max(axis=(1, 2)) == 1).all()
    np.testing.assert_allclose(cam, manual.numpy(), atol=1e-5)


def test_gradcam_figure(tmp_path):
    cases, _ = _cases(2)
    model = multiphase.MultiPhaseNet(PHASES, embed_dim=16, heads=2, seed=0)
    fig = multiphase.gradcam_figure(model, cases, ["P00", "P01"])
    fig.savefig(tmp_path / "cam.png")
    assert (tmp_path / "cam.png").stat().st_size > 1000
    assert len(fig.axes) == 4


def test_needs_enough_patients_per_variant():
    cases, labels = _cases(4)
    with pytest.raises(ValueError, match="too few"):
        multiphase.fit_phase_variants(cases, {"P00": 0, "P01": 1}, PHASES, seed=0, **TRAIN)


def test_multiphase_study_from_images_with_missing_phase():
    """From SimpleITK images: slices, variants per phase subset, routed predictions, AUC table."""
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    zz, yy, xx = np.indices((9, 40, 40))
    images, masks, labels, cohorts = {}, {}, {}, {}
    for i in range(10):
        label = i % 2
        inside = (zz - 4) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 36
        hu = np.where(inside, 40 + 80 * label, -60) + rng.normal(0, 20, inside.shape)
        patient = f"S{i}"
        images[patient] = {
            "arterial": sitk.GetImageFromArray((hu + 50 * inside).astype(np.int16)),
            "venous": sitk.GetImageFromArray(hu.astype(np.int16)) if i != 9 else None,
        }
        masks[patient] = sitk.GetImageFromArray(inside.astype(np.uint8))
        labels[patient], cohorts[patient] = label, "train" if i < 8 else "test"
    predictions, metrics, variants = multiphase.multiphase_study(
        images,
        masks,
        labels,
        cohorts,
        PHASES,
        slice_options={"size": 32, "margin_mm": 4},
        seed=0,
        **{**TRAIN, "device": "cpu", "epochs": 1},
    )
    assert set(variants) == {PHASES, ("arterial",), ("venous",)}
    routed = predictions[predictions["model"] == "multiphase"].set_index("patient_id")
    assert routed.loc["S9", "phases"] == "arterial" and routed.loc["S9", "cohort"] == "test"
    assert set(metrics["cohort"]) == {"train", "test"}
