import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from sklearn.metrics import adjusted_rand_score

from radiogenomics.regions import habitats as regions

# --- body mask -------------------------------------------------------------------------------


def _image(array, spacing_zyx=(1.0, 1.0, 1.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in spacing_zyx[::-1]])
    return image


def test_body_mask_keeps_largest_component_and_fills_holes():
    ct = np.full((12, 30, 30), -1000, dtype=np.int16)
    ct[:, 5:25, 5:25] = 40  # body
    ct[:, 10:15, 10:15] = -900  # air inside the body (enclosed in every slice)
    ct[0:3, 12:14, 18:20] = -900  # gas touching the top slice: only the per-slice fill closes it
    ct[:, 27:29, 27:29] = 40  # scanner table: a smaller separate component
    body = regions.body_mask(_image(ct))
    expected = np.zeros(ct.shape, dtype=bool)
    expected[:, 5:25, 5:25] = True
    np.testing.assert_array_equal(body, expected)


def test_body_mask_of_empty_image_is_empty():
    assert not regions.body_mask(_image(np.full((3, 4, 5), -1000, np.int16))).any()


# --- peritumoral shell ----------------------------------------------------------------------


def _brute_force_distance(tumor, spacing):
    """Distance of every voxel centre to the nearest tumour-voxel centre by enumeration."""
    coords = np.indices(tumor.shape).reshape(3, -1).T * np.asarray(spacing)
    tumor_coords = coords[tumor.ravel()]
    d = np.sqrt(((coords[:, None, :] - tumor_coords[None, :, :]) ** 2).sum(-1)).min(1)
    return d.reshape(tumor.shape)


@pytest.mark.parametrize("spacing", [(2.5, 0.9, 0.7), (0.7, 0.9, 2.5), (1.0, 1.0, 1.0)])
def test_peritumoral_shell_matches_brute_force_on_anisotropic_grid(spacing):
    rng = np.random.default_rng(3)
    shape = (9, 16, 14)
    tumor = ndimage.binary_dilation(rng.random(shape) > 0.985, iterations=1)
    tumor[4, 8, 7] = True
    body = np.ones(shape, dtype=bool)
    body[:, :, :2] = False
    margin = 3.0
    shell = regions.peritumoral_shell(tumor, spacing, body, margin_mm=margin)
    distance = _brute_force_distance(tumor, spacing)
    expected = (~tumor) & body & (distance <= margin + 1e-9)
    np.testing.assert_array_equal(shell, expected)
    # the contract in words: outside the tumour, within margin + half a voxel diagonal, in body
    half_diagonal = 0.5 * np.sqrt(np.sum(np.square(spacing)))
    assert not (shell & tumor).any()
    assert not (shell & ~body).any()
    assert distance[shell].max() <= margin + half_diagonal
    assert (shell[body & ~tumor & (distance <= margin)]).all()
    assert shell.sum() > 0


def test_peritumoral_shell_of_a_compact_tumour_in_a_large_volume():
    """The shell is computed on a crop around the tumour; it must still equal brute force."""
    spacing = (2.5, 0.9, 0.7)
    tumor = np.zeros((12, 30, 26), dtype=bool)
    tumor[3:5, 4:9, 18:23] = True
    tumor[5, 6, 20] = True
    body = np.ones_like(tumor)
    shell = regions.peritumoral_shell(tumor, spacing, body, margin_mm=3.0)
    expected = ~tumor & (_brute_force_distance(tumor, spacing) <= 3.0 + 1e-9)
    np.testing.assert_array_equal(shell, expected)


def test_peritumoral_shell_of_empty_tumour_is_empty():
    empty = np.zeros((4, 5, 6), dtype=bool)
    assert not regions.peritumoral_shell(empty, (1, 1, 1), ~empty).any()


# --- voxel features -------------------------------------------------------------------------


