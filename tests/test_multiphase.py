import numpy as np
import pytest
import torch

from radiogenomics.models import multiphase

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


# --- S5's input: the fixed VOI at the tumour centre, largest slice at 0.625 mm ----------------


def _volume(values, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.asarray(values))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection([float(d) for d in direction])
    return image


def _physical(image):
    """Physical (x, y, z) of every voxel, shaped (z, y, x, 3)."""
    from radiogenomics.imaging.grid import physical_coordinates

    return physical_coordinates(image)


def _ball_mask(grid, centre_mm, radius_mm):
    inside = np.linalg.norm(_physical(grid) - np.asarray(centre_mm), axis=-1) <= radius_mm
    return _volume(inside.astype(np.uint8), grid.GetSpacing(), grid.GetOrigin(), grid.GetDirection())


def _ramp(points):
    """HU linear in physical x and y: linear interpolation reproduces it exactly."""
    return 2.0 * points[..., 0] - 3.0 * points[..., 1] + 0.5 * points[..., 2]


@pytest.mark.parametrize("direction", [(1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1)], ids=["identity", "flipped_xy"])
def test_voi_is_centred_on_the_tumour_at_the_slice_spacing(direction):
    """A 140 x 140 x 160 mm VOI at 0.625 mm is 224 x 224 pixels whose centres lie on the grid
    around the tumour's centre of mass, in the image's axes; the HU there are the image's."""
    grid = _volume(np.zeros((60, 180, 200), np.float32), origin=(-100.0, -90.0, -30.0), direction=direction)
    flip = np.asarray(direction, float).reshape(3, 3)
    grid.SetOrigin((flip @ np.array([-100.0, -90.0, -30.0])).tolist())
    image = _volume(_ramp(_physical(grid)).astype(np.float32), origin=grid.GetOrigin(), direction=direction)
    centre = np.array(image.TransformIndexToPhysicalPoint((95, 85, 32)))  # a voxel centre
    mask = _ball_mask(image, centre, 15.0)
    planes, where = multiphase.voi_planes(image, mask, (140, 140, 160), 0.625)
    assert planes.shape == (3, 224, 224) and where.z == 32 and where.spacing_mm == (0.625, 0.625)
    np.testing.assert_allclose(where.centre_mm, centre, atol=1e-6)  # a ball is symmetric about its centre
    offsets = (np.arange(224) - 111.5) * 0.625  # pixel centres from the VOI centre, mm
    axes = flip[:, :2]  # columns along the image's x axis, rows along its y axis
    points = centre + offsets[None, :, None] * axes[:, 0] + offsets[:, None, None] * axes[:, 1]
    np.testing.assert_allclose(planes[1], _ramp(points), atol=1e-3)
    assert np.array_equal(planes[0], planes[2])  # repeat: the slice three times
    # at the image's own spacing the VOI is 140 pixels; voi_slice resizes that to `size`
    native, _ = multiphase.voi_planes(image, mask, (140, 140, 160))
    assert native.shape == (3, 140, 140)
    network, _ = multiphase.voi_slice(image, mask, (140, 140, 160), None, size=64)
    assert network.shape == (3, 64, 64) and network.dtype == np.float32
    full, _ = multiphase.voi_slice(image, mask, (140, 140, 160), 0.625, size=64)
    assert full.shape == (3, 224, 224)  # the slice spacing fixes the pixel count


def test_largest_slice_is_searched_inside_the_voi():
    """The largest tumour slice outside the VOI's z range is not taken."""
    mask = np.zeros((60, 40, 40), np.uint8)
    mask[:, 19:21, 19:21] = 1  # a thin rod along z keeps the tumour one piece
    yy, xx = np.indices((40, 40))
    mask[30][(yy - 20) ** 2 + (xx - 20) ** 2 <= 16] = 1  # area ~50 at z = 30
    mask[58][(yy - 20) ** 2 + (xx - 20) ** 2 <= 25] = 1  # area ~80 at z = 58
    centre_z = np.argwhere(mask)[:, 0].mean()
    assert 30 < centre_z < 40 and 58 - centre_z > 10
    image = _volume(np.full(mask.shape, 40, np.int16))
    _, narrow = multiphase.voi_planes(image, _volume(mask), (30, 30, 20), 0.625)
    _, wide = multiphase.voi_planes(image, _volume(mask), (30, 30, 60), 0.625)
    assert narrow.z == 30 and wide.z == 58


