"""Readable names (with units) for the project's column ids and coded values.

One dictionary for the study report: column headers, Table 1 variables, model, metric and step
names. ``label`` falls back to a few patterns (``td_auc_36``, ``sub2``, ``mix:logistic``) and
leaves anything else unchanged, so an unknown id is shown as it is, never guessed.
"""

from __future__ import annotations

import re

import pandas as pd

LABELS: dict[str, str] = {
    # clinical table (output contract) and Table 1
    "patient_id": "Patient",
    "cohort": "Cohort",
    "site": "Site",
    "age": "Age (years)",
    "sex": "Sex",
    "size_cm": "Tumour size (cm)",
    "os_months": "Overall survival (months)",
    "os_event": "Death",
    "dfs_months": "Disease-free survival (months)",
    "dfs_event": "Recurrence or death",
    "t_stage": "T stage",
    "t_group": "T stage group",
    "t_number": "T stage (number)",
    "grade": "ISUP grade",
    "necrosis": "Necrosis",
    "bmi": "Body-mass index (kg/m²)",
    "ecog": "ECOG performance status",
    "mvi": "Microvascular invasion",
    # registration and segmentation QC
    "phase": "Phase",
    "reference": "Reference phase",
    "method": "Method",
    "metric": "Metric",
    "initial_metric": "Initial metric",
    "iterations": "Iterations",
    "seconds": "Time (s)",
    "tre_mm": "TRE (mm)",
    "tre_max_mm": "Maximum TRE (mm)",
    "tre_unregistered_mm": "TRE before registration (mm)",
    "source": "Source",
    "dice": "Dice",
    "hd95_mm": "HD95 (mm)",
    "volume_diff_ml": "Volume difference (mL)",
    "tumor_ml": "Tumour volume (mL)",
    "reference_ml": "Reference volume (mL)",
    "components": "Connected components",
    "kidney_overlap": "Kidney overlap",
    "flagged": "Flagged",
    "ok": "Usable",
    "reason": "Reason",
    # habitats, features, selection
    "k": "Number of habitats (K)",
    "bic": "BIC",
    "chosen": "Chosen",
    "feature": "Feature",
    "icc": "ICC",
    "form": "ICC form",
    "n_patients": "Patients",
    "coefficient": "Coefficient",
    "step": "Selection step",
    "n_features": "Features left",
    "region_set": "Region set",
    "input": "input",
    "robustness": "robustness (ICC)",
    "valid": "valid values",
    "redundancy": "redundancy (Spearman)",
    "cox": "univariate Cox",
    "mrmr": "mRMR",
    "lasso": "LASSO",
    # models and metrics
    "model": "Model",
    "value": "Value",
    "ci_low": "95% CI, lower",
    "ci_high": "95% CI, upper",
    "n": "n",
    "events": "Events",
    "p": "p",
    "radscore": "Radscore",
    "radscore_groups": "Radscore groups",
    "clinical_cox": "Clinical Cox model",
    "cox_nomogram": "Cox nomogram (radscore + clinical)",
    "xgboost": "XGBoost (radscore + clinical)",
    "ssign": "SSIGN score",
    "uiss": "UISS",
    "logistic": "logistic regression",
    "svm": "SVM",
    "random_forest": "random forest",
    "lightgbm": "LightGBM",
    "naive_bayes": "naive Bayes",
    "mlp": "MLP",
    "multiphase": "Multiphase CNN",
    "abmil": "attention MIL",
    "gated_abmil": "gated attention MIL",
    "slide": "slide",
    "whole": "whole tumour",
    "habitats": "habitats",
    "peri": "peritumoral shell",
    "mix": "best habitat + shell",
    "harrell_c": "Harrell's C-index",
    "uno_c": "Uno's C-index",
    "hr_high_vs_low": "Hazard ratio, high vs low",
    "logrank_p": "Log-rank p",
    "auc": "AUC",
    "accuracy": "Accuracy",
    "f1": "F1 score",
    "precision": "Precision",
    "recall": "Recall (sensitivity)",
    "specificity": "Specificity",
    "fpr": "False-positive rate",
    "fnr": "False-negative rate",
    "truth_column": "Planted truth",
    "risk": "planted risk",
    "c_radscore": "C-index, radscore",
    "c_truth": "C-index, planted truth",
    "difference": "Difference",
    "spearman_rho": "Spearman ρ",
    # pathomics
    "measure": "Measure",
    "marker": "Marker",
    "subgroup": "Subgroup",
    "n_high": "High-score patients",
    "hr": "Hazard ratio",
    "variable": "Variable",
    "rho": "Spearman ρ",
    "grid": "Grid tiles",
    "background": "Background tiles",
    "low_entropy": "Low-entropy tiles",
    "kept": "Tiles kept",
    "attention_auc": "Attention AUC (planted tiles)",
    "attention_ratio": "Attention ratio (planted / other tiles)",
    "score_spearman_z": "Spearman ρ, score vs planted z",
    "auc_ratio": "AUC ratio",
    # genomics
    "gene": "Gene",
    "baseMean": "Mean normalised count",
    "log2FoldChange": "log2 fold change",
    "lfcSE": "log2 fold change SE",
    "stat": "Statistic",
    "pvalue": "p",
    "padj": "Adjusted p (BH)",
    "direction": "Direction",
    "library": "Gene-set library",
    "term": "Gene set",
    "overlap": "Overlap",
    "set_size": "Set size",
    "es": "Enrichment score",
    "nes": "Normalised enrichment score",
    "genes": "Genes",
    "stromal_score": "Stromal score",
    "immune_score": "Immune score",
    "estimate_score": "ESTIMATE score",
    "tumor_purity": "Tumour purity",
    "go_bp": "GO biological process",
    "go_cc": "GO cellular component",
    "go_mf": "GO molecular function",
    "kegg": "KEGG",
    "hallmark": "MSigDB hallmark",
}

_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^td_auc_(\d+(?:\.\d+)?)$"), r"Time-dependent AUC at \1 months"),
    (re.compile(r"^sub(\d+)$"), r"habitat \1"),
    (re.compile(r"^deconvolution_r_(.+)$"), r"Deconvolution r, \1"),
]

# columns whose cells are ids too (models, metrics, steps, ...), labelled like the headers
CODED_COLUMNS = ("model", "metric", "step", "region_set", "measure", "marker", "truth_column",
                 "variable")  # fmt: skip


def label(name) -> str:
    """Readable name of a column id or coded value; ``a:b`` labels each part."""
    text = str(name)
    if text in LABELS:
        return LABELS[text]
    for pattern, replacement in _PATTERNS:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    if ":" in text:
        head, _, tail = text.partition(":")
        return f"{label(head)}: {label(tail)}"
    return text


def endpoint_name(time_column) -> str:
    """The endpoint of a time column in words, without its unit: ``os_months`` -> "Overall survival"."""
    return re.sub(r" \([^)]*\)$", "", label(time_column))


def readable_table(table: pd.DataFrame) -> pd.DataFrame:
    """The table with readable headers and coded cells (a copy; the file is not changed)."""
    table = table.copy()
    for column in CODED_COLUMNS:
        if column in table and table[column].dtype == object:
            table[column] = table[column].map(lambda v: label(v) if isinstance(v, str) else v)
    return table.rename(columns={c: label(c) for c in table.columns})
