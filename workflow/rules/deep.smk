# Stage 5 (deep half): CNN features on the largest tumour slice per phase (S1, S4), their ICC
# under seeded mask perturbation, and the S5 multi-phase classifier. Needs
# `include: "workflow/rules/deep.smk"` in the Snakefile; config keys features.deep,
# features.robustness and models.multiphase (defaults below mirror the library's).

DEEP = {
    "phases": ["arterial", "venous"],
    "backbone": "resnet50",
    "pretrained": "none",
    "pooling": "avg",
    "margin_mm": 10.0,
    "size": 224,
    "channels": "repeat",
    "batch_size": 32,
    "device": "auto",
    "fine_tune": {"enabled": False},
    **config["features"].get("deep", {}),
}
DEEP_ROBUSTNESS = {
    "n_perturbations": 3,
    "grow_mm": 1.0,
    "jitter_mm": 0.5,
    "jitter_smoothing_mm": 2.0,
    "shift_mm": 1.0,
    "form": "ICC(3,1)",
    **config["features"].get("robustness", {}),
}
MULTIPHASE = {
    "phases": ["arterial", "venous"],
    "endpoint": "aggressive",
    "size": 224,
    "margin_mm": 10.0,
    "device": "auto",
    "lr": 1e-4,
    "epochs": 50,
    "patience": 10,
    "batch_size": 16,
    **config.get("models", {}).get("multiphase", {}),
}


def _phase_images(phases):
    return lambda wildcards: expand(
        "results/imaging/{patient}/{phase}.nii.gz",
        patient=included_patients(),
        phase=phases,
    )


def _tumor_masks(wildcards):
    return expand("results/segment/{patient}/tumor.nii.gz", patient=included_patients())


rule deep_features:
    input:
        images=_phase_images(DEEP["phases"]),
        masks=_tumor_masks,
        clinical="results/cohort/clinical.tsv",
    output:
        features="results/features/deep.parquet",
        provenance="results/features/deep_weights.json",
    log:
        "logs/features/deep_features.log",
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
        images=_phase_images(DEEP["phases"]),
        masks=_tumor_masks,
    output:
        robustness="results/features/robustness_deep.tsv",
    log:
        "logs/features/deep_robustness.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        patients=lambda wildcards: included_patients(),
        options=DEEP,
        robustness=DEEP_ROBUSTNESS,
        seed=SEED,
    script:
        "../scripts/deep_robustness.py"


rule multiphase_model:
    input:
        images=_phase_images(MULTIPHASE["phases"]),
        masks=_tumor_masks,
        clinical="results/cohort/clinical.tsv",
    output:
        predictions="results/models/multiphase/predictions.tsv",
        metrics="results/models/multiphase/metrics.tsv",
        figure=multiext("results/figures/multiphase_gradcam", ".png", ".svg"),
    log:
        "logs/models/multiphase.log",
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
