"""The study report: one self-contained HTML page a researcher can send to a co-author.

Images are embedded as base64 data URIs, the CSS and the small script that sorts and filters
long tables are inline, and the page fetches nothing. The page is built from a plain list of
``Section`` objects; ``default_sections`` assembles the standard study: methods (from the
resolved config, ``radiogenomics.reporting.methods``), patient flow, Table 1, then one section per
report category. Its figures and tables are the outputs the rules wrap in ``report(...)``, the
same list and caption files as ``snakemake --report`` (``radiogenomics.reporting.outputs``); a
table's title is its report label ``table`` and its columns get readable names
(``radiogenomics.core.labels``). Pass extra ``Section`` objects to add to the page.

Every figure and table links to its provenance sidecar and shows its key facts inline.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from scipy import stats  # noqa: E402

from radiogenomics.core.config import genomics_skip_reason  # noqa: E402
from radiogenomics.core.figure_writer import save_figure  # noqa: E402
from radiogenomics.core.io import read_tsv, write_text, write_tsv  # noqa: E402
from radiogenomics.core.provenance import read_sidecar, sidecar_path, write_sidecar  # noqa: E402
from radiogenomics.core.labels import label, readable_table  # noqa: E402
from radiogenomics.reporting.methods import (  # noqa: E402,F401  (methods_text: the public API)
    _get,
    methods_html,
    methods_text,
    radiomics_bin_width,
)
from radiogenomics.reporting.outputs import (  # noqa: E402
    Declared,
    ReportFile,
    find_report_files,
    render_caption,
)
from radiogenomics.models.settings import task_settings  # noqa: E402

REPORT_DIR = "results/report"
REPORT_RULE = "study_report"  # the Snakemake rule that builds the page (names its sidecars)
FIGURE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")  # declared outputs shown as figures
TABLE_SUFFIXES = (".tsv",)  # declared outputs shown as tables
MAX_TABLE_ROWS = 1000  # rows embedded per table (the file holds them all)
INTERACTIVE_ROWS = 15  # longer tables are sortable, filterable and scroll
COHORT_ORDER = ("train", "test", "external")
CONTINUOUS_VARIABLES = ("age", "size_cm", "os_months", "dfs_months")
# skewed: median [IQR] and rank tests whatever ``parametric`` says
NONNORMAL_VARIABLES = ("size_cm", "os_months", "dfs_months")
EVENT_VARIABLES = ("os_event", "dfs_event")  # 0/1 cells shown as no/yes
CATEGORICAL_VARIABLES = (
    "sex",
    "site",
    "t_stage",
    "t_group",
    "grade",
    "necrosis",
    "os_event",
    "dfs_event",
)


# --------------------------------------------------------------------------- building blocks
@dataclass
class FigureItem:
    path: Path  # relative to the workdir
    caption: str = ""  # plain text, after the caption file's
    title: str | None = None
    caption_html: str = ""  # the caption file rendered (report_outputs.render_caption)


@dataclass
class TableItem:
    title: str
    table: pd.DataFrame
    caption: str = ""
    source: Path | None = None  # the file the table shows (its sidecar is linked)
    caption_html: str = ""
    interactive: bool | None = None  # sortable and filterable; None: when it is long


@dataclass
class TextItem:
    html: str


@dataclass
class Section:
    id: str
    title: str
    items: list = field(default_factory=list)


# --------------------------------------------------------------------------- Table 1
def _format_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def continuous_test(groups: list[np.ndarray], parametric: bool = True) -> tuple[float, str]:
    """Two groups: Welch t-test (or Mann-Whitney U); more: one-way ANOVA (or Kruskal-Wallis)."""
    groups = [g for g in groups if len(g) > 0]
    if len(groups) < 2:
        return float("nan"), ""
    if len(groups) == 2:
        if parametric:
            return float(stats.ttest_ind(*groups, equal_var=False).pvalue), "Welch t-test"
        return float(stats.mannwhitneyu(*groups, alternative="two-sided").pvalue), "Mann-Whitney U"
    if parametric:
        return float(stats.f_oneway(*groups).pvalue), "ANOVA"
    return float(stats.kruskal(*groups).pvalue), "Kruskal-Wallis"


def categorical_test(counts: pd.DataFrame) -> tuple[float, str]:
    """Chi-square test of independence (scipy's default Yates correction on 2 x 2 tables);
    Fisher's exact test on a 2 x 2 table with an expected count below 5."""
    counts = counts.loc[counts.sum(axis=1) > 0, counts.sum(axis=0) > 0]
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return float("nan"), ""
    observed = counts.to_numpy()
    result = stats.chi2_contingency(observed)
    if observed.shape == (2, 2) and (result.expected_freq < 5).any():
        return float(stats.fisher_exact(observed).pvalue), "Fisher exact"
    return float(result.pvalue), "chi-square"


def baseline_table(
    clinical: pd.DataFrame,
    group: str = "cohort",
    continuous: Sequence[str] = CONTINUOUS_VARIABLES,
    categorical: Sequence[str] = CATEGORICAL_VARIABLES,
    parametric: bool = True,
    nonnormal: Sequence[str] = NONNORMAL_VARIABLES,
) -> pd.DataFrame:
    """Table 1: mean (SD), median [IQR] or n (%) per group and overall, with a p-value across
    groups (columns are ids: ``table1_for_report`` gives the readable table).

    Continuous variables: mean (SD) with Welch's t-test / ANOVA, or, for ``nonnormal`` ones
    (every one when not ``parametric``), median [IQR] with Mann-Whitney U / Kruskal-Wallis.
    Missing values are left out of each variable's summary and test, and counted in a
    "missing" row so nothing disappears silently.
    """
    present = [g for g in COHORT_ORDER if g in set(clinical[group])]
    levels = present + sorted(set(clinical[group].dropna()) - set(present), key=str)
    columns = (
        ["variable", "level", f"overall (n={len(clinical)})"]
        + [f"{g} (n={(clinical[group] == g).sum()})" for g in levels]
        + ["p", "test"]
    )
    rows = []
    for var in [v for v in continuous if v in clinical]:
        values = pd.to_numeric(clinical[var], errors="coerce")
        by_group = [values[clinical[group] == g].dropna().to_numpy() for g in levels]
        normal = parametric and var not in nonnormal
        p, test = continuous_test(by_group, normal)
        summary = _mean_sd if normal else _median_iqr
        cells = [summary(values.dropna())] + [summary(pd.Series(g)) for g in by_group]
        rows.append([var, "mean (SD)" if normal else "median [IQR]", *cells, _format_p(p), test])
        rows.extend(_missing_row(var, values.isna(), clinical[group], levels))
    for var in [v for v in categorical if v in clinical]:
        values = clinical[var]
        known = values.notna()
        counts = pd.crosstab(values[known].astype(str), clinical.loc[known, group])
        counts = counts.reindex(columns=levels, fill_value=0)
        p, test = categorical_test(counts)
        total = counts.sum(axis=1)
        for i, level in enumerate(_natural_sorted(counts.index)):
            cells = [_n_pct(total[level], total.sum())] + [
                _n_pct(counts.loc[level, g], counts[g].sum()) for g in levels
            ]
            rows.append(
                [
                    var if i == 0 else "",
                    level,
                    *cells,
                    _format_p(p) if i == 0 else "",
                    test if i == 0 else "",
                ]
            )
        rows.extend(_missing_row(var, ~known, clinical[group], levels))
    return pd.DataFrame(rows, columns=columns)


def _mean_sd(values: pd.Series) -> str:
    if len(values) == 0:
        return ""
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.1f} ({sd:.1f})"