def _brute_force_voxel_features(image, tumor, spacing, radius, smooth_sigma, highpass_sigma):
    """Pairwise sums over tumour voxels: the normalised in-tumour Gaussian (scipy's sampled,
    per-axis truncated kernel) and the ball standard deviation of the high-pass residual."""
    spacing = np.asarray(spacing, dtype=float)
    index = np.argwhere(tumor)
    values = image[tumor]
    delta = index[:, None, :] - index[None, :, :]

    def smooth(sigma):
        sigma_voxels = sigma / spacing
        inside = np.all(np.abs(delta) <= np.floor(4 * sigma_voxels + 0.5), axis=-1)
        weights = np.exp(-0.5 * ((delta / sigma_voxels) ** 2).sum(-1)) * inside
        return weights @ values / weights.sum(1)

    residual = values - smooth(highpass_sigma)
    ball = np.sqrt(((delta * spacing) ** 2).sum(-1)) <= radius + 1e-9
    local_std = np.array([np.std(residual[row]) for row in ball])
    return smooth(smooth_sigma), np.log1p(local_std)


def test_voxel_features_match_brute_force_neighbourhoods():
    rng = np.random.default_rng(0)
    spacing = (2.0, 0.8, 1.0)
    shape = (8, 16, 14)
    tumor = np.zeros(shape, dtype=bool)
    tumor[2:6, 3:13, 2:11] = True
    tumor &= rng.random(shape) > 0.15  # irregular: holes exercise the in-tumour normalisation
    images = {"venous": rng.normal(100, 20, shape), "arterial": rng.normal(150, 30, shape)}
    features = regions.voxel_features(
        images, tumor, spacing, texture_radius_mm=2.0, smooth_sigma_mm=1.2, highpass_sigma_mm=0.9
    )
    assert regions.voxel_feature_names(images) == [
        "arterial_intensity",
        "venous_intensity",
        "arterial_local_std",
        "venous_local_std",
    ]
    assert features.shape == (tumor.sum(), 4)
    for column, phase in enumerate(["arterial", "venous"]):
        smoothed, texture = _brute_force_voxel_features(
            images[phase], tumor, spacing, 2.0, 1.2, 0.9
        )
        np.testing.assert_allclose(features[:, column], smoothed, rtol=1e-9)
        np.testing.assert_allclose(features[:, 2 + column], texture, rtol=1e-7)
    unsmoothed = regions.voxel_features(images, tumor, spacing, texture="none", smooth_sigma_mm=0)
    np.testing.assert_array_equal(unsmoothed[:, 0], images["arterial"][tumor])


def test_voxel_features_smoothing_uses_only_tumour_voxels():
    tumor = np.zeros((10, 10, 10), dtype=bool)
    tumor[3:7, 3:7, 3:7] = True
    image = np.where(tumor, 50.0, 1000.0)  # bright surroundings must not leak in
    features = regions.voxel_features(
        {"venous": image}, tumor, (1, 1, 1), texture="none", smooth_sigma_mm=1.5
    )
    np.testing.assert_allclose(features[:, 0], 50.0)


# --- habitat model on a planted three-habitat toy phantom ------------------------------------

HABITAT_MEANS = {  # (arterial, venous) HU per planted habitat
    1: (25.0, 30.0),  # necrotic core
    2: (90.0, 120.0),  # moderately enhancing, smooth
    3: (170.0, 110.0),  # avidly enhancing, heterogeneous
}
HABITAT_TEXTURE = {1: 6.0, 2: 10.0, 3: 25.0}


def toy_patient(seed, size=40):
    """A lobulated tumour with a necrotic core and two enhancing habitats split by an oblique
    blob boundary; spatially correlated noise whose amplitude is habitat-specific; partial
    volume simulated by blurring the clean mean image."""
    rng = np.random.default_rng(seed)
    grid = np.indices((size, size, size)).astype(float) - size / 2
    radius = np.sqrt((grid**2).sum(0))
    lobes = 1.5 * np.sin(3 * np.arctan2(grid[1], grid[2]) + rng.uniform(0, 6))
    tumor = radius <= 16 + lobes
    core_radius = rng.uniform(5.5, 8.0)
    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    side = np.tensordot(normal, grid, axes=1) + 3 * np.sin(grid[0] / 4)
    truth = np.where(radius <= core_radius, 1, np.where(side > 0, 2, 3))
    truth = np.where(tumor, truth, 0)
    images = {}
    for p, phase in enumerate(["arterial", "venous"]):
        clean = np.full(tumor.shape, 30.0)  # surrounding kidney/fat-ish background
        amplitude = np.zeros(tumor.shape)
        for label in (1, 2, 3):
            clean[truth == label] = HABITAT_MEANS[label][p]
            amplitude[truth == label] = HABITAT_TEXTURE[label]
        clean = ndimage.gaussian_filter(clean, 1.0)
        noise = ndimage.gaussian_filter(rng.normal(size=tumor.shape), 0.8)
        noise /= noise.std()
        images[phase] = clean + amplitude * noise + rng.normal(0, 4, tumor.shape)
    return images, tumor, truth


