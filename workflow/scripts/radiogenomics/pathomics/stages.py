"""Entry points of the pathomics rules (workflow/rules/pathomics.smk); each reads its inputs,
calls the library and writes its outputs atomically."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from radiogenomics.core.io import atomic_path, read_tsv, write_json, write_parquet, write_tsv

from . import tiling

# torch, matplotlib and lifelines are imported by the stages that need them, so that the
# per-patient tiling jobs start quickly.
log = logging.getLogger(__name__)


def tiles_stage(patient: str, slide: str, outputs: Mapping, options: Mapping) -> None:
    """Rule ``pathomics_tiles``: tiles.parquet, the plain thumbnail and the QC thumbnail."""
    table, thumb = tiling.tile_slide(patient, slide, **options)
    write_parquet(table, outputs["tiles"])
    with atomic_path(outputs["thumbnail"], ".png") as tmp:
        Image.fromarray(thumb).save(tmp, format="PNG")
    with atomic_path(outputs["qc"], ".png") as tmp:
        tiling.qc_thumbnail(thumb, table).save(tmp, format="PNG")
    counts = table["reason"].replace("", "kept").value_counts().to_dict()
    log.info("%s: %d grid tiles %s", patient, len(table), counts)


def features_stage(
    patient: str, slide: str, tiles: str, output: str, options: Mapping, training: bool, seed: int
) -> None:
    """Rule ``pathomics_features``: features.h5 (augmented views for training patients only)."""
    from . import features

    options = dict(options)
    views = int(options.pop("augmented_views", 0)) if training else 0
    options.pop("augmented_views", None)  # test and external patients: never augmented
    record = features.slide_features(
        patient, slide, pd.read_parquet(tiles), output, augmented_views=views, seed=seed, **options
    )
    log.info("%s: features with %s, %d augmented views", patient, record["weights"], views)


def tile_counts(tile_tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for patient, table in tile_tables.items():
        reasons = table["reason"]
        rows.append(
            {
                "patient_id": patient,
                "grid": len(table),
                "background": int((reasons == "background").sum()),
                "low_entropy": int((reasons == "entropy").sum()),
                "kept": int(table["kept"].sum()),
            }
        )
    return pd.DataFrame(rows)


def attention_heatmaps(
    scores: pd.DataFrame,
    attention: pd.DataFrame,
    tile_tables: Mapping[str, pd.DataFrame],
    thumbnails: Mapping[str, str],
    variant: str,
    n_patients: int,
    stem,
) -> None:
    """Attention over the thumbnails of the highest- and lowest-scoring test patients (or
    training patients when the study has no test cohort)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from radiogenomics.core.figure_writer import save_png_svg

    pool = scores[scores["cohort"] == "test"]
    pool = pool if len(pool) else scores
    ranked = pool.sort_values("score")
    chosen = list(ranked["patient_id"].iloc[-((n_patients + 1) // 2) :][::-1]) + list(
        ranked["patient_id"].iloc[: n_patients // 2]
    )
    chosen = list(dict.fromkeys(chosen))
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.6 * len(chosen), 3.6), squeeze=False)
    for ax, patient in zip(axes[0], chosen, strict=True):
        thumb = np.asarray(Image.open(thumbnails[patient]).convert("RGB"))
        kept = tile_tables[patient].loc[tile_tables[patient]["kept"]].reset_index(drop=True)
        weights = attention.loc[
            (attention["patient_id"] == patient) & (attention["model"] == variant), "attention"
        ].to_numpy() * len(kept)
        heat = np.full(thumb.shape[:2], np.nan)
        for row, w in zip(kept.itertuples(index=False), weights, strict=True):
            heat[row.thumb_y0 : row.thumb_y1, row.thumb_x0 : row.thumb_x1] = w
        ax.imshow(thumb)
        shown = ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0, vmax=max(np.nanmax(heat), 1.0))
        score = float(scores.set_index("patient_id").loc[patient, "score"])
        ax.set_title(f"{patient}: score {score:.2f}", fontsize=9)
        ax.axis("off")
    fig.colorbar(shown, ax=axes[0].tolist(), shrink=0.8, label="attention x tiles (1 = uniform)")
    fig.suptitle(f"Attention ({variant}), highest and lowest scores")
    save_png_svg(fig, stem)