def _median_iqr(values: pd.Series) -> str:
    if len(values) == 0:
        return ""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return f"{median:.1f} [{q1:.1f}, {q3:.1f}]"


TABLE1_NOTE = (
    "Continuous: mean (SD) with Welch's t-test (two cohorts) or one-way ANOVA, or, for skewed "
    "variables (tumour size, follow-up), median [IQR] with the Mann-Whitney U or Kruskal-Wallis "
    "test; categorical: n (%) with the chi-square test, or Fisher's exact test for a 2 x 2 "
    "table with an expected count below 5. Survival times include censored follow-up."
)


def table1_for_report(table: pd.DataFrame) -> pd.DataFrame:
    """``baseline_table`` with clinical names: variables, event levels and column headers."""
    table = table.copy()
    events = {var: False for var in EVENT_VARIABLES}
    current = None
    variables, levels = [], []
    for var, level in zip(table["variable"], table["level"]):
        current = var or current
        variables.append(label(var) if var else "")
        if current in events and level in ("0", "1", "0.0", "1.0"):
            level = "yes" if level.startswith("1") else "no"
        levels.append(level)
    table["variable"], table["level"] = variables, levels
    renamed = {"variable": "Characteristic", "level": "", "test": "Test"}
    for column in table.columns:
        if column not in renamed and column != "p":
            renamed[column] = column[:1].upper() + column[1:]
    return table.rename(columns=renamed)


def _n_pct(n: int, total: int) -> str:
    return f"{int(n)} ({100.0 * n / total:.1f}%)" if total else "0"