@pytest.fixture(scope="module")
def toy_cohort():
    """(images, tumour, truth, voxel features) for 9 toy patients: 6 train, 3 held out."""
    cohort = []
    for seed in range(9):
        images, tumor, truth = toy_patient(seed)
        cohort.append(
            (images, tumor, truth, regions.voxel_features(images, tumor, (1.0, 1.0, 1.0)))
        )
    return cohort


def _features(patient):
    return patient[3]


@pytest.fixture(scope="module")
def toy_model(toy_cohort):
    names = regions.voxel_feature_names(["arterial", "venous"])
    return regions.HabitatModel().fit(
        [_features(p) for p in toy_cohort[:6]],
        k_range=(2, 3, 4),
        seed=1,
        max_voxels_per_patient=1000,
        feature_names=names,
        feature_settings={"texture": "local_std"},
    )


def test_habitat_model_recovers_three_planted_habitats(toy_cohort, toy_model):
    model, test = toy_model, toy_cohort[6:]
    assert model.k_ == 3
    for patient in test:
        labels = model.predict(_features(patient))
        truth = patient[2][patient[1]]
        ari = adjusted_rand_score(truth, labels)
        print(f"held-out toy patient ARI = {ari:.3f}")
        assert ari >= 0.8
        # ordering rule: sub1 = lowest arterial mean = the planted necrotic core
        assert np.mean(labels[truth == 1] == 1) > 0.8


def test_habitat_model_is_frozen_after_fit_and_round_trips_through_json(toy_cohort, toy_model):
    model, test = toy_model, toy_cohort[6:]
    test_features = np.vstack([_features(p) for p in test])
    before = model.predict(test_features)
    # predicting other data does not refit: the parameters stay those learnt from training
    means = model.mixture_.means_.copy()
    model.predict(test_features[::-1] * 1.5)
    np.testing.assert_array_equal(model.mixture_.means_, means)
    np.testing.assert_array_equal(model.predict(test_features), before)
    serialised = json.loads(json.dumps(model.to_dict()))
    restored = regions.HabitatModel.from_dict(serialised)
    np.testing.assert_array_equal(restored.predict(test_features), before)
    assert serialised["k"] == model.k_ and set(serialised["bic"]) == {"2", "3", "4"}
    # the same seed gives the same model
    small = [_features(p) for p in toy_cohort[:3]]
    first, again = (
        regions.HabitatModel(n_init=2).fit(
            small, k_range=(2, 3), seed=4, max_voxels_per_patient=200
        )
        for _ in range(2)
    )
    np.testing.assert_array_equal(again.to_dict()["means"], first.to_dict()["means"])
    # ordered components: first-feature means ascending
    first = np.asarray(serialised["means"])[:, 0]
    assert np.all(np.diff(first) > 0)
    # the GMM's log-likelihood agrees with scipy's multivariate normal density
    from scipy.stats import multivariate_normal

    scaled = model.scaler_.transform(test_features[:50])
    dens = sum(
        w * multivariate_normal(m, c).pdf(scaled)
        for w, m, c in zip(
            restored.mixture_.weights_, restored.mixture_.means_, restored.mixture_.covariances_
        )
    )
    np.testing.assert_allclose(restored.mixture_.score_samples(scaled), np.log(dens), rtol=1e-8)


def test_bic_matches_definition(toy_cohort):
    """BIC = -2 log L + p log n with p = K-1 + K d + K d(d+1)/2 (full covariances)."""
    model = regions.HabitatModel().fit(
        [_features(p) for p in toy_cohort[:3]], k_range=(2,), seed=0, max_voxels_per_patient=300
    )
    rng = np.random.default_rng(0)
    sample = np.vstack([regions.subsample_voxels(_features(p), 300, rng) for p in toy_cohort[:3]])
    scaled = model.scaler_.transform(sample)
    n, d = scaled.shape
    k = 2
    p = (k - 1) + k * d + k * d * (d + 1) / 2
    log_likelihood = model.mixture_.score_samples(scaled).sum()
    assert model.bic_[2] == pytest.approx(-2 * log_likelihood + p * np.log(n), rel=1e-9)


