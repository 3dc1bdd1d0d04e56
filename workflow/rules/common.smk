# Config validation and input functions. Everything here runs at every DAG build (and in every
# cluster job), so it only reads small tables: the config, a manifest, the cohort checkpoint.
import os
import re
import sys
from snakemake.exceptions import WorkflowError
from pathlib import Path

import pandas as pd

# REPO_ROOT (workflow/Snakefile) is the repository whichever Snakefile snakemake was given
sys.path.insert(0, str(REPO_ROOT / "workflow" / "scripts"))
from radiogenomics.models.settings import (  # noqa: E402
    evaluation_settings,
    survival_step_settings,
    task_settings,
)
from radiogenomics.segmentation.model import (  # noqa: E402
    ModelFolderError,
    check_model_folder,
)
from radiogenomics.core.config import (  # noqa: E402
    ConfigError,
    drawn_phase_sidecar,
    genomics_skip_reason,
    manifest_patients,
    manifest_rows,
    read_table,
    seeded_subset,
    synthetic_patient_ids,
    validate_config,
)

try:
    validate_config(config, REPO_ROOT / "config/schemas/config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None

ENVS = "../envs"
SEED = config["study"]["seed"]
SYNTHETIC = config["cohort"]["source"] == "synthetic"
# source public: the patients are known only after the fetch_public checkpoint has run
PUBLIC = config["cohort"]["source"] == "public"
PHASES = config["imaging"]["phases"]
ON_BAD_CASE = config["cohort"]["on_bad_case"]
REGISTRATION = config["imaging"]["registration"]
REFERENCE_PHASE = REGISTRATION["reference"]
# the phase masks are drawn on unless a manifest row says otherwise
MASK_PHASE = config["cohort"]["mask_phase"] or REFERENCE_PHASE
for _key, _phase in (
    ("imaging.registration.reference", REFERENCE_PHASE),
    ("cohort.mask_phase", MASK_PHASE),
    ("imaging.analysis_phase", config["imaging"]["analysis_phase"]),
):
    if _phase not in PHASES:
        raise WorkflowError(
            f"config key '{_key}': {_phase!r} is not one of imaging.phases {PHASES}"
        )
SEGMENTATION = config["segmentation"]
NNUNET = SEGMENTATION["method"] == "nnunet"
HU_SANITY = {k: v for k, v in config["imaging"]["hu_sanity"].items() if k != "enabled"}
# What the inspection checks beyond readable files (radiogenomics.imaging.ct.load_case)
CASE_CHECKS = {
    "mask_label": config["cohort"]["mask_label"],
    "min_tumor_volume_mm3": config["cohort"]["min_tumor_volume_mm3"],
    "hu_sanity": HU_SANITY if config["imaging"]["hu_sanity"]["enabled"] else None,
    # nnU-Net segments the patients: a mask is optional (one that is given is still checked)
    "mask_required": not NNUNET,
}


def _candidate_patients():
    if SYNTHETIC:
        return (
            synthetic_patient_ids(
                config["synthetic"]["n_internal"], config["synthetic"]["n_external"]
            ),
            [],
        )
    if PUBLIC:
        if not config["cohort"]["masks"] and not NNUNET:
            raise WorkflowError(
                "cohort.source is 'public' but cohort.masks is not set: give the folder with one "
                "tumour mask per patient, {patient_id}.nii.gz on the grid of the cohort.mask_phase phase"
            )
        return None, []
    if not config["cohort"]["manifest"]:
        raise WorkflowError(
            "cohort.source is 'manifest' but cohort.manifest is not set"
        )
    return manifest_patients(config["cohort"]["manifest"], ON_BAD_CASE)


CANDIDATES, MANIFEST_PROBLEMS = _candidate_patients()


wildcard_constraints:
    patient="[A-Za-z0-9][A-Za-z0-9._-]*",


def project_file(path):
    """A config path relative to the working directory, else to the repository."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(REPO_ROOT / path)


# A model the user brings is checked now (JSON only), before any job runs.
if NNUNET and SEGMENTATION["model_dir"]:
    # the user's data: relative to the working directory, like cohort.masks
    NNUNET_MODEL = SEGMENTATION["model_dir"]
    try:
        check_model_folder(
            NNUNET_MODEL,
            len(SEGMENTATION["channels"]),
            SEGMENTATION["labels"],
            SEGMENTATION["folds"],
            SEGMENTATION["checkpoint"],
            SEGMENTATION["configuration"],
        )
    except ModelFolderError as error:
        raise WorkflowError(str(error)) from None
else:
    NNUNET_MODEL = "results/segment/nnunet/model"


def raw_case_input(wildcards):
    """The files one patient's inspection reads."""
    if SYNTHETIC:
        return {"raw": f"results/raw/{wildcards.patient}"}
    if PUBLIC:
        row = manifest_rows(public_manifest())[wildcards.patient]
        inputs = {phase: row[phase] for phase in PHASES if row.get(phase)}
        # A missing mask is not an input (that would stop the whole run): the inspection
        # records the patient as a bad case naming the expected file.
        mask = public_mask(wildcards) if config["cohort"]["masks"] else ""
        if mask and Path(mask).exists():
            inputs["mask"] = mask
        return inputs
    # A manifest path that does not exist is not an input either: the inspection reads the
    # manifest's paths (manifest_case_paths) and excludes the patient naming the file.
    return {
        key: path
        for key, path in manifest_case_paths(wildcards).items()
        if path and Path(path).exists()
    }


def manifest_case_paths(wildcards):
    """The manifest's image and mask paths of one patient (source manifest; else none)."""
    if SYNTHETIC or PUBLIC:
        return {}
    row = manifest_rows(config["cohort"]["manifest"])[wildcards.patient]
    return {key: row.get(key, "") for key in [*PHASES, "mask"]}


def mask_phase(wildcards):
    """The phase this patient's mask is drawn on: the manifest's mask_phase, else the config's."""
    if config["cohort"]["source"] == "manifest":
        row = manifest_rows(config["cohort"]["manifest"])[wildcards.patient]
        return row.get("mask_phase") or MASK_PHASE
    return MASK_PHASE


def public_manifest():
    """results/raw/manifest.tsv, once the fetch_public checkpoint has written it."""
    return checkpoints.fetch_public.get().output.manifest


def public_mask(wildcards):
    """Where the user's tumour mask for this patient must be (source public).

    Relative to the working directory: masks are the user's data, never the workflow's.
    """
    return str(Path(config["cohort"]["masks"]) / f"{wildcards.patient}.nii.gz")


def expected_mask(wildcards):
    """source public: the mask the inspection demands (none when nnU-Net segments)."""
    return public_mask(wildcards) if PUBLIC and not NNUNET else None


def candidate_patients():
    """Patients the cohort inspects: known at start, or (public) the acquired ones."""
    if not PUBLIC:
        return CANDIDATES
    return list(manifest_rows(public_manifest()))


def cohort_inputs(wildcards):
    """Every candidate's inspection verdict, the clinical table, acquisition exclusions."""
    inputs = {
        "qc": expand("results/cohort/qc/{patient}.json", patient=candidate_patients()),
        "registration": expand(
            "results/imaging/{patient}/registration.json", patient=candidate_patients()
        ),
        "clinical": (
            config["cohort"]["clinical"]
            if config["cohort"]["source"] == "manifest"
            else "results/raw/clinical.tsv"
        ),
    }
    if PUBLIC:
        inputs["acquisition_exclusions"] = "results/raw/acquisition_exclusions.tsv"
    return inputs


def cohort_table():
    """clinical.tsv after the cohort checkpoint: included patients with their split."""
    return read_table(checkpoints.cohort.get().output.clinical)


def cohort_patients():
    """Patients the cohort checkpoint included (the segmentation stage segments them all)."""
    return sorted(cohort_table()["patient_id"])


def cohort_training_patients():
    table = cohort_table()
    return sorted(table.loc[table["cohort"] == "train", "patient_id"])


def segmentation_excluded():
    """Patients whose segmentation is unusable (after the segmentation QC checkpoint)."""
    path = checkpoints.segmentation_qc.get().output.exclusions
    return set(read_table(path)["patient_id"])


def included_patients():
    """Patients every stage after segmentation analyses."""
    excluded = segmentation_excluded()
    return [patient for patient in cohort_patients() if patient not in excluded]


def training_patients():
    excluded = segmentation_excluded()
    return [p for p in cohort_training_patients() if p not in excluded]


# --- segmentation (segment.smk) -----------------------------------------------------------


def reference_mask(patient):
    """The reference tumour mask on the analysis grid (written by preprocess)."""
    return f"results/imaging/{patient}/reference_tumor.nii.gz"


def reference_kidney(patient):
    """A training patient's reference kidney mask: planted (synthetic) or the manifest's."""
    if SYNTHETIC:
        return f"results/truth/{patient}/kidney.nii.gz"
    return manifest_rows(config["cohort"]["manifest"])[patient]["kidney"]


def nnunet_training_patients():
    """The seeded subset of training patients nnU-Net trains on (segmentation.train.n_cases):
    those with reference tumour and kidney masks."""
    candidates = cohort_training_patients()
    if not SYNTHETIC:
        table = (
            read_table(config["cohort"]["manifest"], text_only=True)
            if config["cohort"]["source"] == "manifest"
            else pd.DataFrame(columns=["patient_id"])
        )
        masked = table.loc[
            (table.get("mask", "") != "") & (table.get("kidney", "") != ""),
            "patient_id",
        ]
        candidates = [patient for patient in candidates if patient in set(masked)]
        if len(candidates) < 2:
            raise WorkflowError(
                "training nnU-Net needs training patients with reference tumour and kidney masks "
                "(manifest columns 'mask' and 'kidney'); give segmentation.model_dir a trained "
                "model instead (config/studies/README.md says where to get one)"
            )
    return seeded_subset(candidates, SEGMENTATION["train"]["n_cases"], SEED)


def nnunet_training_inputs(wildcards):
    patients = nnunet_training_patients()
    return {
        "images": expand(
            "results/imaging/{patient}/{phase}.nii.gz",
            patient=patients,
            phase=SEGMENTATION["channels"],
        ),
        "tumors": [reference_mask(patient) for patient in patients],
        "kidneys": [reference_kidney(patient) for patient in patients],
    }


def prediction_batches():
    """Cohort patients in batches of segmentation.batch_size (one prediction job each)."""
    patients = cohort_patients()
    size = SEGMENTATION["batch_size"]
    return [patients[i : i + size] for i in range(0, len(patients), size)]


def nnunet_batch_images(wildcards):
    return expand(
        "results/imaging/{patient}/{phase}.nii.gz",
        patient=prediction_batches()[int(wildcards.batch)],
        phase=SEGMENTATION["channels"],
    )


def correction_mask(patient):
    """A corrected mask for this patient, if the corrections folder holds one (one stat)."""
    folder = SEGMENTATION["corrections"]
    if not folder:
        return None
    path = Path(folder) / f"{patient}.nii.gz"
    return str(path) if path.is_file() else None


def segment_patient_inputs(wildcards):
    patient = wildcards.patient
    inputs = {"reference": reference_mask(patient)}
    if NNUNET:
        batch = next(
            i for i, members in enumerate(prediction_batches()) if patient in members
        )
        inputs["prediction"] = f"results/segment/nnunet/predictions/batch{batch}"
    correction = correction_mask(patient)
    if correction:
        inputs["correction"] = correction
        # carried from the phase it was drawn on through the registration (drawn_masks)
        inputs["registration"] = f"results/imaging/{patient}/registration.json"
        inputs.update(drawn_phase_input(correction, "correction_sidecar"))
    return inputs


def drawn_phase_input(mask, key):
    """{key: the sidecar naming the phase a reader's mask was drawn on}, when there is one."""
    sidecar = drawn_phase_sidecar(mask)
    return {key: str(sidecar)} if sidecar.is_file() else {}


def segment_patient_outputs():
    outputs = {
        "tumor": "results/segment/{patient}/tumor.nii.gz",
        "qc": "results/segment/qc/{patient}.json",
    }
    if NNUNET:
        outputs["kidney"] = "results/segment/{patient}/kidney.nii.gz"
    return outputs


def segmentation_qc_inputs(wildcards):
    patients = cohort_patients()
    return {
        "qc": expand("results/segment/qc/{patient}.json", patient=patients),
        "tumors": expand("results/segment/{patient}/tumor.nii.gz", patient=patients),
        "cts": expand("results/imaging/{patient}/ct.nii.gz", patient=patients),
        "references": [reference_mask(patient) for patient in patients],
    }


def robustness_subset():
    """Training patients re-read for the ICC (features.robustness.n_patients, seeded)."""
    return seeded_subset(
        training_patients(), config["features"]["robustness"]["n_patients"], SEED
    )


def second_reader_inputs(wildcards):
    """The second reader's mask of a re-read patient, when the study has a second reader, with
    the registration it is carried through from the phase it was drawn on (and its sidecar).
    """
    folder = config["features"]["robustness"]["second_reader"]
    if not folder:
        return {}
    mask = str(Path(folder) / f"{wildcards.patient}.nii.gz")
    return {
        "second_reader": mask,
        "registration": f"results/imaging/{wildcards.patient}/registration.json",
        **drawn_phase_input(mask, "second_reader_sidecar"),
    }


def icc_thresholds():
    """The ICC thresholds of the tasks' selection chains (drawn on the robustness figure)."""
    steps = [task.get("selection", {}).get("robustness") for task in TASKS.values()]
    return sorted({s["icc_threshold"] for s in steps if s and "icc_threshold" in s})


def cohort_phase_images(phases, patients=included_patients):
    return lambda wildcards: expand(
        "results/imaging/{patient}/{phase}.nii.gz",
        patient=patients(),
        phase=phases,
    )


def cohort_tumor_masks(patients=included_patients):
    return lambda wildcards: expand(
        "results/segment/{patient}/tumor.nii.gz", patient=patients()
    )


GENOMICS_LIBRARY_NAMES = ["go_bp", "go_cc", "go_mf", "kegg", "hallmark"]
if SYNTHETIC:
    GENOMICS_LIBRARIES = {
        name: f"results/raw/genesets/{name}.gmt" for name in GENOMICS_LIBRARY_NAMES
    }
else:
    GENOMICS_LIBRARIES = {
        name: project_file(path)
        for name, path in (config["genomics"]["gene_sets"] or {}).items()
    }


def genomics_maf():
    """The MAF of the TMB analysis, or None (no mutation data: rule genomics_tmb is not asked
    for). Synthetic and public cohorts write one (cohort.smk), a manifest study has no genomics.
    """
    return "results/raw/mutations.maf" if SYNTHETIC or PUBLIC else None


def genomics_inputs(wildcards):
    """Expression, mutations and reference files: made by the generator or named in config."""
    maf = {"maf": genomics_maf()} if genomics_maf() else {}
    if SYNTHETIC:
        return {
            "counts": "results/raw/expression/counts.tsv",
            "samples": "results/raw/expression/samples.tsv",
            "estimate_gmt": "results/raw/genesets/estimate.gmt",
            "signature": "results/raw/signatures/immune_signature.tsv",
            **maf,
        }
    genomics = config["genomics"]
    missing = [k for k in ("gene_sets", "estimate_gmt", "signature") if not genomics[k]]
    if missing:
        raise WorkflowError(
            f"genomics needs reference files for a non-synthetic cohort: set genomics.{', genomics.'.join(missing)} "
            "(GMT gene-set libraries, the ESTIMATE signatures as GMT, a signature matrix such as LM22)"
        )
    return {
        "counts": "results/raw/expression/counts.tsv",
        "samples": "results/raw/expression/samples.tsv",
        "estimate_gmt": project_file(genomics["estimate_gmt"]),
        "signature": project_file(genomics["signature"]),
        **maf,
    }


def genomics_input(*names):
    """An input function: the named entries of genomics_inputs (use with unpack)."""
    return lambda wildcards: {
        name: path for name, path in genomics_inputs(wildcards).items() if name in names
    }


# the config keys of the high/low score groups (every genomics rule that reads the groups)
GENOMICS_GROUPS = ("group_high", "group_low")


def genomics_options(*keys, seed=False):
    """A genomics rule's own keys of the config block genomics (so a change reruns only that analysis)."""
    options = {
        key: config["genomics"][key] for key in keys if key in config["genomics"]
    }
    if seed:
        options["seed"] = SEED
    return options


def genomics_figure(name, caption=None):
    """results/figures/genomics_{name}.png in the Snakemake report, caption workflow/report/genomics_{caption}.rst."""
    return report(
        f"results/figures/genomics_{name}.png",
        caption=f"../report/genomics_{caption or name}.rst",
        category="Radiogenomics",
    )


def genomics_table(name, title):
    """results/genomics/{name}.tsv in both reports, caption workflow/report/table_genomics_{name}.rst."""
    return report_table(
        f"results/genomics/{name}.tsv", f"genomics_{name}", "Radiogenomics", title
    )


def genomics_targets():
    """The genomics stage's rules, one table each (their figures come with them): every
    analysis, TMB only with a MAF, the planted-truth comparison on synthetic runs."""
    if genomics_skip_reason(config) is not None:
        return []
    names = ["summary.json", "enrichment.tsv", "deconvolution.tsv", "estimate.tsv"]
    names += ["prognostic_degs.tsv"] + (["tmb.tsv"] if genomics_maf() else [])
    names += ["truth_recovery.tsv"] if SYNTHETIC else []
    return [f"results/genomics/{name}" for name in names]


def registration_inputs(wildcards):
    """Included patients' registrations and, for a synthetic cohort, the planted truth."""
    inputs = {
        "records": expand(
            "results/imaging/{patient}/registration.json", patient=included_patients()
        )
    }
    if SYNTHETIC:
        inputs["truth"] = "results/truth/phase_transforms.tsv"
        inputs["targets"] = expand(
            "results/truth/{patient}/habitats.nii.gz", patient=included_patients()
        )
    return inputs


def registration_qc_inputs(wildcards):
    """Registered phases and masks of the seeded sample shown in the QC figure."""
    sample = seeded_subset(included_patients(), REGISTRATION["qc_patients"], SEED)
    return {
        "images": expand(
            "results/imaging/{patient}/{phase}.nii.gz", patient=sample, phase=PHASES
        ),
        "masks": expand("results/segment/{patient}/tumor.nii.gz", patient=sample),
    }


def feature_targets():
    return ["results/features/radiomics.parquet", "results/figures/habitat_bic.png"]


# --- models and evaluation (models.smk, evaluate.smk) ----------------------------------

TASKS = {name: task_settings(task) for name, task in config["models"]["tasks"].items()}
SURVIVAL_TASKS = [name for name, task in TASKS.items() if task["kind"] == "survival"]
BINARY_TASKS = [name for name, task in TASKS.items() if task["kind"] == "binary"]
EVALUATION = evaluation_settings(config["evaluation"])
EVAL_COHORTS = EVALUATION["cohorts"]


def task_pattern(names):
    """Wildcard constraint matching exactly these task names (none: matches nothing)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


def task_inputs(wildcards):
    settings = TASKS[wildcards.task]
    inputs = {
        "clinical": "results/cohort/clinical.tsv",
        "features": [
            f"results/features/{name}.parquet" for name in settings["features"]
        ],
    }
    if config["models"]["robustness_table"]:
        inputs["robustness"] = config["models"]["robustness_table"]
    return inputs


def survival_settings(step):
    """params of a survival step: only the task settings it reads (a change reruns it)."""
    return lambda wildcards: survival_step_settings(TASKS[wildcards.task], step)


def model_figure(task_kind, caption):
    return report(
        f"results/figures/{{task}}_{task_kind}.png",
        caption=f"../report/{caption}.rst",
        category="Models and evaluation",
        subcategory="{task}",
    )


def report_table(path, caption, category, title, subcategory=None):
    """A table in both reports (snakemake --report and the study report), caption
    workflow/report/table_{caption}.rst, title labels["table"]."""
    return report(
        path,
        caption=f"../report/table_{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels={"table": title},
    )


def model_table(name, title, caption=None):
    """results/models/{task}/{name}.tsv in both reports under the task's heading, caption
    workflow/report/table_{caption or name}.rst."""
    return report_table(
        f"results/models/{{task}}/{name}.tsv",
        caption or name,
        "Models and evaluation",
        title,
        subcategory="{task}",
    )


def cohort_figures(kinds, caption_prefix):
    """Output entries {kind}_{cohort} (PNG, in the report) and {kind}_{cohort}_svg."""
    figures = {}
    for kind in kinds:
        for cohort in EVAL_COHORTS:
            stem = f"results/figures/{{task}}_{kind}_{cohort}"
            figures[f"{kind}_{cohort}"] = report(
                f"{stem}.png",
                caption=f"../report/{caption_prefix}{kind}.rst",
                category="Models and evaluation",
                subcategory="{task}",
                labels={"figure": kind, "cohort": cohort},
            )
            figures[f"{kind}_{cohort}_svg"] = f"{stem}.svg"
    return figures


def model_targets():
    targets = [
        f"results/models/{task}/{name}.tsv"
        for task in TASKS
        for name in ("predictions", "scores", "selected_features", "metrics")
    ]
    targets += [
        f"results/models/{task}/truth_comparison.tsv"
        for task in SURVIVAL_TASKS
        if SYNTHETIC
    ]
    return targets


def all_targets():
    targets = [
        "results/imaging/registration.tsv",
        "results/figures/registration_qc.png",
        *feature_targets(),
        *model_targets(),
        "results/segment/qc.tsv",
        "results/features/deep.parquet",
        "results/features/robustness.tsv",
        "results/models/multiphase/metrics.tsv",
        "results/report/index.html",
    ]
    targets += genomics_targets()
    targets += pathomics_targets()
    return targets


# --- pathomics (pathomics.smk) -----------------------------------------------------------

PATHOMICS = config["pathomics"]["enabled"]
if "pathomics" in TASKS:
    raise WorkflowError(
        "models.tasks.pathomics: the name is taken by the pathomics stage; rename the task"
    )


def _slides():
    """{patient: slide path}: generated (synthetic) or the manifest column `slide` (an empty
    cell: no slide)."""
    if SYNTHETIC:
        return {p: f"results/raw/slides/{p}.tif" for p in included_patients()}
    manifest = public_manifest() if PUBLIC else config["cohort"]["manifest"]
    table = pd.read_csv(manifest, sep="\t", dtype=str, keep_default_na=False)
    if "slide" not in table:
        return {}
    return dict(zip(table["patient_id"], table["slide"]))


def slide_file(wildcards):
    return _slides()[wildcards.patient]


def pathomics_patients():
    """Included patients with a slide (a patient without one is left out of pathomics)."""
    slides = _slides()
    return [p for p in included_patients() if slides.get(p)]


def pathomics_inputs(pattern):
    return lambda wildcards: expand(pattern, patient=pathomics_patients())


def pathomics_figures(kinds):
    """Per-cohort pathomics figures {kind}_{cohort} (PNG in the report) and their SVGs."""
    figures = {}
    for kind in kinds:
        for cohort in EVAL_COHORTS:
            stem = f"results/figures/{{task}}_{kind}_{cohort}"
            figures[f"{kind}_{cohort}"] = report(
                f"{stem}.png",
                caption=f"../report/pathomics_{kind}.rst",
                category="Pathomics",
                labels={"figure": kind, "cohort": cohort},
            )
            figures[f"{kind}_{cohort}_svg"] = f"{stem}.svg"
    return figures


def pathomics_table(name, title):
    """results/models/{task}/{name}.tsv of the pathomics score in both reports, caption
    workflow/report/table_pathomics_{name}.rst."""
    return report_table(
        f"results/models/{{task}}/{name}.tsv", f"pathomics_{name}", "Pathomics", title
    )


def _has_slides():
    """Slides exist for this study: generated, fetched from GDC, or a manifest column."""
    if SYNTHETIC:
        return True
    if PUBLIC:
        return config["cohort"]["gdc"]["slides"]
    header = pd.read_csv(config["cohort"]["manifest"], sep="\t", nrows=0)
    return "slide" in header.columns


def pathomics_targets():
    if not (PATHOMICS and _has_slides()):
        return []
    targets = [
        "results/features/pathomics.parquet",
        "results/models/pathomics/metrics.tsv",
    ]
    if SYNTHETIC:
        targets.append("results/models/pathomics/truth_recovery.tsv")
    return targets


# --- report (report.smk) ------------------------------------------------------------------

REPORT_CAPTIONS = REPO_ROOT / "workflow" / "report"


def report_outputs():
    """Every output wrapped in report(...), in the order of definition: its pattern, Snakemake's
    regex of it (wildcard constraints included), caption file (relative to workflow/report),
    category, subcategory and labels. The study report shows the files matching these, with
    the same captions and categories as `snakemake --report`. Read from workflow.rules at DAG
    time: nothing is globbed."""
    from snakemake.io import regex_from_filepattern

    declared = []
    for declaring in workflow.rules:
        for output in declaring.output:
            flag = output.flags.get("report")
            if not flag:
                continue
            caption = flag.caption
            if caption is not None:
                path = caption.get_path_or_uri(secret_free=True)
                caption = os.path.relpath(path, REPORT_CAPTIONS)
            declared.append(
                {
                    "rule": declaring.name,
                    "pattern": str(output),
                    "regex": regex_from_filepattern(str(output)),
                    "caption": caption,
                    "category": flag.category,
                    "subcategory": flag.subcategory,
                    "labels": dict(flag.labels or {}),
                }
            )
    return declared
