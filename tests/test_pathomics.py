"""Pathomics (S3): slide reading, level choice, tiling, entropy filter, tile features, MIL."""

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from sklearn.metrics import roc_auc_score

from radiogenomics.cohort.synthetic import slides as synthetic_slides
from radiogenomics.pathomics import evaluation, features, mil, model, slides, tiling, truth


# --------------------------------------------------------------------------- helpers
def write_test_slide(path, level0, mpp, downsamples=(1, 2)):
    """A pyramidal tiled TIFF with the given level-0 pixels and microns per pixel."""
    with tifffile.TiffWriter(path) as tif:
        for index, factor in enumerate(downsamples):
            level = level0[::factor, ::factor]
            pixels_per_cm = 1e4 / (mpp * factor)
            tif.write(
                level,
                tile=(64, 64),
                photometric="rgb",
                compression="zlib",
                resolution=(pixels_per_cm, pixels_per_cm),
                resolutionunit="CENTIMETER",
                subfiletype=0 if index == 0 else 1,
            )


def grey_tile(levels, side=64):
    """RGB tile whose grey levels (R = G = B) take each of ``levels`` equally often."""
    values = np.resize(np.asarray(levels, np.uint8), side * side).reshape(side, side)
    return np.repeat(values[..., None], 3, axis=-1)


# --------------------------------------------------------------------------- level and grid
@pytest.mark.parametrize(
    "mpp0, downsamples, level, read_px",
    [
        (0.25, (1, 4, 16), 0, 448),  # 40x scan: read 448 px at level 0, resize to 224
        (0.125, (1, 4, 16), 1, 224),  # 80x scan: level 1 is exactly 0.5 um/px
        (0.5, (1, 4), 0, 224),
        (0.46, (1, 4), 0, 243),  # 224 * 0.5 / 0.46 = 243.48 -> 243
        (0.52, (1, 4), 0, 215),  # 4 % coarser than 20x: within the 10 % tolerance
        (0.1, (1, 2, 4, 8), 2, 280),  # level 2: 0.4 um/px, 224 * 0.5 / 0.4 = 280; level 3 (0.8) too coarse
    ],
)
def test_level_choice_for_20x(mpp0, downsamples, level, read_px):
    geometry = slides.choose_level(mpp0, downsamples, slides.magnification_mpp(20), 224)
    assert geometry.level == level
    assert geometry.read_px == read_px
    assert geometry.step0 == pytest.approx(224 * 0.5 / mpp0)


def test_slide_coarser_than_target_is_refused():
    with pytest.raises(ValueError, match="coarser than the target"):
        slides.choose_level(1.0, (1, 4), 0.5, 224)


def test_tile_grid_is_non_overlapping_and_inside():
    grid = slides.tile_grid(1000, 500, 243.5)
    assert sorted(set(grid[:, 0])) == [0, 244, 487, 730]  # rint(k * 243.5)
    assert sorted(set(grid[:, 1])) == [0, 244]
    assert len(grid) == 8


# --------------------------------------------------------------------------- entropy and Otsu
def test_entropy_of_known_tiles():
    assert tiling.image_entropy(grey_tile([128])) == 0.0
    assert tiling.image_entropy(grey_tile([10, 200])) == pytest.approx(1.0)
    assert tiling.image_entropy(grey_tile(range(0, 256, 8))) == pytest.approx(5.0)  # 32 levels
    assert tiling.image_entropy(grey_tile(range(0, 256, 4))) == pytest.approx(6.0)
    # unequal frequencies: p = (1/2, 1/4, 1/4) -> 1.5 bits
    assert tiling.image_entropy(grey_tile([0, 0, 100, 200])) == pytest.approx(1.5)


def test_otsu_matches_brute_force_search():
    rng = np.random.default_rng(0)
    values = np.clip(np.concatenate([rng.normal(0.1, 0.03, 3000), rng.normal(0.5, 0.1, 1000)]), 0, 1)
    counts, edges = np.histogram(values, bins=256, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    best, best_cut = np.inf, None
    for k in range(1, 256):  # minimise the within-class variance over every cut
        low, high = np.repeat(centres[:k], counts[:k]), np.repeat(centres[k:], counts[k:])
        if len(low) == 0 or len(high) == 0:
            continue
        within = len(low) * low.var() + len(high) * high.var()
        if within < best - 1e-12:
            best, best_cut = within, edges[k]
    assert tiling.otsu_threshold(values) == pytest.approx(best_cut)
    assert 0.15 < best_cut < 0.4


def test_saturation_of_grey_and_pure_colour():
    sat = tiling.saturation(np.array([[[200, 200, 200], [255, 0, 0], [0, 0, 0], [200, 100, 100]]]))
    assert sat[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.5])