def _missing_row(var, missing: pd.Series, groups: pd.Series, levels) -> list:
    if not missing.any():
        return []
    cells = [str(int(missing.sum()))] + [str(int(missing[groups == g].sum())) for g in levels]
    return [["", "missing", *cells, "", ""]]


def _natural_sorted(values) -> list:
    return sorted(
        values, key=lambda v: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(v))]
    )


# --------------------------------------------------------------------------- patient flow
def patient_flow_counts(
    clinical: pd.DataFrame,
    exclusions: pd.DataFrame | None = None,
    raw_clinical: pd.DataFrame | None = None,
) -> dict:
    """Counts for the flow diagram; a patient excluded at several stages counts once (first)."""
    excluded = pd.DataFrame(columns=["patient_id", "stage", "reason"])
    if exclusions is not None and len(exclusions):
        excluded = exclusions.drop_duplicates("patient_id", keep="first")
    included = clinical["patient_id"].nunique()
    assessed = (
        raw_clinical["patient_id"].nunique()
        if raw_clinical is not None
        else included + len(excluded)
    )
    reasons = (
        excluded.groupby(["stage", "reason"], sort=False)
        .size()
        .reset_index(name="n")
        .itertuples(index=False)
    )
    by_cohort = clinical.groupby("cohort")["patient_id"].nunique()
    ordered = [c for c in COHORT_ORDER if c in by_cohort] + sorted(
        set(by_cohort.index) - set(COHORT_ORDER)
    )
    return {
        "assessed": int(assessed),
        "excluded": int(len(excluded)),
        "excluded_by_reason": [(r.stage, r.reason, int(r.n)) for r in reasons],
        "included": int(included),
        "by_cohort": {c: int(by_cohort[c]) for c in ordered},
        "unaccounted": int(assessed - len(excluded) - included),
    }


def draw_patient_flow(counts: Mapping):
    """A CONSORT-style box diagram (matplotlib figure)."""
    reasons = counts["excluded_by_reason"]
    cohorts = counts["by_cohort"]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(1.3, 9.7)
    ax.axis("off")

    def box(x, y, text, width=3.6, height=1.0, color="#e8eef7"):
        ax.add_patch(
            FancyBboxPatch(
                (x - width / 2, y - height / 2),
                width,
                height,
                boxstyle="round,pad=0.05",
                fc=color,
                ec="#33415c",
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=9, wrap=True)

    def arrow(x0, y0, x1, y1):
        ax.annotate(
            "", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "color": "#33415c"}
        )

    box(3, 9, f"Patients assessed\nn = {counts['assessed']}")
    detail = "\n".join(f"{stage}: {reason} (n = {n})" for stage, reason, n in reasons[:8])
    if len(reasons) > 8:
        detail += f"\n... {len(reasons) - 8} more reasons"
    excl_height = 0.8 + 0.32 * max(1, min(len(reasons), 9))
    box(
        7.6,
        6.9,
        f"Excluded n = {counts['excluded']}\n{detail}".strip(),
        width=4.4,
        height=excl_height,
        color="#fbe9e7",
    )
    arrow(3, 8.5, 3, 5.5)
    arrow(3, 6.9, 5.4, 6.9)
    text = f"Included\nn = {counts['included']}"
    if counts.get("unaccounted"):
        text += f"\n({counts['unaccounted']} unaccounted!)"
    box(3, 5, text)
    n = max(1, len(cohorts))
    xs = np.linspace(1.4, 8.6, n) if n > 1 else [3]
    for x, (cohort, k) in zip(xs, cohorts.items()):
        arrow(3, 4.5, x, 2.6)
        box(x, 2.1, f"{cohort}\nn = {k}", width=2.2, color="#e8f5e9")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- overlays
def largest_slice(labels: np.ndarray) -> int:
    """Axial index (numpy axis 0 of a SimpleITK array) with the most labelled voxels."""
    counts = (labels > 0).reshape(labels.shape[0], -1).sum(axis=1)
    if counts.max() == 0:
        raise ValueError("label map is empty")
    return int(np.argmax(counts))