def model_stage(
    inputs: Mapping, outputs: Mapping, settings: Mapping, patients, seed: int, threads: int = 1
) -> None:
    """Rule ``pathomics_model``: fit the MIL variants, write the task tables and figures.

    ``threads`` bounds torch's intra-op threads: the MIL's many small per-bag operations cost
    7-8 times the CPU with two threads as with one on a shared 2-core machine (README).
    """
    import torch

    from . import features, model

    torch.set_num_threads(threads)

    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    data = {
        p: features.read_features(path)
        for p, path in zip(patients, inputs["features"], strict=True)
    }
    tile_tables = {
        p: pd.read_parquet(path) for p, path in zip(patients, inputs["tiles"], strict=True)
    }
    bags = {p: d["features"] for p, d in data.items()}
    augmented = {p: d["augmented"] for p, d in data.items() if "augmented" in d}
    result = model.fit_pathomics(
        clinical, bags, settings, augmented, seed=seed, device=settings.get("device", "auto")
    )
    coords = []
    for (patient, variant), part in result["attention"].groupby(
        ["patient_id", "model"], sort=False
    ):
        xy = data[patient]["coords"]
        coords.append(part.assign(x=xy[:, 0], y=xy[:, 1]))
    attention = pd.concat(coords, ignore_index=True)[["patient_id", "model", "x", "y", "attention"]]
    for name in ("predictions", "scores", "labels", "cutoffs", "history"):
        write_tsv(result[name], outputs[name])
    write_parquet(attention, outputs["attention"])
    write_parquet(result["features"], outputs["features"])
    write_tsv(tile_counts(tile_tables), outputs["tile_counts"])
    with atomic_path(outputs["weights"], ".pt") as tmp:
        model.save_models(result["models"], tmp)
    write_json(
        {
            "training_patients": result["training_patients"],
            "median_training_score": result["median_training_score"],
            "backbone": {k: str(v) for k, v in next(iter(data.values()))["attrs"].items()},
        },
        outputs["summary"],
    )
    attention_heatmaps(
        result["scores"],
        attention,
        tile_tables,
        dict(zip(patients, inputs["thumbnails"], strict=True)),
        settings["reference"],
        int(settings["heatmap_patients"]),
        Path(outputs["heatmaps"]).with_suffix(""),
    )


def evaluate_stage(
    inputs: Mapping, outputs: Mapping, eval_settings: Mapping, task_settings: Mapping, seed: int
) -> None:
    """Rule ``evaluate_pathomics``: the binary-task evaluation, then S3's extra analyses."""
    from radiogenomics.evaluation.stages import evaluate_binary_stage

    from . import evaluation

    evaluate_binary_stage(inputs, outputs, eval_settings, task_settings, "pathomics", seed)
    metrics_table = read_tsv(outputs["metrics"])
    write_tsv(
        pd.concat([metrics_table, evaluation.error_rate_rows(metrics_table)], ignore_index=True),
        outputs["metrics"],
    )
    clinical = read_tsv(inputs["clinical"], dtype={"patient_id": str})
    endpoint = task_settings["km_endpoint"]
    scores = read_tsv(inputs["scores"], dtype={"patient_id": str})
    table = evaluation.with_clinical(scores, clinical, endpoint["time"], endpoint["event"])
    cohorts = eval_settings["cohorts"]
    subgroups = evaluation.subgroup_table(table, cohorts)
    write_tsv(subgroups, outputs["subgroups"])
    for cohort in cohorts:
        evaluation.subgroup_km_figure(
            table, cohort, Path(outputs[f"km_subgroups_{cohort}"]).with_suffix(""), endpoint["time"]
        )
        evaluation.forest_figure(
            subgroups, cohort, Path(outputs[f"forest_{cohort}"]).with_suffix("")
        )
    predictions = read_tsv(inputs["predictions"], dtype={"patient_id": str})
    wide = predictions.pivot(index="patient_id", columns="model", values="risk").reset_index()
    comparators = _comparators(clinical)
    concordance = evaluation.concordance_table(
        table.merge(wide, on="patient_id"),
        comparators,
        [c for c in wide.columns if c != "patient_id"],
        cohorts,
        int(eval_settings["bootstrap"]),
        seed,
    )
    write_tsv(concordance, outputs["concordance"])
    write_tsv(evaluation.correlation_table(table, cohorts), outputs["correlation"])
    evaluation.correlation_figure(table, Path(outputs["correlation_figure"]).with_suffix(""))


def _comparators(clinical: pd.DataFrame) -> pd.DataFrame:
    from radiogenomics.models.comparators import karakiewicz_gap
    from radiogenomics.models.tasks import comparator_scores

    log.warning("%s", karakiewicz_gap(clinical))
    try:
        return comparator_scores(clinical, ["ssign", "uiss"])[["patient_id", "ssign", "uiss"]]
    except ValueError as error:  # a cohort without the comparators' columns (e.g. ECOG)
        log.warning("comparator scores left out: %s", error)
        return clinical[["patient_id"]]


def truth_stage(inputs: Mapping, output: str, patients) -> None:
    """Rule ``pathomics_truth`` (synthetic runs): results/models/pathomics/truth_recovery.tsv."""
    from . import truth

    tile_tables = {
        p: pd.read_parquet(path) for p, path in zip(patients, inputs["tiles"], strict=True)
    }
    slide_truth = pd.DataFrame([pd.read_json(path, typ="series") for path in inputs["slides"]])
    table = truth.recovery_table(
        pd.read_parquet(inputs["attention"]),
        tile_tables,
        dict(zip(patients, inputs["patterns"], strict=True)),
        read_tsv(inputs["predictions"], dtype={"patient_id": str}),
        read_tsv(inputs["labels"], dtype={"patient_id": str}),
        read_tsv(inputs["truth"], dtype={"patient_id": str}),
        slide_truth,
    )
    write_tsv(table, output)
