"""The study report's Methods: one paragraph per stage that ran, generated from the resolved
config (only keys of config/schemas/config.schema.yaml) and the software versions recorded in
the provenance sidecars of the files the report shows.

A sentence whose facts are not in the config is left out, not guessed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from radiogenomics.core.config import genomics_skip_reason
from radiogenomics.core.provenance import package_versions, read_sidecar, sidecar_path
from radiogenomics.core.labels import label
from radiogenomics.models.settings import evaluation_settings, task_settings


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


def _join(words: list[str]) -> str:
    words = [str(w) for w in words]
    if not words:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


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
}
_REGION_NAMES = {
    "whole": "the whole tumour",
    "habitats": "each habitat",
    "peri": "the peritumoral shell",
}
_COMPARATORS = {"ssign": "SSIGN", "uiss": "UISS"}
_MIL_ENDPOINTS = {
    "dfs_event_before_horizon": "recurrence or death before the horizon",
    "death_before_horizon": "death before the horizon",
    "high_t_stage": "high T stage (T3-T4)",
    "aggressive": "aggressive disease (grade 3-4, necrosis or T3+)",
}

# The config keys the methods text reads, with the defaults it assumes when a key is absent
# (the schema's defaults; tests/test_report.py checks every key is in the schema).
METHODS_KEYS = {
    "cohort.source": "synthetic",
    "cohort.on_bad_case": "exclude",
    "cohort.split.test_fraction": None,
    "cohort.split.external_sites": None,
    "cohort.split.stratify": None,
    "cohort.tcia.collection": None,
    "cohort.gdc.project": None,
    "synthetic.n_internal": None,
    "synthetic.n_external": None,
    "study.seed": None,
    "imaging.phases": None,
    "imaging.analysis_phase": "venous",
    "imaging.spacing_mm": [1.0, 1.0, 1.0],
    "imaging.interpolator": "bspline",
    "imaging.window.width": None,
    "imaging.window.level": None,
    "imaging.registration.method": None,
    "imaging.registration.reference": None,
    "segmentation.method": None,
    "segmentation.configuration": None,
    "segmentation.folds": None,
    "segmentation.tta": None,
    "segmentation.model_dir": None,
    "segmentation.corrections": None,
    "segmentation.min_tumor_ml": None,
    "regions.habitats.phases": None,
    "regions.habitats.k_range": [2, 3, 4],
    "regions.habitats.texture": None,
    "regions.peri.margin_mm": 3.0,
    "features.radiomics.params": None,
    "features.radiomics.phases": None,
    "features.radiomics.regions": None,
    "features.deep.backbone": None,
    "features.deep.pretrained": None,
    "features.deep.pooling": None,
    "features.deep.phases": None,
    "features.robustness.form": None,
    "features.robustness.n_patients": None,
    "features.robustness.second_reader": None,
    "features.robustness.n_perturbations": None,
    "models.robustness_table": None,
    "models.tasks": {},
    "models.multiphase.phases": None,
    "models.multiphase.endpoint": None,
    "evaluation": None,
    "genomics.task": "os",
    "genomics.deg.method": "deseq2",
    "genomics.deg.shrink": True,
    "genomics.deg.covariates": [],
    "genomics.deg.paired": None,
    "genomics.deg.padj_max": None,
    "genomics.deg.abs_log2fc_min": None,
    "genomics.enrichment.gsea": None,
    "genomics.enrichment.permutations": None,
    "genomics.wgcna.network_type": "signed",
    "genomics.wgcna.min_module_size": 30,
    "genomics.wgcna.deep_split": 2,
    "genomics.wgcna.pam_stage": True,
    "genomics.wgcna.min_kme": 0.3,
    "genomics.wgcna.merge_cut_height": 0.25,
    "genomics.deconvolution.permutations": None,
    "pathomics.enabled": False,
    "pathomics.tiles.magnification": None,
    "pathomics.tiles.tile_px": None,
    "pathomics.tiles.min_entropy": None,
    "pathomics.features.backbone": None,
    "pathomics.mil.variants": None,
    "pathomics.mil.endpoint": None,
    "pathomics.mil.horizon_months": None,
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


def _resolved(config: Mapping) -> dict:
    return {key: _get(config, key, default) for key, default in METHODS_KEYS.items()}


def cohort_methods(c: Mapping) -> str:
    if c["cohort.source"] == "synthetic":
        n_int, n_ext = c["synthetic.n_internal"], c["synthetic.n_external"]
        n = (
            f" of {n_int} internal and {n_ext} external patients"
            if n_int is not None and n_ext is not None
            else ""
        )
        text = (
            f"The cohort{n} was simulated by the workflow's synthetic generator "
            "(latent aggressiveness driving image, clinical and expression data)."
        )
    elif c["cohort.source"] == "public":
        sources = [s for s in (c["cohort.tcia.collection"], c["cohort.gdc.project"]) if s]
        text = (
            "Images were downloaded from TCIA and clinical and molecular data from GDC"
            + (f" ({_join(sorted(set(sources)))})" if sources else "")
            + "."
        )
    else:
        text = f"Patients were read from the {c['cohort.source']} cohort definition."
    if c["cohort.split.test_fraction"] is not None:
        external = c["cohort.split.external_sites"] or []
        strata = c["cohort.split.stratify"]
        text += (
            f" Patients of site{'s' if len(external) != 1 else ''} {_join(external)} formed the "
            "external cohort; " if external else " "
        ) + (
            f"the others were split at random into training and test cohorts "
            f"({_num(100 * c['cohort.split.test_fraction'])}% test"
            + (f", stratified by {label(strata).lower()}" if strata else "")
            + ")."
        )
    if c["cohort.on_bad_case"] == "exclude":
        text += " Patients with unusable data were excluded with a recorded reason (patient flow)."
    return text


def imaging_methods(c: Mapping) -> str:
    window = ""
    if c["imaging.window.width"] is not None and c["imaging.window.level"] is not None:
        window = (
            f"; a soft-tissue window of W{_num(c['imaging.window.width'])}"
            f"/L{_num(c['imaging.window.level'])} HU was used for figures and deep features"
        )
    interpolator = _INTERPOLATORS.get(
        str(c["imaging.interpolator"]).lower(), str(c["imaging.interpolator"])
    )
    registration = ""
    phases = c["imaging.phases"] or []
    if len(phases) > 1 and c["imaging.registration.method"] and c["imaging.registration.reference"]:
        registration = (
            f"The {_join(phases)} phases were registered ({c['imaging.registration.method']}, "
            f"SimpleITK, Mattes mutual information) to the {c['imaging.registration.reference']} "
            "phase. "
        )
    return (
        f"{registration}Images were resampled to {_spacing(c['imaging.spacing_mm'])} mm with "
        f"{interpolator} interpolation (masks: nearest neighbour) and the "
        f"{c['imaging.analysis_phase']} phase was analysed{window}."
    )


def segmentation_methods(c: Mapping) -> str:
    method = c["segmentation.method"]
    if not method:
        return ""
    segmenter = _SEGMENTERS.get(str(method).lower(), str(method))
    text = f"Tumours were delineated with {segmenter}"
    if method == "nnunet":
        details = [f"{c['segmentation.configuration']} configuration"] if c["segmentation.configuration"] else []
        if c["segmentation.folds"]:
            details.append(f"folds {_join(c['segmentation.folds'])}")
        if c["segmentation.tta"] is not None:
            details.append("test-time mirroring " + ("on" if c["segmentation.tta"] else "off"))
        origin = (
            "a supplied model" if c["segmentation.model_dir"] else
            "a model trained here on training patients' reference masks"
        )
        text += f" ({origin}; {_join(details)})" if details else f" ({origin})"
    text += "."
    if c["segmentation.corrections"]:
        text += " Corrected masks from the corrections folder replaced the automatic ones."
    if c["segmentation.min_tumor_ml"] is not None and method == "nnunet":
        text += (
            f" A predicted tumour below {_num(c['segmentation.min_tumor_ml'])} mL was flagged "
            "in the segmentation QC."
        )
    return text


def regions_methods(c: Mapping) -> str:
    ks = sorted(int(k) for k in c["regions.habitats.k_range"])
    phases = c["regions.habitats.phases"]
    on = f" on the {_join(phases)} intensities" if phases else ""
    texture = c["regions.habitats.texture"]
    if texture and texture != "none":
        on += f" and local {texture} texture"
    return (
        f"Intratumoral habitats were defined by a Gaussian mixture model fitted{on} on "
        "training-cohort voxels, with the number of habitats chosen by BIC among "
        f"K = {ks[0]} to {ks[-1]}, and a {_num(c['regions.peri.margin_mm'])} mm peritumoral "
        "shell was grown outside the tumour."
    )


def feature_methods(c: Mapping, root: Path | None, versions: Mapping) -> str:
    radiomics = versions.get("pyradiomics") or package_versions(["pyradiomics"])["pyradiomics"]
    regions = c["features.radiomics.regions"]
    where = (
        " from " + _join([_REGION_NAMES.get(r, r) for r in regions]) if regions else " per region"
    )
    phases = c["features.radiomics.phases"]
    if phases:
        where += f" of the {_join(phases)} phase{'s' if len(phases) > 1 else ''}"
    bin_width = radiomics_bin_width(c["features.radiomics.params"], root)
    binning = f" with a fixed bin width of {_num(bin_width)} HU" if bin_width else ""
    sentences = [
        f"Handcrafted features were extracted{where} with PyRadiomics"
        f"{' ' + radiomics if radiomics else ''}{binning}."
    ]
    if c["features.deep.backbone"]:
        weights = c["features.deep.pretrained"]
        sentences.append(
            f"Deep features were taken from a {c['features.deep.backbone']} network"
            + (" with random weights" if weights == "none" else f" ({weights} weights)" if weights else "")
            + (f", {c['features.deep.pooling']}-pooled," if c["features.deep.pooling"] else "")
            + " applied to the largest tumour slice"
            + (f" of the {_join(c['features.deep.phases'])} phases" if c["features.deep.phases"] else "")
            + "."
        )
    if c["features.robustness.form"]:
        n = c["features.robustness.n_patients"]
        how = (
            "a second reader's masks"
            if c["features.robustness.second_reader"]
            else f"{c['features.robustness.n_perturbations']} perturbed masks (grown, jittered and "
            "shifted contours)"
            if c["features.robustness.n_perturbations"]
            else "perturbed masks"
        )
        sentences.append(
            f"Feature robustness was measured as the {c['features.robustness.form']} intraclass "
            f"correlation between the original and {how}"
            + (f" of {n} patients" if n else "")
            + "."
        )
    return " ".join(sentences)


def _selection_sentence(selection: Mapping, robustness_table) -> str:
    steps = []
    robust = selection.get("robustness")
    if robustness_table and robust is not False and robust is not None:
        threshold = (robust or {}).get("icc_threshold")
        steps.append(
            f"ICC > {_num(threshold)}" if threshold is not None else "robust features (ICC)"
        )
    redundancy = selection.get("redundancy")
    if redundancy:
        threshold = redundancy.get("threshold")
        steps.append(
            f"Spearman |ρ| > {_num(threshold)} redundancy filter" if threshold is not None
            else "Spearman redundancy filter"
        )
    univariate = selection.get("univariate")
    if univariate:
        if univariate.get("method") == "mrmr":
            steps.append(f"mRMR top {univariate['k']}" if "k" in univariate else "mRMR")
        elif "p_threshold" in univariate:
            steps.append(f"univariate Cox p < {_num(univariate['p_threshold'])}")
        else:
            steps.append("univariate filter")
    lasso = selection.get("lasso")
    if lasso:
        folds = f"{lasso['folds']}-fold " if "folds" in lasso else ""
        rule = f", lambda {lasso['rule']}" if "rule" in lasso else ""
        steps.append(f"LASSO ({folds}cross-validation{rule})")
    return " -> ".join(steps)


def model_methods(c: Mapping) -> list[str]:
    paragraphs = []
    for name, raw in (c["models.tasks"] or {}).items():
        task = task_settings(raw)
        chain = _selection_sentence(task.get("selection") or {}, c["models.robustness_table"])
        chain = f" Features were selected on the training cohort: {chain}." if chain else ""
        if task["kind"] == "survival":
            comparators = [_COMPARATORS.get(x, x) for x in task.get("comparators") or []]
            text = (
                f"Task {name} (survival; time: {label(task['time'])}, event: {label(task['event'])}):{chain} The radscore "
                "(LASSO-Cox linear predictor) was cut at the Youden point of the "
                f"{_num(task['horizon_months'])}-month time-dependent ROC on the training "
                "cohort; univariate Cox models of the clinical covariates "
                f"(p < {_num(task['univariate_p'])}, at most one covariate per "
                f"{task['events_per_variable']} events) fed a stepwise multivariable Cox model "
                "and nomogram, and an XGBoost survival model of the radscore and clinical "
                f"covariates was tuned by {task['xgboost'].get('folds')}-fold cross-validation"
                + (f"; {_join(comparators)} were the clinical comparators" if comparators else "")
                + "."
            )
        else:
            classifiers = [label(x) for x in task.get("classifiers") or []]
            reference = task.get("reference") or {}
            text = (
                f"Task {name} (binary; {label(task['label'])} = {task['positive']}):{chain} "
                f"{_join(classifiers)} classifiers were tuned by {task['folds']}-fold "
                f"stratified cross-validation on the region sets {_join(task['region_sets'])}; "
                f"the probability threshold was {task['threshold']}"
                + (
                    f", and DeLong tests compared every model with {reference.get('model')} on "
                    f"{reference.get('region_set')}"
                    if reference else ""
                )
                + "."
            )
        paragraphs.append(text)
    if c["models.multiphase.phases"]:
        paragraphs.append(
            f"A multiphase CNN (one ResNet-18 per {_join(c['models.multiphase.phases'])} phase, "
            f"cross-attention fusion) predicted {_MIL_ENDPOINTS.get(c['models.multiphase.endpoint'], c['models.multiphase.endpoint'])}; "
            "Grad-CAM maps show where it looked."
        )
    return paragraphs


def evaluation_methods(c: Mapping) -> str:
    e = evaluation_settings(c["evaluation"])
    return (
        f"Models were evaluated on the {_join(e['cohorts'])} cohorts with {e['bootstrap']} "
        "bootstrap resamples for confidence intervals: Harrell's and Uno's C-index, "
        "time-dependent AUC at "
        + _join([_num(h) for h in e["td_auc_horizons_months"]])
        + " months, Kaplan-Meier curves with log-rank tests, calibration "
        f"({e['calibration_groups']} risk groups; {e['calibration_bins']} bins for binary "
        "tasks), decision curves, ROC curves with DeLong tests and confusion matrices."
    )


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
    cutoffs = ""
    if c["genomics.deg.padj_max"] is not None and c["genomics.deg.abs_log2fc_min"] is not None:
        cutoffs = (f" Genes with adjusted p < {_num(c['genomics.deg.padj_max'])} and |log2 fold "
                   f"change| > {_num(c['genomics.deg.abs_log2fc_min'])} were called differentially "
                   "expressed.")
    enrichment = ""
    if c["genomics.enrichment.permutations"] is not None:
        enrichment = (" Over-representation analysis"
                      + (f" and GSEA ({c['genomics.enrichment.permutations']} permutations)"
                         if c["genomics.enrichment.gsea"] else "")
                      + " tested GO, KEGG and Hallmark gene sets.")
    deconvolution = ""
    if c["genomics.deconvolution.permutations"] is not None:
        deconvolution = (" Immune cell fractions came from a CIBERSORT-style nu-SVR deconvolution "
                         f"({c['genomics.deconvolution.permutations']} permutations) and stromal "
                         "and immune scores from ESTIMATE.")
    return (
        f"Differential expression between {contrast} was tested with {test}.{cutoffs} Co-expression "
        f"modules came from a {c['genomics.wgcna.network_type']} WGCNA network cut with the "
        f"dynamic hybrid tree cut (dynamicTreeCut, deepSplit {c['genomics.wgcna.deep_split']}, "
        f"PAM stage {'on' if c['genomics.wgcna.pam_stage'] else 'off'}, minimum module size "
        f"{c['genomics.wgcna.min_module_size']}){kme}, and modules whose eigengenes were closer "
        f"than {_num(c['genomics.wgcna.merge_cut_height'])} were merged.{enrichment}{deconvolution}"
    )


def pathomics_methods(c: Mapping) -> str:
    tiles = []
    if c["pathomics.tiles.tile_px"] is not None and c["pathomics.tiles.magnification"] is not None:
        tiles.append(f"{c['pathomics.tiles.tile_px']}-pixel tiles at "
                     f"{_num(c['pathomics.tiles.magnification'])}x")
    if c["pathomics.tiles.min_entropy"] is not None:
        tiles.append(f"tiles of entropy below {_num(c['pathomics.tiles.min_entropy'])} discarded")
    variants = [v.replace("gated_abmil", "gated attention MIL").replace("abmil", "attention MIL")
                for v in c["pathomics.mil.variants"] or []]
    endpoint = c["pathomics.mil.endpoint"]
    return (
        "Whole-slide images were tiled on detected tissue"
        + (f" ({_join(tiles)})" if tiles else "")
        + (f"; {c['pathomics.features.backbone']} tile features fed " if c["pathomics.features.backbone"] else "; tile features fed ")
        + (_join(variants) if variants else "attention MIL")
        + " models fitted on training patients"
        + (f" to predict {_MIL_ENDPOINTS.get(endpoint, endpoint)}" if endpoint else "")
        + (f" ({_num(c['pathomics.mil.horizon_months'])} months)" if c["pathomics.mil.horizon_months"] and endpoint else "")
        + "."
    )


def software_versions(root: Path, files: Iterable[Path]) -> dict[str, list[str]]:
    """Package versions recorded in the provenance sidecars of ``files`` (python included)."""
    found: dict[str, set[str]] = {}
    for path in files:
        sidecar = sidecar_path(Path(root) / path)
        if not sidecar.is_file():
            continue
        record = read_sidecar(sidecar)
        for name, version in {**record.get("packages", {}), "Python": record.get("python")}.items():
            if version:
                found.setdefault(name, set()).add(str(version))
    return {name: sorted(found[name]) for name in sorted(found, key=str.lower)}


def methods_paragraphs(
    config: Mapping,
    root: Path | None = None,
    files: Iterable[Path] = (),
    ran: Iterable[str] | None = None,
) -> list[tuple[str, str]]:
    """(stage, text) per stage; ``ran``: the stages whose outputs exist (None: every stage the
    config enables)."""
    c = _resolved(config)
    stages = None if ran is None else set(ran)

    def runs(stage: str) -> bool:
        return stages is None or stage in stages

    root = Path(root) if root is not None else None
    versions = {k: v[-1] for k, v in software_versions(root, files).items()} if root else {}
    paragraphs = [("Cohort", cohort_methods(c)), ("Imaging", imaging_methods(c))]
    if runs("Segmentation"):
        paragraphs.append(("Segmentation", segmentation_methods(c)))
    if runs("Regions"):
        paragraphs.append(("Regions", regions_methods(c)))
    if runs("Features"):
        paragraphs.append(("Features", feature_methods(c, root, versions)))
    if runs("Models and evaluation"):
        paragraphs += [("Models", text) for text in model_methods(c)]
        paragraphs.append(("Evaluation", evaluation_methods(c)))
    if genomics_skip_reason(config) is None and runs("Radiogenomics"):
        paragraphs.append(("Radiogenomics", genomics_methods(c)))
    if c["pathomics.enabled"] and runs("Pathomics"):
        paragraphs.append(("Pathomics", pathomics_methods(c)))
    if c["study.seed"] is not None:
        paragraphs.append(
            ("Reproducibility", f"Every random step derives its seed from the study seed ({c['study.seed']}).")
        )
    return [(stage, text) for stage, text in paragraphs if text]


def methods_text(config: Mapping, root: Path | None = None, **kwargs) -> str:
    """The Methods as one string (see methods_paragraphs)."""
    return " ".join(text for _, text in methods_paragraphs(config, root, **kwargs))


def methods_html(config: Mapping, root: Path, files: Iterable[Path], ran: Iterable[str]) -> str:
    files = list(files)
    body = "".join(
        f"<p><b>{html.escape(stage)}.</b> {html.escape(text)}</p>"
        for stage, text in methods_paragraphs(config, root, files, ran)
    )
    versions = software_versions(root, files)
    if versions:
        body += "<p><b>Software.</b> " + html.escape(
            "; ".join(f"{name} {', '.join(v)}" for name, v in versions.items())
        ) + ".</p>"
    return body