def overlay_figure(
    ct: np.ndarray,
    habitats: np.ndarray,
    peri: np.ndarray | None,
    window=(50.0, 350.0),
    title: str = "",
):
    """CT (soft-tissue window) on the largest tumour slice, habitats in colour, shell outlined."""
    z = largest_slice(habitats)
    level, width = window
    image = np.clip((ct[z] - (level - width / 2)) / width, 0, 1)
    rows, cols = np.nonzero(habitats[z] > 0)
    pad = 25
    r0, r1 = max(rows.min() - pad, 0), min(rows.max() + pad + 1, image.shape[0])
    c0, c1 = max(cols.min() - pad, 0), min(cols.max() + pad + 1, image.shape[1])
    k = int(habitats.max())
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.6))
    for ax in axes:
        ax.imshow(image[r0:r1, c0:c1], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
    masked = np.ma.masked_equal(habitats[z, r0:r1, c0:c1], 0)
    axes[1].imshow(
        masked,
        cmap=plt.get_cmap("viridis", k),
        vmin=0.5,
        vmax=k + 0.5,
        alpha=0.6,
        interpolation="nearest",
    )
    if peri is not None and peri[z].any():
        axes[1].contour(peri[z, r0:r1, c0:c1] > 0, levels=[0.5], colors="#ff6f00", linewidths=1.0)
    axes[0].set_title("CT")
    axes[1].set_title(f"{k} habitats" + (" + shell" if peri is not None else ""))
    fig.suptitle(f"{title} (slice {z})".strip())
    fig.tight_layout()
    return fig


def overlay_items(root: Path, config: Mapping, n_examples: int = 2) -> list:
    """Overlays for the first ``n_examples`` patients that have CT, habitats and shell."""
    import SimpleITK as sitk

    items = []
    window = (
        float(_get(config, "imaging.window.level", 50)),
        float(_get(config, "imaging.window.width", 350)),
    )
    for habitat_file in sorted((root / "results/regions").glob("*/habitats.nii.gz")):
        patient = habitat_file.parent.name
        ct_file = root / "results/imaging" / patient / "ct.nii.gz"
        peri_file = habitat_file.with_name("peri.nii.gz")
        if not ct_file.is_file() or len(items) >= n_examples:
            continue
        arrays = [sitk.GetArrayFromImage(sitk.ReadImage(str(f))) for f in (ct_file, habitat_file)]
        peri = (
            sitk.GetArrayFromImage(sitk.ReadImage(str(peri_file))) if peri_file.is_file() else None
        )
        if not arrays[1].any():
            continue
        fig = overlay_figure(arrays[0], arrays[1], peri, window, title=patient)
        out = save_figure(fig, root / REPORT_DIR / "assets" / f"habitat_overlay_{patient}.png")
        plt.close(fig)
        inputs = [p.relative_to(root) for p in (ct_file, habitat_file, peri_file) if p.is_file()]
        now = dt.datetime.now(dt.timezone.utc)
        write_sidecar(
            out.relative_to(root),
            REPORT_RULE,
            {"patient": patient},
            {"window": list(window)},
            inputs,
            config,
            {},
            now,
            now,
            root=root,
        )
        items.append(
            FigureItem(
                out.relative_to(root),
                f"Patient {patient}: habitats on the largest tumour slice "
                "(right, colours) and the peritumoral shell (orange outline).",
                title=f"Habitats and shell, patient {patient}",
            )
        )
    return items


# --------------------------------------------------------------------------- provenance
def provenance_html(output: Path, root: Path, report_dir: Path) -> str:
    """Link to the sidecar (relative to the report) plus its key facts, readable offline."""
    sidecar = sidecar_path(root / output)
    if not sidecar.is_file():
        return '<p class="prov missing">no provenance sidecar</p>'
    record = read_sidecar(sidecar)
    href = Path(os.path.relpath(sidecar, root / report_dir)).as_posix()
    workflow = record.get("code", {}).get("workflow", {})
    version = (workflow.get("git_commit") or "unknown")[:12]
    if workflow.get("dirty"):
        version += f" + local edits {(workflow.get('tree_sha256') or '')[:12]}"
    inputs = "".join(
        f"<li><code>{html.escape(i['path'])}</code> "
        f"sha256 {html.escape(i['sha256'].removeprefix('dir:')[:16])}</li>"
        for i in record.get("inputs", [])
    )
    # Times stay in the sidecar only, so the page is identical when nothing else changed.
    return (
        f'<details class="prov"><summary>provenance: rule <code>{html.escape(record["rule"])}'
        f'</code> &middot; <a href="{html.escape(href)}">{html.escape(sidecar.name)}</a></summary>'
        f"<p>workflow {html.escape(version)} &middot; config "
        f"{html.escape(record.get('config_sha256', '')[:12])}</p>"
        f"<p>inputs:</p><ul>{inputs}</ul></details>"
    )


# --------------------------------------------------------------------------- sections
def is_synthetic(config: Mapping, root: Path) -> bool:
    """study.synthetic_banner decides when set; otherwise a synthetic source or truth tables."""
    banner = _get(config, "study.synthetic_banner")
    if banner is not None:
        return bool(banner)
    return _get(config, "cohort.source") == "synthetic" or (root / "results/truth").is_dir()


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return read_tsv(path)


# Figure titles by kind (the report label of a per-cohort figure, else the file name without
# its task prefix); the caption files say what each shows.
FIGURE_TITLES = {
    "registration_qc": "Registration quality control",
    "segmentation_qc": "Segmentation quality control",
    "habitat_bic": "Number of habitats by BIC",
    "robustness_icc": "Feature robustness (ICC)",
    "forest": "Multivariable Cox model",
    "nomogram": "Nomogram",
    "shap_summary": "SHAP summary of the XGBoost model",
    "shap_importance": "SHAP feature importance",
    "km": "Kaplan-Meier curves",
    "td_auc": "Time-dependent AUC",
    "calibration": "Calibration",
    "dca": "Decision curves",
    "roc": "ROC curves",
    "confusion": "Confusion matrices",
    "km_subgroups": "Kaplan-Meier curves by clinical subgroup",
    "correlation": "Score versus clinical variables",
    "multiphase_gradcam": "Grad-CAM of the multiphase model",
    "pathomics_attention": "Attention heatmaps",
    "genomics_volcano": "Volcano plot of differential expression",
    "genomics_deg_pca": "PCA of the differentially expressed genes",
    "genomics_deg_heatmap": "Heatmap of the top differentially expressed genes",
    "genomics_wgcna_soft_threshold": "WGCNA soft threshold",
    "genomics_wgcna_module_trait": "WGCNA module-trait correlations",
    "genomics_enrichment_dotplot": "Gene-set enrichment",
    "genomics_deconvolution_bars": "Immune cell fractions",
    "genomics_deconvolution_boxplots": "Immune cell fractions by radscore group",
    "genomics_estimate_boxplots": "ESTIMATE scores by radscore group",
    "genomics_km_top_degs": "Survival by the top differentially expressed genes",
    "patient_flow": "Patient flow",
}


def figure_title(file: ReportFile) -> str:
    labels, wildcards = dict(file.declared.labels), dict(file.wildcards)
    if "figure" in labels:
        title = FIGURE_TITLES.get(labels["figure"], labels["figure"])
        return f"{title}, {labels['cohort']} cohort" if "cohort" in labels else title
    stem = file.path.stem
    if "task" in wildcards and stem.startswith(wildcards["task"] + "_"):
        kind = stem[len(wildcards["task"]) + 1 :]
        return FIGURE_TITLES.get(kind, FIGURE_TITLES.get(stem, kind.replace("_", " ")))
    return FIGURE_TITLES.get(stem, stem.replace("_", " "))


def _task_heading(task: str, config: Mapping) -> str:
    """A subcategory heading: the task and its endpoint in words."""
    settings = (_get(config, "models.tasks", {}) or {}).get(task)
    if task == "pathomics":
        return "Pathomics score"
    if task == "multiphase":
        return "Multiphase CNN"
    if not settings:
        return task
    settings = task_settings(settings)
    if settings["kind"] == "survival":
        return f"Task {task}: {label(settings['time']).replace(' (months)', '').lower()}"
    return f"Task {task}: {label(settings['label']).lower()} ({settings['positive']})"


def _caption_for(declared: Declared | None, captions_dir, config, wildcards=None) -> str:
    if declared is None:
        return ""
    return render_caption(declared.caption, captions_dir, config, wildcards, declared.rule)


def table_title(file: ReportFile) -> str:
    """A declared table's title: its report label ``table``, else its file name in words."""
    title = dict(file.declared.labels).get("table")
    if title:
        return title
    stem = file.path.stem.replace("_", " ").strip()
    return stem[:1].upper() + stem[1:]


def table_anchor(path: str | Path) -> str:
    """The HTML id of a table's block: ``tab-`` and its path without results/ and suffix,
    e.g. ``tab-models-os-metrics`` for results/models/os/metrics.tsv."""
    text = Path(path).with_suffix("").as_posix().removeprefix("results/")
    return "tab-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def category_sections(
    root: Path,
    config: Mapping,
    declared: Sequence[Declared],
    captions_dir: Path | None,
    shown: set[Path],
) -> list[Section]:
    """One section per report category (in the rules' order), subsections per subcategory:
    the declared figures that exist, then the declared tables."""
    files = find_report_files(root, declared, skip_rules=[REPORT_RULE])
    order = [d.category or "Other" for d in declared if d.rule != REPORT_RULE]
    groups: dict[str, dict] = {c: {} for c in dict.fromkeys(order)}
    for suffixes in (FIGURE_SUFFIXES, TABLE_SUFFIXES):  # figures first in every subsection
        for file in files:
            if file.path in shown or file.path.suffix.lower() not in suffixes:
                continue
            shown.add(file.path)
            caption = _caption_for(file.declared, captions_dir, config, file.wildcards)
            if suffixes is FIGURE_SUFFIXES:
                item = FigureItem(file.path, title=figure_title(file), caption_html=caption)
            else:
                table = readable_table(_read_table(root / file.path))
                item = TableItem(table_title(file), table, source=file.path, caption_html=caption)
            groups.setdefault(file.category(), {}).setdefault(file.subcategory(), []).append(item)
    if (root / "results/regions").is_dir():
        overlays = overlay_items(root, config)
        shown.update(i.path for i in overlays)
        groups.setdefault("Regions", {}).setdefault(None, []).extend(overlays)
    sections = []
    skipped = genomics_skip_reason(config)
    if skipped:
        groups.setdefault("Radiogenomics", {})  # the section says why it is empty
    # the configured tasks first, in the config's order, then other subcategories (multiphase,
    # pathomics) as the rules declare them
    tasks = list(_get(config, "models.tasks", {}) or {})
    for category, subgroups in groups.items():
        items = list(subgroups.pop(None, []))
        ordered = sorted(subgroups, key=lambda sub: tasks.index(sub) if sub in tasks else len(tasks))
        for sub in ordered:
            sub_items = subgroups[sub]
            items.append(TextItem(f"<h3>{html.escape(_task_heading(sub, config))}</h3>"))
            items.extend(sub_items)
        if category == "Radiogenomics" and skipped:
            items = [TextItem(f"<p class='note'>Not run: {html.escape(skipped)}.</p>")]
        if items:
            sections.append(Section(_section_id(category), category, items))
    return sections