# --------------------------------------------------------------------------- tiling a slide
@pytest.fixture
def known_slide(tmp_path):
    """40x (0.25 um/px) slide of 4 x 3 tiles at 20x (448 level-0 px each): the left two tile
    columns are textured pink tissue, except tile (col 1, row 2) which is flat pink (entropy
    0); the right two columns are glass."""
    rng = np.random.default_rng(1)
    side = 448
    image = np.full((3 * side, 4 * side, 3), 242, np.uint8)
    tissue = np.clip(rng.normal([220, 140, 180], 25, size=(3 * side, 2 * side, 3)), 0, 255)
    image[:, : 2 * side] = tissue.astype(np.uint8)
    image[2 * side :, side : 2 * side] = (220, 140, 180)
    path = tmp_path / "known.tif"
    write_test_slide(path, image, mpp=0.25, downsamples=(1, 2, 8))
    return path, image


def test_tile_slide_coordinates_level_and_filters(known_slide):
    path, image = known_slide
    table, thumb = tiling.tile_slide("P1", path, magnification=20, tile_px=224, thumbnail_um=8.0)
    assert len(table) == 12
    assert set(table["level"]) == {1} and set(table["read_px"]) == {224}  # level 1 = 0.5 um/px
    assert sorted(set(table["x"])) == [0, 448, 896, 1344]
    assert sorted(set(table["y"])) == [0, 448, 896]
    reasons = {(r.x // 448, r.y // 448): r.reason for r in table.itertuples()}
    assert reasons[(1, 2)] == "entropy"
    assert all(reasons[(c, r)] == "" for c in (0, 1) for r in (0, 1, 2) if (c, r) != (1, 2))
    assert all(reasons[(c, r)] == "background" for c in (2, 3) for r in (0, 1, 2))
    assert table.loc[table["kept"], "entropy"].min() >= 5.0
    assert thumb.shape[:2] == (round(3 * 448 * 0.25 / 8), round(4 * 448 * 0.25 / 8))


def test_read_tile_matches_level_pixels(known_slide):
    path, image = known_slide
    handle = slides.open_slide("P1", path)
    geometry = slides.choose_level(0.25, handle.level_downsamples, 0.5, 224)
    tile = slides.read_tile(handle, 448, 0, geometry)
    handle.close()
    expected = image[::2, ::2][0:224, 224:448]  # level 1 pixels of tile (col 1, row 0)
    assert tile.shape == (224, 224, 3)
    assert np.array_equal(tile, expected)


def test_unreadable_slide_names_patient_and_file(tmp_path):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide")
    with pytest.raises(slides.BadCase, match="P9.*unreadable slide") as error:
        tiling.tile_slide("P9", bad)
    assert str(bad) in str(error.value)
    with pytest.raises(slides.BadCase, match="not found"):
        tiling.tile_slide("P9", tmp_path / "missing.svs")


# --------------------------------------------------------------------------- synthetic slides
def test_synthetic_slide_plants_grade_gated_z_dependent_foci(tmp_path):
    records = [
        synthetic_slides.write_slide(
            "SYN0004", z, 3, "C", tmp_path / f"s{i}.tif", tmp_path / f"p{i}.tif", 3, [900, 700]
        )
        for i, z in enumerate((-1.5, 0.0, 1.5))
    ]
    fractions = [r["aggressive_fraction"] for r in records]
    assert 0.0 < fractions[0] < fractions[1] < fractions[2]
    for record in records:
        assert record["aggressive_fraction"] == pytest.approx(record["planted_fraction"], abs=0.01)
    low_grade = synthetic_slides.write_slide(
        "SYN0004", 1.5, 2, "C", tmp_path / "low.tif", tmp_path / "low_p.tif", 3, [900, 700]
    )
    assert low_grade["planted_fraction"] == low_grade["aggressive_fraction"] == 0.0
    assert synthetic_slides.AGGRESSIVE_LABEL not in synthetic_slides.read_pattern_map(
        tmp_path / "low_p.tif"
    )[0]
    pattern, map_um = synthetic_slides.read_pattern_map(tmp_path / "p2.tif")
    assert map_um == pytest.approx(synthetic_slides.MAP_UM)
    assert pattern.shape == (175, 225)
    handle = slides.open_slide("SYN0004", tmp_path / "s2.tif")
    assert float(handle.properties["openslide.mpp-x"]) == pytest.approx(0.45)
    assert handle.level_count == 3
    handle.close()
    again = synthetic_slides.write_slide(
        "SYN0004", 1.5, 3, "C", tmp_path / "again.tif", tmp_path / "again_p.tif", 3, [900, 700]
    )
    assert again == records[2]
    assert np.array_equal(synthetic_slides.read_pattern_map(tmp_path / "again_p.tif")[0], pattern)


def test_tile_truth_against_hand_computation():
    pattern = np.zeros((20, 20), np.uint8)
    pattern[:, :10] = 1
    pattern[:5, :10] = 2  # aggressive in the top-left quarter of the tissue
    tiles = pd.DataFrame(
        {"x": [0, 0, 200], "y": [0, 100, 0], "tile_px": 40, "target_mpp": 0.5, "slide_mpp": 0.2}
    )
    # a tile covers 20 um = 5 map pixels (4 um); x = 200 px * 0.2 um = 40 um = map column 10
    shares = truth.tile_truth(tiles, pattern, 4.0)
    assert shares.tolist() == [1.0, 0.0, 0.0]
    tiles.loc[0, "y"] = 50  # 10 um down: rows 2.5..7.5 -> rows 2..7, 3 of 6 aggressive
    assert truth.tile_truth(tiles, pattern, 4.0)[0] == pytest.approx(0.5)


# --------------------------------------------------------------------------- tile features
def test_slide_features_file(known_slide, tmp_path):
    path, _ = known_slide
    table, _ = tiling.tile_slide("P1", path)
    out = tmp_path / "features.h5"
    features.slide_features(
        "P1", path, table, out, backbone="resnet18", input_size=64, batch_size=2,
        augmented_views=2, seed=5, device="cpu",
    )
    data = features.read_features(out)
    kept = table[table["kept"]]
    assert data["features"].shape == (len(kept), 512)
    assert data["augmented"].shape == (2, len(kept), 512)
    assert np.array_equal(data["coords"], kept[["x", "y"]].to_numpy())
    assert data["attrs"]["weights"] == "random-init seed 5"
    assert not np.allclose(data["augmented"][0], data["features"])
    plain = tmp_path / "plain.h5"
    features.slide_features(
        "P1", path, table, plain, backbone="resnet18", input_size=64, seed=5, device="cpu"
    )
    again = features.read_features(plain)
    assert "augmented" not in again
    assert np.allclose(again["features"], data["features"], atol=1e-5)  # batching does not matter


def test_augmentation_keeps_shape_and_changes_colour():
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    out = features.augment_tiles(tiles, np.random.default_rng(1))
    assert out.shape == tiles.shape and out.dtype == np.uint8
    assert not np.array_equal(out, tiles)
    assert np.array_equal(out, features.augment_tiles(tiles, np.random.default_rng(1)))


# --------------------------------------------------------------------------- MIL
@pytest.mark.parametrize("gated", [False, True])
def test_attention_sums_to_one_and_ignores_tile_order(gated):
    torch.manual_seed(0)
    net = mil.AttentionMIL(16, attention_hidden=8, classifier_hidden=4, gated=gated).eval()
    bag = torch.randn(11, 16)
    logit, attention = net(bag)
    assert logit.shape == () and attention.shape == (11,)
    assert float(attention.sum()) == pytest.approx(1.0, abs=1e-6)
    order = torch.randperm(11)
    logit_permuted, attention_permuted = net(bag[order])
    assert float(logit_permuted) == pytest.approx(float(logit), abs=1e-5)
    assert torch.allclose(attention_permuted, attention[order], atol=1e-6)


def test_gated_variant_has_the_gate():
    assert mil.AttentionMIL(8, gated=True).pool.U is not None
    assert mil.AttentionMIL(8, gated=False).pool.U is None


def planted_bags(n_bags, seed, n_features=12):
    """Bags of 20-40 instances; a positive bag has 20-40 % signal instances (shifted in the
    first three features), a negative one none."""
    rng = np.random.default_rng(seed)
    bags, labels, signal = [], [], []
    for i in range(n_bags):
        n = int(rng.integers(20, 41))
        bag = rng.normal(size=(n, n_features)).astype(np.float32)
        label = i % 2
        marked = np.zeros(n, bool)
        if label:
            marked[: int(n * rng.uniform(0.2, 0.4))] = True
            bag[marked, :3] += 2.5
        bags.append(bag)
        labels.append(label)
        signal.append(marked)
    return bags, np.array(labels), signal


def test_mil_learns_a_planted_bag_signal_and_attends_to_it():
    bags, labels, _ = planted_bags(60, seed=1)
    test_bags, test_labels, signal = planted_bags(40, seed=2)
    net, history = mil.train_mil(
        bags, labels, lr=1e-3, batch_size=16, iterations=300, seed=3, device="cpu"
    )
    logits, attention = mil.predict(net, test_bags, device="cpu")
    assert roc_auc_score(test_labels, logits) > 0.95
    positive = [i for i in range(40) if test_labels[i]]
    inside = np.mean([attention[i][signal[i]].mean() * len(signal[i]) for i in positive])
    outside = np.mean([attention[i][~signal[i]].mean() * len(signal[i]) for i in positive])
    assert inside > 2 * outside
    assert list(history.columns) == ["iteration", "train_loss", "val_loss"]


def test_mil_training_is_deterministic_with_the_seed():
    bags, labels, _ = planted_bags(20, seed=4)
    runs = [
        mil.train_mil(bags, labels, iterations=20, batch_size=8, seed=7, device="cpu")
        for _ in range(2)
    ]
    for key, value in runs[0][0].state_dict().items():
        assert torch.equal(value, runs[1][0].state_dict()[key]), key
    other = mil.train_mil(bags, labels, iterations=20, batch_size=8, seed=8, device="cpu")[0]
    assert not torch.equal(other.pool.V.weight, runs[0][0].pool.V.weight)


def test_early_stopping_stops_before_the_iteration_budget():
    bags, labels, _ = planted_bags(30, seed=5)
    _, history = mil.train_mil(
        bags, labels, lr=1e-2, iterations=2000, eval_every=5, patience=2, batch_size=8,
        seed=0, device="cpu",
    )
    assert history["iteration"].max() < 2000


MIL_SETTINGS = {
    "endpoint": "dfs_event_before_horizon",
    "horizon_months": 36,
    "variants": ["abmil", "gated_abmil"],
    "reference": "abmil",
    "iterations": 30,
    "batch_size": 8,
    "threshold": "youden",
}


def clinical_for(labels, cohorts):
    n = len(labels)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "cohort": cohorts,
            "dfs_months": np.where(labels == 1, 10.0, 50.0),
            "dfs_event": labels,
        }
    )


