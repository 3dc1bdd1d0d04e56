# Stage 6: models. One job per task (config models.tasks): selection chain, radscore with a
# locked cutoff, Cox models, nomogram, XGBoost + SHAP, comparator scores (survival tasks);
# region sets x classifiers and a radscore (binary tasks). Fitted on training patients only.
rule survival_model:
    input:
        unpack(task_inputs),
    output:
        selected_features="results/models/{task}/selected_features.tsv",
        funnel="results/models/{task}/funnel.tsv",
        formula="results/models/{task}/radscore_formula.tsv",
        radscore="results/models/{task}/radscore.json",
        lasso_cv="results/models/{task}/lasso_cv.tsv",
        scores="results/models/{task}/scores.tsv",
        predictions="results/models/{task}/predictions.tsv",
        cox_univariate="results/models/{task}/cox_univariate.tsv",
        cox_multivariate="results/models/{task}/cox_multivariate.tsv",
        schoenfeld="results/models/{task}/schoenfeld.tsv",
        stepwise="results/models/{task}/stepwise_aic.tsv",
        nomogram="results/models/{task}/nomogram.json",
        xgboost_curve="results/models/{task}/xgboost_learning_curve.tsv",
        shap_importance="results/models/{task}/shap_importance.tsv",
        comparators="results/models/{task}/comparator_scores.tsv",
        forest=model_figure("forest", "forest"),
        forest_svg="results/figures/{task}_forest.svg",
        nomogram_figure=model_figure("nomogram", "nomogram"),
        nomogram_svg="results/figures/{task}_nomogram.svg",
        shap_summary=model_figure("shap_summary", "shap_summary"),
        shap_summary_svg="results/figures/{task}_shap_summary.svg",
        shap_importance_figure=model_figure("shap_importance", "shap_importance"),
        shap_importance_svg="results/figures/{task}_shap_importance.svg",
    log:
        "logs/models/{task}.log",
    wildcard_constraints:
        task=task_pattern(SURVIVAL_TASKS),
    conda:
        f"{ENVS}/models.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        settings=lambda wildcards: TASKS[wildcards.task],
        seed=SEED,
    script:
        "../scripts/survival_model.py"


rule binary_model:
    input:
        unpack(task_inputs),
    output:
        region_set_cv="results/models/{task}/region_set_cv.tsv",
        selected_features="results/models/{task}/selected_features.tsv",
        funnel="results/models/{task}/funnel.tsv",
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
