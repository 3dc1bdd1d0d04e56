"""The study report: one self-contained HTML page a researcher can send to a co-author.

Images are embedded as base64 data URIs, the CSS is inline and there is no script, so the page
opens offline and fetches nothing. The page is built from a plain list of ``Section`` objects;
``default_sections`` assembles the standard study (banner, methods, patient flow, Table 1, then
one section per stage in ``STAGE_SPECS`` with whatever outputs exist). To add a stage, append a
``StageSpec`` (glob patterns for its figures and tables) or pass extra ``Section`` objects.

Every figure and table links to its provenance sidecar and shows its key facts inline.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
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
import yaml  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from scipy import stats  # noqa: E402

from radiogenomics.config import genomics_skip_reason  # noqa: E402
from radiogenomics.figures import save_figure  # noqa: E402
from radiogenomics.io import read_tsv, write_text, write_tsv  # noqa: E402
from radiogenomics.provenance import (  # noqa: E402
    package_versions,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

REPORT_DIR = "results/report"
REPORT_RULE = "study_report"  # the Snakemake rule that builds the page (names its sidecars)
FIGURES_DIR = "results/figures"
MAX_TABLE_ROWS = 40
COHORT_ORDER = ("train", "test", "external")
CONTINUOUS_VARIABLES = ("age", "size_cm", "os_months", "dfs_months")
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
    caption: str = ""
    title: str | None = None


@dataclass
class TableItem:
    title: str
    table: pd.DataFrame
    caption: str = ""
    source: Path | None = None  # the file the table shows (its sidecar is linked)


@dataclass
class TextItem:
    html: str


@dataclass
class Section:
    id: str
    title: str
    items: list = field(default_factory=list)


@dataclass
class StageSpec:
    """Where a stage's outputs live: glob patterns relative to the workdir."""

    id: str
    title: str
    figures: Sequence[str] = ()
    tables: Sequence[str] = ()
    intro: str = ""


STAGE_SPECS: list[StageSpec] = [
    StageSpec(
        "imaging",
        "Phase registration",
        figures=("results/figures/registration_qc*.png",),
        tables=("results/imaging/registration.tsv",),
        intro="Every phase registered to the reference phase; checkerboards of a seeded sample.",
    ),
    StageSpec(
        "segment",
        "Segmentation",
        figures=("results/figures/segmentation_qc.png",),
        tables=("results/segment/qc.tsv",),
        intro="Masks used by every later stage (reference, nnU-Net or correction); flagged patients first.",
    ),
    StageSpec(
        "regions",
        "Habitats and peritumoral shell",
        figures=(
            "results/regions/habitat_bic.png",
            "results/figures/habitat_bic*.png",
            "results/figures/habitat_overlay*.png",
            "results/figures/*shell*.png",
            "results/figures/*overlay*.png",
        ),
        tables=("results/regions/habitat_bic.tsv",),
        intro="Number of habitats chosen by BIC on training voxels; example overlays.",
    ),
    StageSpec(
        "features",
        "Features and robustness",
        figures=("results/figures/*icc*.png", "results/figures/*robustness*.png"),
        tables=("results/features/robustness.tsv",),
    ),
    StageSpec(
        "selection",
        "Feature selection",
        figures=("results/figures/*funnel*.png",),
        tables=("results/models/*/funnel.tsv", "results/models/*/selected_features.tsv"),
    ),
    StageSpec(
        "pathomics",
        "Pathomics (whole-slide images)",
        figures=("results/figures/pathomics_*.png",),
        tables=(
            "results/models/pathomics/truth_recovery.tsv",
            "results/models/pathomics/metrics.tsv",
            "results/models/pathomics/concordance.tsv",
            "results/models/pathomics/subgroups.tsv",
            "results/models/pathomics/correlation.tsv",
            "results/models/pathomics/tile_counts.tsv",
        ),
        intro="Attention-MIL recurrence score from H&E slides (S3), fitted on training patients.",
    ),
    StageSpec(
        "models",
        "Models and evaluation",
        figures=(
            "results/figures/*roc*.png",
            "results/figures/*km*.png",
            "results/figures/*calibration*.png",
            "results/figures/*dca*.png",
            "results/figures/*forest*.png",
            "results/figures/*shap*.png",
        ),
        tables=("results/models/*/truth_comparison.tsv", "results/models/*/metrics.tsv"),
    ),
    StageSpec(
        "genomics",
        "Radiogenomics",
        figures=(
            "results/figures/*volcano*.png",
            "results/figures/*pca*.png",
            "results/figures/*enrich*.png",
            "results/figures/*gsea*.png",
            "results/figures/*wgcna*.png",
            "results/figures/*deconv*.png",
            "results/figures/*estimate*.png",
            "results/figures/*tmb*.png",
        ),
        tables=(
            "results/genomics/truth_recovery.tsv",
            "results/genomics/deg.tsv",
            "results/genomics/enrichment.tsv",
            "results/genomics/estimate.tsv",
        ),
    ),
]


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
    """Chi-square test of independence (scipy's default Yates correction on 2 x 2 tables)."""
    counts = counts.loc[counts.sum(axis=1) > 0, counts.sum(axis=0) > 0]
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return float("nan"), ""
    return float(stats.chi2_contingency(counts.to_numpy()).pvalue), "chi-square"