def test_pathomics_fit_touches_training_patients_only():
    all_bags, labels, _ = planted_bags(30, seed=6)
    cohorts = ["train"] * 20 + ["test"] * 6 + ["external"] * 4
    clinical = clinical_for(labels, cohorts)
    bags = dict(zip(clinical["patient_id"], all_bags, strict=True))
    first = model.fit_pathomics(clinical, bags, MIL_SETTINGS, seed=1, device="cpu")
    changed = dict(bags)
    rng = np.random.default_rng(9)
    for patient, cohort in zip(clinical["patient_id"], cohorts, strict=True):
        if cohort != "train":
            changed[patient] = rng.normal(5, 3, size=bags[patient].shape).astype(np.float32)
    second = model.fit_pathomics(clinical, changed, MIL_SETTINGS, seed=1, device="cpu")
    assert first["training_patients"] == [f"P{i:03d}" for i in range(20)]
    for variant in MIL_SETTINGS["variants"]:
        a, b = first["models"][variant].state_dict(), second["models"][variant].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    train_rows = first["predictions"]["cohort"] == "train"
    assert np.allclose(
        first["predictions"].loc[train_rows, "risk"], second["predictions"].loc[train_rows, "risk"]
    )
    assert first["median_training_score"] == second["median_training_score"]
    scores = first["scores"]
    assert set(scores["group"]) == {"high", "low"}
    assert (scores.loc[scores["cohort"] == "train", "group"] == "high").sum() == 10
    assert set(first["features"].columns) == {"patient_id", "pathomics__abmil", "pathomics__gated_abmil"}
    assert first["attention"].groupby(["patient_id", "model"])["attention"].sum().round(6).eq(1).all()


