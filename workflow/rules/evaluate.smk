# Stage 7: evaluation of the frozen predictions per cohort (config evaluation): C-index, td-AUC,
# KM / log-rank, calibration, decision curves (survival); AUC with DeLong, cutoff metrics, ROC,
# confusion matrices (binary). Figures: results/figures/{task}_{kind}_{cohort}.png (+ .svg).


rule evaluate_survival:
    input:
        clinical="results/cohort/clinical.tsv",
        predictions="results/models/{task}/predictions.tsv",
        scores="results/models/{task}/scores.tsv",
    output:
        **cohort_figures(["km", "td_auc", "calibration", "dca"], "survival_"),
        metrics=model_table("metrics", "Performance", "survival_metrics"),
        c_comparisons="results/models/{task}/c_comparisons.tsv",
        km="results/models/{task}/km_logrank.tsv",
        calibration="results/models/{task}/calibration.tsv",
        decision_curve="results/models/{task}/decision_curve.tsv",
    log:
        "logs/evaluate/{task}.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        evaluation=EVALUATION,
        task_settings=lambda wildcards: TASKS[wildcards.task],
        seed=SEED,
    script:
        "../scripts/evaluate_survival.py"


rule evaluate_binary:
    input:
        clinical="results/cohort/clinical.tsv",
        predictions="results/models/{task}/predictions.tsv",
        scores="results/models/{task}/scores.tsv",
        labels="results/models/{task}/labels.tsv",
        cutoffs="results/models/{task}/cutoffs.tsv",
    output:
        **cohort_figures(["roc", "confusion", "calibration", "dca", "km"], "binary_"),
        metrics=model_table("metrics", "Performance", "binary_metrics"),
        delong="results/models/{task}/delong.tsv",
        km="results/models/{task}/km_logrank.tsv",
    log:
        "logs/evaluate/{task}.log",
    wildcard_constraints:
        task=task_pattern(BINARY_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        evaluation=EVALUATION,
        task_settings=lambda wildcards: TASKS[wildcards.task],
        seed=SEED,
    script:
        "../scripts/evaluate_binary.py"


# Synthetic runs: how close the radscore comes to the planted risk (results/truth/patients.tsv).
rule radscore_truth:
    input:
        clinical="results/cohort/clinical.tsv",
        scores="results/models/{task}/scores.tsv",
        truth="results/truth/patients.tsv",
    output:
        table=model_table("truth_comparison", "Radscore against the planted truth"),
    log:
        "logs/evaluate/{task}_truth.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        evaluation=EVALUATION,
        task_settings=lambda wildcards: TASKS[wildcards.task],
        seed=SEED,
    script:
        "../scripts/radscore_truth.py"