def test_voi_past_the_scan_edge_is_air():
    """A tumour 15 mm from the edge of the field of view: the VOI reaches 55 mm past it, and
    those pixels are air (-1024 HU); the scan's own pixels keep their value."""
    image = _volume(np.full((40, 100, 100), 40, np.int16))  # x, y from 0 to 99 mm
    mask = _ball_mask(image, (15.0, 50.0, 20.0), 8.0)
    planes, where = multiphase.voi_planes(image, mask, (140, 140, 160), 0.625, channels="neighbours")
    x = where.centre_mm[0] + (np.arange(224) - 111.5) * 0.625
    y = where.centre_mm[1] + (np.arange(224) - 111.5) * 0.625
    inside_y = (y >= 0) & (y <= 99)
    # past the outermost voxel centres by more than half a voxel: outside the scan
    assert np.all(planes[:, :, x < -1.0] == -1024) and np.all(planes[:, (y < -1.0) | (y > 100.0), :] == -1024)
    assert np.all(planes[:, inside_y][:, :, x >= 0] == 40)
    assert (x < -1.0).sum() == 86  # -55 mm + 0.3125 + 0.625 c < -1 for c = 0..85


def test_one_voi_crops_every_registered_phase_at_the_same_anatomy():
    """Arterial and venous series on different grids, the patient moved between them (planted
    rotation and shift): after registration (the imaging stage's resampling through the
    transform) the VOI slices of both phases show the same anatomy (arterial = venous + 100 HU
    enhancement); without registration they do not."""
    import SimpleITK as sitk

    from radiogenomics.imaging.ct import preprocess_case

    blobs = [((5.0, -8.0, 2.0), 10.0, 250.0), ((-18.0, 12.0, -6.0), 8.0, -200.0), ((20.0, 15.0, 8.0), 9.0, 180.0)]

    def anatomy(points):  # smooth HU of the patient's body, reference-phase coordinates
        return sum(a * np.exp(-np.sum((points - c) ** 2, axis=-1) / (2 * s**2)) for c, s, a in blobs)

    venous = _volume(np.zeros((36, 125, 125), np.float32), (0.8, 0.8, 2.0), (-50.0, -50.0, -36.0))
    venous = _volume(anatomy(_physical(venous)).astype(np.float32), (0.8, 0.8, 2.0), (-50.0, -50.0, -36.0))
    moved = sitk.Euler3DTransform((0.0, 0.0, 0.0), np.deg2rad(3.0), np.deg2rad(-2.0), np.deg2rad(4.0), (4.0, -3.0, 2.5))
    grid = _volume(np.zeros((30, 115, 110), np.float32), (0.9, 0.9, 2.5), (-48.0, -52.0, -40.0))
    # the arterial scan shows at q the anatomy of reference point moved^-1(q)
    inverse = moved.GetInverse()
    points = _physical(grid).reshape(-1, 3)
    reference_points = np.array([inverse.TransformPoint(p.tolist()) for p in points]).reshape(_physical(grid).shape)
    arterial = _volume((anatomy(reference_points) + 100.0).astype(np.float32), (0.9, 0.9, 2.5), (-48.0, -52.0, -40.0))
    tumour = _ball_mask(venous, (5.0, -8.0, 2.0), 9.0)
    errors = {}
    for name, transforms in (("registered", {"arterial": moved}), ("unregistered", {})):
        phases, mask = preprocess_case({"arterial": arterial, "venous": venous}, tumour, (1.0, 1.0, 1.0), "linear",
                                       "venous", transforms)  # fmt: skip
        cases = multiphase.case_slices({"P": phases}, {"P": mask}, PHASES, voi_mm=(60, 60, 40), slice_spacing_mm=0.625)
        planes = {ph: multiphase.voi_planes(phases[ph], mask, (60, 60, 40), 0.625)[0][1] for ph in PHASES}
        assert cases["P"]["arterial"].shape == (3, 96, 96)
        errors[name] = float(np.max(np.abs(planes["arterial"] - planes["venous"] - 100.0)))
    # registered: interpolation error only (measured 1.8 HU at most); unregistered: ~100 HU off
    assert errors["registered"] < 5.0 and errors["unregistered"] > 50.0, errors


def test_slice_spacing_needs_the_voi():
    with pytest.raises(ValueError, match="set models.multiphase.voi_mm"):
        multiphase.case_slices({}, {}, PHASES, slice_spacing_mm=0.625)


def test_a_slice_spacing_without_a_voi_stops_the_run_before_any_job(tmp_path):
    from conftest import REPO, run_snakemake

    extra = tmp_path / "spacing_only.yaml"
    extra.write_text("models:\n  multiphase:\n    slice_spacing_mm: 0.625\n")
    done = run_snakemake(tmp_path, "-n", configfile=[REPO / "config/tiny.yaml", extra])
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "models.multiphase.slice_spacing_mm" in message and "set models.multiphase.voi_mm" in message
    assert not (tmp_path / "results").exists()
