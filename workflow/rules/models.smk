# Stage 6: models. Fitted on training patients only, applied frozen to test and external.
# A survival task (config models.tasks) is five jobs that hand their results on through
# results/models/{task}/steps/ (full precision): (1) selection chain and LASSO-Cox radscore with
# a locked cutoff, (2) Cox models, Schoenfeld, stepwise AIC and nomogram, (3) XGBoost + SHAP on
# the Cox step's candidates, (4) SSIGN / UISS comparators, (5) predictions.tsv and
# radscore.json from the four. A binary task is one job: region sets x classifiers, radscore.
rule survival_radscore:
    input:
        unpack(task_inputs),
    output:
        funnel=model_table("funnel", "Feature selection"),
        selected_features=model_table("selected_features", "Selected features"),
        formula="results/models/{task}/radscore_formula.tsv",
        lasso_cv="results/models/{task}/lasso_cv.tsv",
        scores="results/models/{task}/scores.tsv",
        scores_exact="results/models/{task}/steps/radscore_scores.parquet",
        radscore_part="results/models/{task}/steps/radscore.json",
        predictions_part="results/models/{task}/steps/radscore_predictions.parquet",
    log:
        "logs/models/{task}/radscore.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        settings=survival_settings("radscore"),
        seed=SEED,
    script:
        "../scripts/survival_radscore.py"


rule survival_cox:
    input:
        clinical="results/cohort/clinical.tsv",
        scores_exact=rules.survival_radscore.output.scores_exact,
    output:
        cox_univariate="results/models/{task}/cox_univariate.tsv",
        cox_multivariate="results/models/{task}/cox_multivariate.tsv",
        schoenfeld="results/models/{task}/schoenfeld.tsv",
        stepwise="results/models/{task}/stepwise_aic.tsv",
        nomogram="results/models/{task}/nomogram.json",
        forest=model_figure("forest", "forest"),
        forest_svg="results/figures/{task}_forest.svg",
        nomogram_figure=model_figure("nomogram", "nomogram"),
        nomogram_svg="results/figures/{task}_nomogram.svg",
        design="results/models/{task}/steps/cox_design.parquet",
        selection="results/models/{task}/steps/cox_selection.json",
        predictions_part="results/models/{task}/steps/cox_predictions.parquet",
    log:
        "logs/models/{task}/cox.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=survival_settings("cox"),
    script:
        "../scripts/survival_cox.py"


rule survival_xgboost:
    input:
        design=rules.survival_cox.output.design,
        selection=rules.survival_cox.output.selection,
    output:
        xgboost_curve="results/models/{task}/xgboost_learning_curve.tsv",
        shap_importance="results/models/{task}/shap_importance.tsv",
        shap_summary=model_figure("shap_summary", "shap_summary"),
        shap_summary_svg="results/figures/{task}_shap_summary.svg",
        shap_importance_figure=model_figure("shap_importance", "shap_importance"),
        shap_importance_svg="results/figures/{task}_shap_importance.svg",
        predictions_part="results/models/{task}/steps/xgboost_predictions.parquet",
    log:
        "logs/models/{task}/xgboost.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=survival_settings("xgboost"),
        seed=SEED,
    script:
        "../scripts/survival_xgboost.py"


rule survival_comparators:
    input:
        clinical="results/cohort/clinical.tsv",
        scores_exact=rules.survival_radscore.output.scores_exact,
    output:
        comparators="results/models/{task}/comparator_scores.tsv",
        predictions_part="results/models/{task}/steps/comparators_predictions.parquet",
    log:
        "logs/models/{task}/comparators.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=survival_settings("comparators"),
    script:
        "../scripts/survival_comparators.py"


rule survival_predictions:
    input:
        radscore=rules.survival_radscore.output.predictions_part,
        cox=rules.survival_cox.output.predictions_part,
        xgboost=rules.survival_xgboost.output.predictions_part,
        comparators=rules.survival_comparators.output.predictions_part,
        radscore_part=rules.survival_radscore.output.radscore_part,
        selection=rules.survival_cox.output.selection,
    output:
        predictions="results/models/{task}/predictions.tsv",
        radscore="results/models/{task}/radscore.json",
    log:
        "logs/models/{task}/predictions.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/survival_predictions.py"


rule binary_model:
    input:
        unpack(task_inputs),
    output:
        region_set_cv="results/models/{task}/region_set_cv.tsv",
        funnel=model_table("funnel", "Feature selection"),
        selected_features=model_table("selected_features", "Selected features"),
        formula="results/models/{task}/radscore_formula.tsv",
        radscore="results/models/{task}/radscore.json",
        lasso_cv="results/models/{task}/lasso_cv.tsv",
        scores="results/models/{task}/scores.tsv",
        predictions="results/models/{task}/predictions.tsv",
        cutoffs="results/models/{task}/cutoffs.tsv",
        labels="results/models/{task}/labels.tsv",
    log:
        "logs/models/{task}.log",
    wildcard_constraints:
        task=task_pattern(BINARY_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        settings=lambda wildcards: TASKS[wildcards.task],
        seed=SEED,
    script:
        "../scripts/binary_model.py"
