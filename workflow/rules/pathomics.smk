# Stage: pathomics (S3). One H&E whole-slide image per patient -> tissue tiles at the
# configured magnification (entropy filter) -> CNN tile features -> attention MIL (plain and
# gated), fitted on training patients and applied frozen -> evaluated like a binary task, plus
# S3's subgroup, concordance and correlation analyses. Synthetic runs generate the slides.

PATHOMICS_TILES = config["pathomics"]["tiles"]
PATHOMICS_FEATURES = config["pathomics"]["features"]
PATHOMICS_MIL = config["pathomics"]["mil"]
PATHOMICS_TASK = {
    "positive": "recurrence",
    "reference": {"region_set": "slide", "model": PATHOMICS_MIL["reference"]},
    "km_endpoint": {"time": "dfs_months", "event": "dfs_event"},
}


if SYNTHETIC:

    rule synthetic_slide:
        input:
            truth="results/truth/patients.tsv",
            clinical="results/raw/clinical.tsv",
        output:
            slide="results/raw/slides/{patient}.tif",
            pattern="results/truth/{patient}/slide_pattern.tif",
            record="results/truth/{patient}/slide.json",
        log:
            "logs/cohort/synthetic_slide/{patient}.log",
        conda:
            f"{ENVS}/pathomics.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            slides=config["synthetic"]["slides"],
            seed=SEED,
        script:
            "../scripts/synthetic_slide.py"


rule pathomics_tiles:
    input:
        slide=slide_file,
    output:
        tiles="results/pathomics/{patient}/tiles.parquet",
        thumbnail="results/pathomics/{patient}/thumbnail.png",
        qc="results/pathomics/{patient}/tiles_qc.png",
    log:
        "logs/pathomics/tiles/{patient}.log",
    conda:
        f"{ENVS}/pathomics.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        options=PATHOMICS_TILES,
    script:
        "../scripts/pathomics_tiles.py"


rule pathomics_features:
    input:
        slide=slide_file,
        tiles="results/pathomics/{patient}/tiles.parquet",
    output:
        features="results/pathomics/{patient}/features.h5",
    log:
        "logs/pathomics/features/{patient}.log",
    conda:
        f"{ENVS}/pathomics.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=PATHOMICS_FEATURES,
        # stain/colour augmentation in training only
        training=lambda wildcards: wildcards.patient in training_patients(),
        seed=SEED,
    script:
        "../scripts/pathomics_features.py"


rule pathomics_model:
    input:
        clinical="results/cohort/clinical.tsv",
        features=pathomics_inputs("results/pathomics/{patient}/features.h5"),
        tiles=pathomics_inputs("results/pathomics/{patient}/tiles.parquet"),
        thumbnails=pathomics_inputs("results/pathomics/{patient}/thumbnail.png"),
    output:
        predictions="results/models/pathomics/predictions.tsv",
        scores="results/models/pathomics/scores.tsv",
        labels="results/models/pathomics/labels.tsv",
        cutoffs="results/models/pathomics/cutoffs.tsv",
        history="results/models/pathomics/mil_history.tsv",
        attention="results/models/pathomics/attention.parquet",
        weights="results/models/pathomics/mil_weights.pt",
        summary="results/models/pathomics/mil.json",
        tile_counts=report_table(
            "results/models/pathomics/tile_counts.tsv",
            "pathomics_tile_counts",
            "Pathomics",
            "Tiles per slide",
        ),
        features="results/features/pathomics.parquet",
        heatmaps=report(
            "results/figures/pathomics_attention.png",
            caption="../report/pathomics_attention.rst",
            category="Pathomics",
        ),
        heatmaps_svg="results/figures/pathomics_attention.svg",
    log:
        "logs/models/pathomics.log",
    conda:
        f"{ENVS}/pathomics.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        patients=lambda wildcards: pathomics_patients(),
        settings=PATHOMICS_MIL,
        seed=SEED,
    script:
        "../scripts/pathomics_model.py"


rule evaluate_pathomics:
    input:
        clinical="results/cohort/clinical.tsv",
        predictions="results/models/{task}/predictions.tsv",
        scores="results/models/{task}/scores.tsv",
        labels="results/models/{task}/labels.tsv",
        cutoffs="results/models/{task}/cutoffs.tsv",
    output:
        **cohort_figures(["roc", "confusion", "calibration", "dca", "km"], "binary_"),
        **pathomics_figures(["km_subgroups", "forest"]),
        correlation_figure=report(
            "results/figures/{task}_correlation.png",
            caption="../report/pathomics_correlation.rst",
            category="Pathomics",
        ),
        correlation_figure_svg="results/figures/{task}_correlation.svg",
        metrics=model_table("metrics", "Performance", "pathomics_metrics"),
        delong="results/models/{task}/delong.tsv",
        km="results/models/{task}/km_logrank.tsv",
        subgroups=pathomics_table("subgroups", "Clinical subgroups"),
        concordance=pathomics_table("concordance", "Concordance"),
        correlation=pathomics_table("correlation", "Score versus clinical variables"),
    log:
        "logs/evaluate/{task}.log",
    wildcard_constraints:
        task="pathomics",
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        evaluation=EVALUATION,
        task_settings=PATHOMICS_TASK,
        seed=SEED,
    script:
        "../scripts/evaluate_pathomics.py"


# Synthetic runs: attention against the planted aggressive pattern, score against z.
rule pathomics_truth:
    input:
        attention="results/models/pathomics/attention.parquet",
        predictions="results/models/pathomics/predictions.tsv",
        labels="results/models/pathomics/labels.tsv",
        truth="results/truth/patients.tsv",
        tiles=pathomics_inputs("results/pathomics/{patient}/tiles.parquet"),
        patterns=pathomics_inputs("results/truth/{patient}/slide_pattern.tif"),
        slides=pathomics_inputs("results/truth/{patient}/slide.json"),
    output:
        table=report_table(
            "results/models/pathomics/truth_recovery.tsv",
            "pathomics_truth_recovery",
            "Pathomics",
            "Recovery of the planted tissue pattern",
        ),
    log:
        "logs/evaluate/pathomics_truth.log",
    conda:
        f"{ENVS}/pathomics.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        patients=lambda wildcards: pathomics_patients(),
    script:
        "../scripts/pathomics_truth.py"
