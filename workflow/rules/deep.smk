# Stage 5 (deep half): CNN features on the largest tumour slice per phase (S1, S4), their ICC
# under seeded mask perturbation, and the S5 multi-phase classifier.

DEEP = config["features"]["deep"]
DEEP_ROBUSTNESS = config["features"]["robustness"]
MULTIPHASE = config["models"]["multiphase"]
if MULTIPHASE["slice_spacing_mm"] is not None and MULTIPHASE["voi_mm"] is None:
    raise WorkflowError(
        "config key 'models.multiphase.slice_spacing_mm' resamples the fixed VOI: set "
        "models.multiphase.voi_mm too (S5: [140, 140, 160]), or leave slice_spacing_mm null"
    )


rule deep_features:
    input:
        images=cohort_phase_images(DEEP["phases"]),
        masks=cohort_tumor_masks(),
        clinical="results/cohort/clinical.tsv",
    output:
        features="results/features/deep.parquet",
        provenance="results/features/deep_weights.json",
    log:
        "logs/features/deep_features.log",
    conda:
        f"{ENVS}/deep.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        patients=lambda wildcards: included_patients(),
        options=DEEP,
        seed=SEED,
    script:
        "../scripts/deep_features.py"


rule deep_robustness:
    input:
        images=cohort_phase_images(DEEP["phases"], robustness_subset),
        masks=cohort_tumor_masks(robustness_subset),
    output:
        robustness="results/features/robustness_deep.tsv",
    log:
        "logs/features/deep_robustness.log",
    conda:
        f"{ENVS}/deep.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        patients=lambda wildcards: robustness_subset(),
        options=DEEP,
        robustness=DEEP_ROBUSTNESS,
        seed=SEED,
    script:
        "../scripts/deep_robustness.py"


rule multiphase_model:
    input:
        images=cohort_phase_images(MULTIPHASE["phases"]),
        masks=cohort_tumor_masks(),
        clinical="results/cohort/clinical.tsv",
    output:
        predictions="results/models/multiphase/predictions.tsv",
        metrics=report_table(
            "results/models/multiphase/metrics.tsv",
            "multiphase_metrics",
            "Models and evaluation",
            "Performance",
            subcategory="multiphase",
        ),
        figure=[
            report(
                "results/figures/multiphase_gradcam.png",
                caption="../report/multiphase_gradcam.rst",
                category="Models and evaluation",
                subcategory="multiphase",
            ),
            "results/figures/multiphase_gradcam.svg",
        ],
    log:
        "logs/models/multiphase.log",
    conda:
        f"{ENVS}/deep.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        patients=lambda wildcards: included_patients(),
        options=MULTIPHASE,
        seed=SEED,
    script:
        "../scripts/multiphase_model.py"