# --------------------------------------------------------------------------- evaluation extras
def test_error_rates_mirror_specificity_and_recall():
    metrics_table = pd.DataFrame(
        {
            "model": "slide:abmil",
            "cohort": "test",
            "metric": ["specificity", "recall", "auc"],
            "value": [0.8, 0.6, 0.9],
            "ci_low": [0.7, 0.4, 0.8],
            "ci_high": [0.9, 0.75, 0.95],
        }
    )
    rows = evaluation.error_rate_rows(metrics_table).set_index("metric")
    assert rows.loc["fpr", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx([0.2, 0.1, 0.3])
    assert rows.loc["fnr", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx([0.4, 0.25, 0.6])


def test_subgroups_split_by_stage_grade_and_necrosis():
    table = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(8)],
            "cohort": "test",
            "score": np.arange(8.0),
            "group": ["low"] * 4 + ["high"] * 4,
            "time": [50, 40, 45, 60, 5, 8, 12, 30.0],
            "event": [0, 1, 0, 0, 1, 1, 1, 1],
            "t_number": [1, 1, 2, 3, 3, 4, 1, 2],
            "grade": [1, 2, 2, 3, 3, 4, 4, 2],
            "necrosis": [0, 0, 0, 1, 1, 1, 0, 0],
            "size_cm": np.linspace(2, 9, 8),
        }
    )
    subgroups = evaluation.subgroup_table(table, ["test"]).set_index("subgroup")
    assert subgroups.loc["all patients", "n"] == 8
    assert subgroups.loc["T1-2", "n"] == 5 and subgroups.loc["T3-4", "n"] == 3
    assert subgroups.loc["grade III-IV", "n"] == 4 and subgroups.loc["necrosis", "n"] == 3
    assert subgroups.loc["all patients", "hr"] > 1
    correlation = evaluation.correlation_table(table, ["test"]).set_index(["cohort", "variable"])
    assert correlation.loc[("test", "size_cm"), "rho"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- truth recovery
def test_slides_to_attention_mil_recover_the_planted_pattern(tmp_path):
    """Synthetic slides -> tiles -> random-init ResNet-18 features -> attention MIL trained on
    'aggressive fraction above the median' for half of the slides: on the other half the score
    ranks the planted fraction and the attention picks the planted aggressive tiles."""
    from scipy import stats

    data = []
    for i, z in enumerate(np.linspace(-2.0, 2.0, 16)):
        patient = f"SYN{i + 1:04d}"
        slide, pattern = tmp_path / f"{patient}.tif", tmp_path / f"{patient}_pattern.tif"
        record = synthetic_slides.write_slide(
            patient, z, 4, "AB"[i % 2], slide, pattern, 2, [700, 600]
        )
        tiles, _ = tiling.tile_slide(patient, slide)
        features.slide_features(
            patient, slide, tiles, tmp_path / f"{patient}.h5", backbone="resnet18",
            input_size=64, seed=0, device="cpu",
        )
        kept = tiles[tiles["kept"]].reset_index(drop=True)
        labels_map, map_um = synthetic_slides.read_pattern_map(pattern)
        data.append(
            {
                "bag": features.read_features(tmp_path / f"{patient}.h5")["features"],
                "share": truth.tile_truth(kept, labels_map, map_um),
                "fraction": record["aggressive_fraction"],
            }
        )
    fractions = np.array([d["fraction"] for d in data])
    labels = (fractions > np.median(fractions)).astype(int)
    train, test = np.arange(0, 16, 2), np.arange(1, 16, 2)
    net, _ = mil.train_mil(
        [data[i]["bag"] for i in train], labels[train], lr=1e-3, batch_size=8, iterations=200,
        val_fraction=0.25, seed=0, device="cpu",
    )
    logits, attention = mil.predict(net, [data[i]["bag"] for i in test], device="cpu")
    rho = stats.spearmanr(logits, fractions[test]).statistic
    weights = np.concatenate([a * len(a) for a in attention])
    planted = np.concatenate([data[i]["share"] >= 0.5 for i in test])
    assert rho > 0.7, rho
    assert roc_auc_score(planted, weights) > 0.7