def test_bic_figure_writes_labelled_png_and_svg(tmp_path):
    model_dict = {"k": 2, "bic": {"2": 100.0, "3": 120.0, "4": 130.0}}
    regions.bic_figure(model_dict, tmp_path / "bic.png", tmp_path / "bic.svg")
    assert (tmp_path / "bic.png").stat().st_size > 1000
    svg = (tmp_path / "bic.svg").read_text()
    assert "BIC" in svg and "number of habitats" in svg
    regions.bic_figure(model_dict, tmp_path / "again.png", tmp_path / "again.svg")
    assert (tmp_path / "again.svg").read_text() == svg  # reruns are byte-identical


def test_choose_k_elbow_rule_by_hand():
    bic = {2: 9340.0, 3: 8481.0, 4: 8321.0}
    # improvement over one Gaussian = 10959 - 8321 = 2638; K=3 is 160 (6%) from the best
    assert regions.choose_k(bic, 10959.0, 0.15) == 3
    assert regions.choose_k(bic, 10959.0, 0.0) == 4  # plain BIC minimum
    assert regions.choose_k(bic, 10959.0, 0.5) == 2


def test_patient_regions_partition_the_tumour_and_surround_it(toy_cohort, toy_model):
    images, tumor, truth, _ = toy_cohort[7]
    sitk_images = {phase: _image(array.astype(np.int16)) for phase, array in images.items()}
    habitats, parts = regions.patient_regions(sitk_images, tumor, toy_model, margin_mm=3.0)
    assert list(parts) == ["whole", "sub1", "sub2", "sub3", "peri"]
    np.testing.assert_array_equal(habitats > 0, tumor)
    stacked = np.stack([parts[f"sub{k}"] for k in (1, 2, 3)])
    np.testing.assert_array_equal(stacked.sum(0), tumor.astype(int))  # disjoint, covering
    assert not (parts["peri"] & tumor).any() and parts["peri"].any()
    # same labels as predicting the frozen model on features computed directly
    direct = toy_model.predict(
        regions.voxel_features(
            {p: a.astype(np.int16) for p, a in images.items()}, tumor, (1.0, 1.0, 1.0)
        )
    )
    np.testing.assert_array_equal(habitats[tumor], direct)


def test_region_color_tables_name_habitats_by_their_attenuation(tmp_path, toy_model):
    from radiogenomics.core.io import write_color_table

    model_path = tmp_path / "habitat_model.json"
    model_path.write_text(json.dumps(toy_model.to_dict()))
    tables = regions.region_color_tables(model_path, margin_mm=3.0)
    for name, (entries, comments) in tables.items():
        write_color_table(entries, tmp_path / f"{name}.ctbl", comments)
    parsed = {}
    for name in tables:
        rows = [line.split() for line in (tmp_path / f"{name}.ctbl").read_text().splitlines()]
        assert rows[0] == ["#", "Color", "table", "file", f"{name}.ctbl"]
        parsed[name] = {int(r[0]): (r[1], tuple(map(int, r[2:]))) for r in rows if r[0] != "#"}
    # the model's habitat means in HU (to_dict "means"), first feature = arterial intensity
    means = [row[0] for row in toy_model.to_dict()["means"]]
    assert means == sorted(means)
    habitats = parsed["habitats"]
    assert sorted(habitats) == [0, 1, 2, 3]
    assert habitats[0] == ("Background", (0, 0, 0, 0))
    assert [habitats[k][0] for k in (1, 2, 3)] == [
        f"sub{k}_arterial_{round(mean)}HU" for k, mean in enumerate(means, start=1)
    ]
    # blue for the lowest-attenuation habitat, red for the highest, the middle one in between
    assert habitats[1][1] == (43, 131, 186, 255) and habitats[3][1] == (215, 25, 28, 255)
    assert habitats[2][1] == (212, 198, 130, 255)  # halfway between green and orange (round half to even)
    assert parsed["peri"] == {
        0: ("Background", (0, 0, 0, 0)), 1: ("peritumoral_shell_3mm", (255, 0, 255, 255))
    }