def baseline_table(
    clinical: pd.DataFrame,
    group: str = "cohort",
    continuous: Sequence[str] = CONTINUOUS_VARIABLES,
    categorical: Sequence[str] = CATEGORICAL_VARIABLES,
    parametric: bool = True,
) -> pd.DataFrame:
    """Table 1: mean (SD) or n (%) per group and overall, with a p-value across groups.

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
        p, test = continuous_test(by_group, parametric)
        cells = [_mean_sd(values.dropna())] + [_mean_sd(pd.Series(g)) for g in by_group]
        rows.append([var, "mean (SD)", *cells, _format_p(p), test])
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
            )
        )
    return items


# --------------------------------------------------------------------------- methods text
def _get(config: Mapping, key: str, default=None):
    value = config
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def _num(value) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _spacing(value) -> str:
    values = value if isinstance(value, (list, tuple)) else [value] * 3
    return " x ".join(_num(v) for v in values)


_INTERPOLATORS = {
    "bspline": "B-spline",
    "linear": "linear",
    "nearest": "nearest-neighbour",
    "bicubic": "bicubic",
    "lanczos": "Lanczos",
}
_SEGMENTERS = {
    "reference": "the reference (expert) masks supplied with the data",
    "nnunet": "nnU-Net v2",
    "totalsegmentator": "TotalSegmentator",
}

# The config keys the methods text reads (config/config.yaml on main), with the defaults it
# assumes when a key is absent; a sentence whose facts are unknown is left out, not guessed.
METHODS_KEYS = {
    "cohort.source": "synthetic",
    "synthetic.n_internal": None,
    "synthetic.n_external": None,
    "study.seed": None,
    "imaging.analysis_phase": "venous",
    "imaging.spacing_mm": [1.0, 1.0, 1.0],
    "imaging.interpolator": "bspline",
    "imaging.window.width": None,
    "imaging.window.level": None,
    "segment.method": None,
    "regions.habitats.k_range": [2, 3, 4],
    "regions.peri.margin_mm": 3.0,
    "features.radiomics.params": None,
    "features.radiomics.regions": None,
    "features.robustness.icc_threshold": None,
    "features.deep.backbone": None,
    "genomics.task": "os",
    "genomics.deg.method": "deseq2",
    "genomics.deg.shrink": True,
    "genomics.deg.covariates": [],
    "genomics.deg.paired": None,
    "genomics.wgcna.network_type": "signed",
    "genomics.wgcna.min_module_size": 30,
    "genomics.wgcna.deep_split": 2,
    "genomics.wgcna.pam_stage": True,
    "genomics.wgcna.min_kme": 0.3,
    "genomics.wgcna.merge_cut_height": 0.25,
}
_REGION_NAMES = {
    "whole": "the whole tumour",
    "habitats": "each habitat",
    "peri": "the peritumoral shell",
}


def radiomics_bin_width(params_file, root: Path | None = None):
    """binWidth from a PyRadiomics parameter file (setting.binWidth), None when unreadable."""
    if not params_file:
        return None
    for candidate in (Path(params_file), Path(root or ".") / params_file):
        if candidate.is_file():
            settings = (yaml.safe_load(candidate.read_text()) or {}).get("setting", {})
            return settings.get("binWidth")
    return None


def methods_text(config: Mapping, root: Path | None = None) -> str:
    """A methods paragraph generated from the resolved config (see METHODS_KEYS)."""
    c = {key: _get(config, key, default) for key, default in METHODS_KEYS.items()}
    sentences = []
    if c["cohort.source"] == "synthetic":
        n_int, n_ext = c["synthetic.n_internal"], c["synthetic.n_external"]
        n = (
            f" of {n_int} internal and {n_ext} external patients"
            if n_int is not None and n_ext is not None
            else ""
        )
        sentences.append(
            f"The cohort{n} was simulated by the workflow's synthetic generator "
            "(latent aggressiveness driving image, clinical and expression data)."
        )
    else:
        sentences.append(f"Patients were read from the {c['cohort.source']} cohort definition.")
    window = ""
    if c["imaging.window.width"] is not None and c["imaging.window.level"] is not None:
        window = (
            f"; a soft-tissue window of W{_num(c['imaging.window.width'])}"
            f"/L{_num(c['imaging.window.level'])} HU was used for figures and deep features"
        )
    interpolator = _INTERPOLATORS.get(
        str(c["imaging.interpolator"]).lower(), str(c["imaging.interpolator"])
    )
    sentences.append(
        f"Images were resampled to {_spacing(c['imaging.spacing_mm'])} mm with {interpolator} "
        f"interpolation (masks: nearest neighbour) and the {c['imaging.analysis_phase']} phase "
        f"was analysed{window}."
    )
    if c["segment.method"]:
        segmenter = _SEGMENTERS.get(str(c["segment.method"]).lower(), str(c["segment.method"]))
        sentences.append(f"Tumours were delineated with {segmenter}.")
    ks = sorted(int(k) for k in c["regions.habitats.k_range"])
    sentences.append(
        "Intratumoral habitats were defined by a Gaussian mixture model fitted on training-cohort "
        f"voxels, with the number of habitats chosen by BIC among K = {ks[0]} to {ks[-1]}, and a "
        f"{_num(c['regions.peri.margin_mm'])} mm peritumoral shell was grown outside the tumour."
    )
    radiomics = package_versions(["pyradiomics"])["pyradiomics"]
    regions = c["features.radiomics.regions"]
    where = (
        " from " + _join([_REGION_NAMES.get(r, r) for r in regions]) if regions else " per region"
    )
    bin_width = radiomics_bin_width(c["features.radiomics.params"], root)
    binning = f" with a fixed bin width of {_num(bin_width)} HU" if bin_width else ""
    icc = (
        f"; features with an ICC below {_num(c['features.robustness.icc_threshold'])} were "
        "discarded"
        if c["features.robustness.icc_threshold"] is not None
        else ""
    )
    sentences.append(
        f"Handcrafted features were extracted{where} with PyRadiomics"
        f"{' ' + radiomics if radiomics else ''}{binning}{icc}."
    )
    if c["features.deep.backbone"]:
        sentences.append(
            f"Deep features were taken from a {c['features.deep.backbone']} network "
            "applied to the largest tumour slice."
        )
    sentences.append(genomics_methods(c))
    if c["study.seed"] is not None:
        sentences.append(
            "Every random step derives its seed from the study seed " f"({c['study.seed']})."
        )
    return " ".join(sentences)


def genomics_methods(c: Mapping) -> str:
    """The differential expression and WGCNA sentence: which implementation ran, with what."""
    paired, covariates = c["genomics.deg.paired"], list(c["genomics.deg.covariates"] or [])
    if paired:
        contrast = (f"{paired['test']} versus {paired['reference']} samples of the same patients "
                    f"(design ~ patient + {' + '.join(covariates + [paired['column']])})")
    else:
        contrast = f"high versus low {c['genomics.task']} radscore groups"
        if covariates:
            contrast += f" adjusted for {_join(covariates)}"
    if c["genomics.deg.method"] == "limma_voom":
        test = "limma-voom (voom, lmFit and eBayes as in limma, reimplemented and checked against R)"
    else:
        version = package_versions(["pydeseq2"])["pydeseq2"]
        test = (f"DESeq2 Wald tests (PyDESeq2{' ' + version if version else ''} with DESeq2 1.38's own GLM, "
                "dispersion and trend fits, checked against R)")
        if c["genomics.deg.shrink"]:
            test += ("; log2 fold changes were apeGLM-shrunken on the counts the test used "
                     "(Cook's outliers replaced)")
    kme = (f", genes with {'|kME|' if c['genomics.wgcna.network_type'] == 'unsigned' else 'kME'} "
           f"below {_num(c['genomics.wgcna.min_kme'])} were unassigned"
           if c["genomics.wgcna.min_kme"] is not None else "")
    return (
        f"Differential expression between {contrast} was tested with {test}. Co-expression "
        f"modules came from a {c['genomics.wgcna.network_type']} WGCNA network cut with the "
        f"dynamic hybrid tree cut (dynamicTreeCut, deepSplit {c['genomics.wgcna.deep_split']}, "
        f"PAM stage {'on' if c['genomics.wgcna.pam_stage'] else 'off'}, minimum module size "
        f"{c['genomics.wgcna.min_module_size']}){kme}, and modules whose eigengenes were closer "
        f"than {_num(c['genomics.wgcna.merge_cut_height'])} were merged."
    )


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# --------------------------------------------------------------------------- captions, provenance
def caption_for(name: str, captions_dir: Path | None) -> str:
    """Caption from ``{captions_dir}/{name}.rst`` (shared with ``snakemake --report``).

    A figure made per wildcard (``habitat_overlay_P001``) falls back to the caption of its
    prefix (``habitat_overlay``).
    """
    if captions_dir is None:
        return ""
    parts = name.split("_")
    while parts:
        candidate = Path(captions_dir) / ("_".join(parts) + ".rst")
        if candidate.is_file():
            return _rst_to_text(candidate.read_text())
        parts.pop()
    return ""


def _rst_to_text(text: str) -> str:
    text = re.sub(r":\w+:`([^`]*)`", r"\1", text)
    text = re.sub(r"`+([^`]*)`+_?", r"\1", text)
    text = re.sub(r"\*\*?([^*]+)\*\*?", r"\1", text)
    return " ".join(text.split())


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


def _habitat_bic_table(path: Path) -> pd.DataFrame | None:
    """BIC per K from habitat_model.json ({"bic": {K: value}} or {"bic": [...], "k_values": [...]})."""
    model = json.loads(path.read_text())
    bic = model.get("bic") or model.get("bic_per_k")
    if isinstance(bic, Mapping):
        table = pd.DataFrame({"K": [int(k) for k in bic], "BIC": list(bic.values())})
    elif isinstance(bic, list) and isinstance(model.get("k_values"), list):
        table = pd.DataFrame({"K": model["k_values"], "BIC": bic})
    else:
        return None
    table["chosen"] = np.where(table["K"] == model.get("k", model.get("K")), "yes", "")
    return table


def stage_sections(
    root: Path,
    specs: Sequence[StageSpec],
    captions_dir: Path | None,
    shown: set[Path],
    config: Mapping | None = None,
) -> list[Section]:
    sections = []
    for spec in specs:
        items = []
        for pattern in spec.figures:
            for path in sorted(root.glob(pattern)):
                rel = path.relative_to(root)
                if rel not in shown:
                    shown.add(rel)
                    items.append(FigureItem(rel, caption_for(path.stem, captions_dir)))
        for pattern in spec.tables:
            for path in sorted(root.glob(pattern)):
                rel = path.relative_to(root)
                if rel not in shown:
                    shown.add(rel)
                    items.append(
                        TableItem(
                            rel.as_posix(),
                            _read_table(path),
                            caption_for(path.stem, captions_dir),
                            source=rel,
                        )
                    )
        bic_table_shown = Path("results/regions/habitat_bic.tsv") in shown
        if (
            spec.id == "regions"
            and not bic_table_shown
            and (root / "results/regions/habitat_model.json").is_file()
        ):
            rel = Path("results/regions/habitat_model.json")
            table = _habitat_bic_table(root / rel)
            if table is not None:
                items.insert(0, TableItem("Habitat model: BIC per K", table, source=rel))
        if spec.id == "regions" and not any(
            "overlay" in str(i.path) for i in items if isinstance(i, FigureItem)
        ):
            items.extend(overlay_items(root, config or {}))
        skipped = genomics_skip_reason(config) if spec.id == "genomics" and config else None
        if skipped:
            items = [TextItem(f"<p class='note'>Not run: {html.escape(skipped)}.</p>")]
        if items:
            intro = [TextItem(f"<p>{html.escape(spec.intro)}</p>")] if spec.intro else []
            sections.append(Section(spec.id, spec.title, intro + items))
    return sections


def default_sections(
    root: str | Path,
    config: Mapping,
    captions_dir: str | Path | None = None,
    specs: Sequence[StageSpec] | None = None,
) -> list[Section]:
    """Methods, patient flow, Table 1, the stage sections and every remaining figure."""
    root = Path(root)
    captions_dir = Path(captions_dir) if captions_dir else None
    methods = html.escape(methods_text(config, root))
    sections = [Section("methods", "Methods", [TextItem(f"<p>{methods}</p>")])]
    clinical_path = root / "results/cohort/clinical.tsv"
    if clinical_path.is_file():
        sections.extend(_cohort_sections(root, read_tsv(clinical_path), config))
    shown: set[Path] = set()
    sections.extend(
        stage_sections(root, STAGE_SPECS if specs is None else specs, captions_dir, shown, config)
    )
    rest = [
        p.relative_to(root)
        for p in sorted((root / FIGURES_DIR).glob("*.png"))
        if p.relative_to(root) not in shown
    ]
    if rest:
        sections.append(
            Section(
                "figures",
                "Other figures",
                [FigureItem(p, caption_for(p.stem, captions_dir)) for p in rest],
            )
        )
    return sections


def _cohort_sections(root: Path, clinical: pd.DataFrame, config: Mapping) -> list[Section]:
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
    table1 = baseline_table(clinical, parametric=_get(config, "report.table1_parametric", True))
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
    return [
        Section("flow", "Patient flow", [FigureItem(flow_png.relative_to(root), flow_caption)]),
        Section(
            "table1",
            "Baseline characteristics",
            [
                TableItem(
                    "Table 1. Baseline characteristics by cohort",
                    table1,
                    "Continuous: mean (SD), Welch t-test (2 groups) or one-way ANOVA; categorical: "
                    "n (%), chi-square test.",
                    source=table1_path.relative_to(root),
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
.tablewrap{overflow-x:auto;margin:24px 0}
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


def _render_item(item, root: Path, report_dir: Path) -> str:
    if isinstance(item, TextItem):
        return item.html
    if isinstance(item, FigureItem):
        title = item.title or item.path.stem.replace("_", " ")
        caption = html.escape(item.caption) if item.caption else ""
        return (
            f'<figure id="fig-{html.escape(item.path.stem)}"><img src="'
            f'{_data_uri(root / item.path)}" alt="{html.escape(title)}">'
            f"<figcaption><b>{html.escape(title)}.</b> {caption}"
            f"{provenance_html(item.path, root, report_dir)}</figcaption></figure>"
        )
    if isinstance(item, TableItem):
        table = item.table
        note = ""
        if len(table) > MAX_TABLE_ROWS:
            note = f"<p>First {MAX_TABLE_ROWS} of {len(table)} rows.</p>"
            table = table.head(MAX_TABLE_ROWS)
        body = table.to_html(index=False, na_rep="", float_format=_format_number, border=0)
        prov = provenance_html(item.source, root, report_dir) if item.source else ""
        caption = f"<p>{html.escape(item.caption)}</p>" if item.caption else ""
        return (
            f'<div class="tablewrap"><h3>{html.escape(item.title)}</h3>{caption}{body}'
            f"{note}{prov}</div>"
        )
    raise TypeError(f"unknown report item {type(item).__name__}")


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
    body = "".join(
        f'<section id="{html.escape(s.id)}"><h2>{html.escape(s.title)}</h2>'
        + "".join(_render_item(item, root, report_dir) for item in s.items)
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
        "</body></html>\n"
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
) -> tuple[Path, list[Path]]:
    """Write ``results/report/index.html`` (or ``out_path``); return it and the files it shows.

    ``sections`` defaults to ``default_sections(root, config, captions_dir)``; pass your own
    list (e.g. the defaults plus extra ``Section`` objects) to change the page. The shown files
    (relative to ``root``) belong in the page's provenance sidecar as inputs.
    """
    root = Path(root)
    out = Path(out_path) if out_path else root / REPORT_DIR / "index.html"
    if sections is None:
        sections = default_sections(root, config, captions_dir)
    page = render_html(
        sections,
        root,
        title,
        is_synthetic(config, root),
        report_dir=out.parent.relative_to(root) if out.is_relative_to(root) else out.parent,
    )
    write_text(page, out)
    return out, embedded_files(sections)