# a stage ran when its results folder exists (the Methods describe only those)
STAGE_FOLDERS = {
    "Segmentation": "results/segment",
    "Regions": "results/regions",
    "Features": "results/features",
    "Models and evaluation": "results/models",
    "Radiogenomics": "results/genomics",
    "Pathomics": "results/pathomics",
}


def _section_id(category: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")


def default_sections(
    root: str | Path,
    config: Mapping,
    captions_dir: str | Path | None = None,
    declared: Sequence[Declared | Mapping] = (),
) -> list[Section]:
    """Methods, patient flow, Table 1, then one section per report category.

    ``declared``: the outputs the rules wrap in ``report(...)`` (``report_outputs()`` in
    common.smk, as records or ``Declared``); their files are shown with their captions.
    """
    root = Path(root)
    captions_dir = Path(captions_dir) if captions_dir else None
    declared = [d if isinstance(d, Declared) else Declared.from_record(d) for d in declared]
    sections = []
    clinical_path = root / "results/cohort/clinical.tsv"
    if clinical_path.is_file():
        own = {Path(d.pattern).name: d for d in declared if d.rule == REPORT_RULE}
        sections.extend(
            _cohort_sections(root, read_tsv(clinical_path), config, own, captions_dir)
        )
    shown: set[Path] = set()
    sections.extend(category_sections(root, config, declared, captions_dir, shown))
    files = [p for s in sections for p in embedded_files([s])]
    ran = [s.title for s in sections] + [
        stage for stage, folder in STAGE_FOLDERS.items() if (root / folder).is_dir()
    ]
    methods = Section("methods", "Methods", [TextItem(methods_html(config, root, files, ran))])
    return [methods, *sections]


def _cohort_sections(
    root: Path,
    clinical: pd.DataFrame,
    config: Mapping,
    own: Mapping[str, Declared] | None = None,
    captions_dir: Path | None = None,
) -> list[Section]:
    own = own or {}
    exclusions_path = root / "results/cohort/exclusions.tsv"
    segment_path = root / "results/segment/exclusions.tsv"
    raw_path = root / "results/raw/clinical.tsv"
    parts = [read_tsv(p) for p in (exclusions_path, segment_path) if p.is_file()]
    exclusions = pd.concat(parts, ignore_index=True) if parts else None
    if segment_path.is_file():
        # patients whose segmentation is unusable leave the analysis after the cohort split
        segment_excluded = set(read_tsv(segment_path)["patient_id"].astype(str))
        clinical = clinical.loc[~clinical["patient_id"].astype(str).isin(segment_excluded)]
    raw = read_tsv(raw_path) if raw_path.is_file() else None
    inputs = [
        p.relative_to(root)
        for p in (root / "results/cohort/clinical.tsv", exclusions_path, segment_path, raw_path)
        if p.is_file()
    ]
    assets = root / REPORT_DIR / "assets"
    counts = patient_flow_counts(clinical, exclusions, raw)
    fig = draw_patient_flow(counts)
    flow_png = save_figure(fig, assets / "patient_flow.png")
    plt.close(fig)
    table1 = table1_for_report(baseline_table(clinical))
    table1_path = assets / "table1.tsv"
    write_tsv(table1, table1_path)
    now = dt.datetime.now(dt.timezone.utc)
    for output in (flow_png, table1_path):
        write_sidecar(
            output.relative_to(root), REPORT_RULE, {}, {}, inputs, config, {}, now, now, root=root
        )
    flow_caption = (
        f"{counts['assessed']} patients assessed, {counts['excluded']} excluded, "
        f"{counts['included']} included ("
        + ", ".join(f"{k}: {v}" for k, v in counts["by_cohort"].items())
        + ")."
    )
    flow = FigureItem(
        flow_png.relative_to(root),
        flow_caption,
        title=FIGURE_TITLES["patient_flow"],
        caption_html=_caption_for(own.get("patient_flow.png"), captions_dir, config),
    )
    table1_caption = _caption_for(own.get("table1.tsv"), captions_dir, config)
    return [
        Section("flow", "Patient flow", [flow]),
        Section(
            "table1",
            "Baseline characteristics",
            [
                TableItem(
                    "Table 1. Baseline characteristics by cohort",
                    table1,
                    # the caption file's text; this note only where no caption file is given
                    "" if table1_caption else TABLE1_NOTE,
                    source=table1_path.relative_to(root),
                    caption_html=table1_caption,
                    interactive=False,
                )
            ],
        ),
    ]


# --------------------------------------------------------------------------- HTML
CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0 auto;max-width:1100px;padding:0 24px 48px;
color:#1d2433;line-height:1.45}
h1{margin-top:24px}h2{border-bottom:2px solid #33415c;padding-bottom:4px;margin-top:40px}
.banner{background:#b3261e;color:#fff;padding:14px 20px;font-weight:bold;font-size:1.1em;
border-radius:4px;margin-top:16px}
nav ul{columns:3;list-style:none;padding:0}nav a{color:#33415c}
figure{margin:24px 0;border:1px solid #d8dee9;padding:12px;border-radius:4px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.92em;margin-top:8px}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}
th,td{border:1px solid #d8dee9;padding:3px 8px;text-align:left}th{background:#eef2f8}
.tablewrap{overflow-x:auto;margin:24px 0}.scroll{max-height:420px;overflow:auto}
.scroll thead th{position:sticky;top:0}.tools{font-size:.85em;color:#4c566a}
h3{margin-top:28px;color:#33415c}h4{margin-bottom:4px}figcaption p{margin:4px 0}
.note{color:#4c566a;font-style:italic}
details.prov{font-size:.8em;color:#4c566a;margin-top:6px}
.prov.missing{font-size:.8em;color:#b3261e}
footer{margin-top:48px;font-size:.8em;color:#4c566a}
"""

SYNTHETIC_BANNER = (
    '<div class="banner" id="synthetic-banner" role="alert">SYNTHETIC COHORT: every patient '
    "in this report is simulated. The numbers demonstrate the workflow and are not clinical "
    "findings.</div>"
)


def _data_uri(path: Path) -> str:
    mime = {
        ".png": "image/png",
        ".svg": "image/svg+xml",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
    }[path.suffix.lower()]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _render_item(item, root: Path, report_dir: Path, index: int = 0) -> str:
    if isinstance(item, TextItem):
        return item.html
    if isinstance(item, FigureItem):
        title = item.title or item.path.stem.replace("_", " ")
        caption = item.caption_html + (
            f"<p>{html.escape(item.caption)}</p>" if item.caption else ""
        )
        return (
            f'<figure id="fig-{html.escape(item.path.stem)}"><img src="'
            f'{_data_uri(root / item.path)}" alt="{html.escape(title)}">'
            f'<figcaption><p class="title"><b>{html.escape(title)}.</b></p>{caption}'
            f"{provenance_html(item.path, root, report_dir)}</figcaption></figure>"
        )
    if isinstance(item, TableItem):
        return _render_table(item, root, report_dir, index)
    raise TypeError(f"unknown report item {type(item).__name__}")


def _render_table(item: TableItem, root: Path, report_dir: Path, index: int) -> str:
    table = item.table
    interactive = len(table) > INTERACTIVE_ROWS if item.interactive is None else item.interactive
    note = ""
    if len(table) > MAX_TABLE_ROWS:
        note = f"<p class='note'>First {MAX_TABLE_ROWS} of {len(table)} rows; the file has all.</p>"
        table = table.head(MAX_TABLE_ROWS)
    table_id = f"table-{index}"
    body = table.to_html(
        index=False,
        na_rep="",
        float_format=_format_number,
        border=0,
        classes="data sortable" if interactive else "data",
        table_id=table_id,
    )
    if interactive:
        body = (
            f'<p class="tools">{len(table)} rows &middot; click a header to sort &middot; '
            f'<input class="filter" type="search" placeholder="filter rows" '
            f'data-table="{table_id}" aria-label="filter rows"></p>'
            f'<div class="scroll">{body}</div>'
        )
    prov = provenance_html(item.source, root, report_dir) if item.source else ""
    caption = item.caption_html + (f"<p>{html.escape(item.caption)}</p>" if item.caption else "")
    attribute = f' id="{html.escape(table_anchor(item.source))}"' if item.source else ""
    return (
        f'<div class="tablewrap"{attribute}><h4>{html.escape(item.title)}</h4>{caption}{body}'
        f"{note}{prov}</div>"
    )


# Sorts a table.sortable by the clicked header (numbers as numbers) and filters its rows by
# the search box; no library, nothing fetched.
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
    th.title = 'sort'; th.style.cursor = 'pointer';
    th.addEventListener('click', function () {
      var dir = th.dataset.dir === 'asc' ? -1 : 1, body = t.tBodies[0];
      th.dataset.dir = dir > 0 ? 'asc' : 'desc';
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i].textContent, y = b.cells[i].textContent;
        var u = parseFloat(x), v = parseFloat(y);
        return dir * (isNaN(u) || isNaN(v) ? x.localeCompare(y) : u - v);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('input.filter').forEach(function (box) {
  var t = document.getElementById(box.dataset.table);
  box.addEventListener('input', function () {
    var q = box.value.toLowerCase();
    Array.prototype.forEach.call(t.tBodies[0].rows, function (r) {
      r.style.display = r.textContent.toLowerCase().indexOf(q) < 0 ? 'none' : '';
    });
  });
});
"""


def _format_number(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def render_html(
    sections: Sequence[Section],
    root: Path,
    title: str,
    synthetic: bool,
    report_dir: Path = Path(REPORT_DIR),
) -> str:
    nav = "".join(
        f'<li><a href="#{html.escape(s.id)}">{html.escape(s.title)}</a></li>' for s in sections
    )
    counter = iter(range(1, 1 << 30))
    body = "".join(
        f'<section id="{html.escape(s.id)}"><h2>{html.escape(s.title)}</h2>'
        + "".join(_render_item(item, root, report_dir, next(counter)) for item in s.items)
        + "</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"{SYNTHETIC_BANNER if synthetic else ''}<h1>{html.escape(title)}</h1>"
        f"<nav><ul>{nav}</ul></nav>{body}"
        "<footer>Generated by the radiogenomics workflow. Every figure and table links to its "
        "provenance sidecar; verify one with <code>bin/audit PATH</code>.</footer>"
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def embedded_files(sections: Sequence[Section]) -> list[Path]:
    """Every file the sections show (figures and tables with a source), in page order."""
    files = []
    for section in sections:
        for item in section.items:
            path = item.path if isinstance(item, FigureItem) else getattr(item, "source", None)
            if path is not None and Path(path) not in files:
                files.append(Path(path))
    return files


def build_report(
    root: str | Path,
    config: Mapping,
    sections: Sequence[Section] | None = None,
    out_path: str | Path | None = None,
    captions_dir: str | Path | None = None,
    title: str = "ccRCC CT radiomics and radiogenomics study report",
    declared: Sequence[Declared | Mapping] = (),
) -> tuple[Path, list[Path]]:
    """Write ``results/report/index.html`` (or ``out_path``); return it and the files it shows.

    ``sections`` defaults to ``default_sections(root, config, captions_dir, declared)``
    (``declared``: the rules' ``report(...)`` outputs); pass your own
    list (e.g. the defaults plus extra ``Section`` objects) to change the page. The shown files
    (relative to ``root``) belong in the page's provenance sidecar as inputs.
    """
    root = Path(root)
    out = Path(out_path) if out_path else root / REPORT_DIR / "index.html"
    if sections is None:
        sections = default_sections(root, config, captions_dir, declared)
    page = render_html(
        sections,
        root,
        title,
        is_synthetic(config, root),
        report_dir=out.parent.relative_to(root) if out.is_relative_to(root) else out.parent,
    )
    write_text(page, out)
    return out, embedded_files(sections)