def test_frozen_mixture_and_scaler_match_scikit_learn():
    """The per-patient jobs apply the frozen model without scikit-learn; same labels."""
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    x = np.vstack([rng.normal(m, s, size=(400, 3)) for m, s in [(0, 1), (4, 0.5), (-3, 2)]])
    x[:, 2] *= 30
    fitted = StandardScaler().fit(x)
    scaler = regions.FrozenScaler(x.mean(axis=0), regions._scale(x.std(axis=0)))
    np.testing.assert_allclose(scaler.transform(x), fitted.transform(x), rtol=1e-12, atol=1e-12)
    z = fitted.transform(x)
    mixture = GaussianMixture(3, covariance_type="full", random_state=0).fit(z)
    frozen = regions.FrozenMixture(mixture.weights_, mixture.means_, mixture.covariances_)
    np.testing.assert_array_equal(frozen.predict(z), mixture.predict(z))
    # log w_k + log N(x | k) normalised over k is sklearn's posterior
    log_joint = frozen.log_joint(z)
    posterior = np.exp(log_joint - np.logaddexp.reduce(log_joint, axis=1, keepdims=True))
    np.testing.assert_allclose(posterior, mixture.predict_proba(z), atol=1e-9)
    order = np.argsort(mixture.means_[:, 0])
    np.testing.assert_array_equal(frozen.ordered().means_, mixture.means_[order])


def _without_intercept(features):
    """The voxel features of a CT stored without its rescale intercept: intensities +1024 HU."""
    shifted = np.array(features, dtype=float)
    shifted[:, :2] += 1024
    return shifted


def _habitat_fit(arrays, ids, outlier_z):
    return regions.HabitatModel(n_init=2, outlier_z=outlier_z).fit(
        arrays, k_range=(2, 3, 4), seed=1, max_voxels_per_patient=600,
        feature_names=regions.voxel_feature_names(["arterial", "venous"]),
        patient_ids=ids,
    )


def test_outlier_patients_do_not_change_the_good_patients_habitat_model(toy_cohort):
    good = [_features(p) for p in toy_cohort[:6]]
    good_ids = [f"G{i}" for i in range(6)]
    bad = [_without_intercept(_features(p)) for p in toy_cohort[6:8]]
    arrays = good[:3] + bad[:1] + good[3:] + bad[1:]
    ids = good_ids[:3] + ["BAD1"] + good_ids[3:] + ["BAD2"]
    clean = _habitat_fit(good, good_ids, outlier_z=5.0)
    screened = _habitat_fit(arrays, ids, outlier_z=5.0)
    assert clean.screened_out_ == []
    assert [o["patient_id"] for o in screened.screened_out_] == ["BAD1", "BAD2"]
    assert min(o["robust_z"] for o in screened.screened_out_) > 10
    keep = {k: v for k, v in clean.to_dict().items() if k != "screened_out"}
    assert {k: v for k, v in screened.to_dict().items() if k != "screened_out"} == keep
    # Without screening the bad patients take a component and the good patients' habitats move.
    unscreened = _habitat_fit(arrays, ids, outlier_z=None)
    sizes = [
        np.bincount(model.predict(np.vstack(good)), minlength=5)[1:]
        for model in (clean, unscreened)
    ]
    print("good patients' habitat sizes, clean vs unscreened:", sizes)
    assert unscreened.to_dict()["means"] != clean.to_dict()["means"]
    assert np.abs(sizes[0] - sizes[1]).sum() > 0.2 * sizes[0].sum()


def test_outlier_screening_flags_a_minority_only_and_needs_three_patients(toy_cohort):
    good = [_features(p) for p in toy_cohort[:3]]
    bad = [_without_intercept(_features(p)) for p in toy_cohort[3:5]]
    ids = ["G0", "G1", "G2", "B0", "B1"]
    flagged = regions.screen_outlier_patients(good + bad, ids, 5.0)
    assert [o["patient_id"] for o in flagged] == ["B0", "B1"]
    # half the patients on another scale: no majority to tell which half is right
    assert regions.screen_outlier_patients(good[:2] + bad, ids[:2] + ids[3:], 5.0) == []
    assert regions.screen_outlier_patients(good[:1] + bad[:1], ["G0", "B0"], 5.0) == []
    assert regions.screen_outlier_patients(good + bad, ids, None) == []
