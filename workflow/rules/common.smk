# Config validation and input functions. Everything here runs at every DAG build (and in every
# cluster job), so it only reads small tables: the config, a manifest, the cohort checkpoint.
import re
import sys
from snakemake.exceptions import WorkflowError
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))
from radiogenomics.task_config import evaluation_settings, task_settings  # noqa: E402
from radiogenomics.config import (  # noqa: E402
    ConfigError,
    manifest_patients,
    manifest_rows,
    read_table,
    robustness_patients,
    synthetic_patient_ids,
    validate_config,
)

try:
    validate_config(
        config, Path(workflow.basedir) / "config/schemas/config.schema.yaml"
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None

ENVS = "../envs"
SEED = config["study"]["seed"]
SYNTHETIC = config["cohort"]["source"] == "synthetic"
# source public: the patients are known only after the fetch_public checkpoint has run
PUBLIC = config["cohort"]["source"] == "public"
PHASES = config["imaging"]["phases"]
ON_BAD_CASE = config["cohort"]["on_bad_case"]


def _candidate_patients():
    if SYNTHETIC:
        return (
            synthetic_patient_ids(
                config["synthetic"]["n_internal"], config["synthetic"]["n_external"]
            ),
            [],
        )
    if PUBLIC:
        if not config["cohort"]["masks"]:
            raise WorkflowError(
                "cohort.source is 'public' but cohort.masks is not set: give the folder with one "
                "tumour mask per patient, {patient_id}.nii.gz on the venous grid"
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
    """A config path relative to the working directory, else to the workflow's own folder."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return str(path)
    return str(Path(workflow.basedir) / path)


def raw_case_input(wildcards):
    """The files one patient's inspection reads."""
    if SYNTHETIC:
        return {"raw": f"results/raw/{wildcards.patient}"}
    if PUBLIC:
        row = manifest_rows(public_manifest())[wildcards.patient]
        inputs = {phase: row[phase] for phase in PHASES if row.get(phase)}
        # A missing mask is not an input (that would stop the whole run): the inspection
        # records the patient as a bad case naming the expected file.
        mask = public_mask(wildcards)
        if Path(mask).exists():
            inputs["mask"] = mask
        return inputs
    row = manifest_rows(config["cohort"]["manifest"])[wildcards.patient]
    return {key: row[key] for key in [*PHASES, "mask"] if row.get(key)}


def public_manifest():
    """results/raw/manifest.tsv, once the fetch_public checkpoint has written it."""
    return checkpoints.fetch_public.get().output.manifest


def public_mask(wildcards):
    """Where the user's tumour mask for this patient must be (source public).

    Relative to the working directory: masks are the user's data, never the workflow's.
    """
    return str(Path(config["cohort"]["masks"]) / f"{wildcards.patient}.nii.gz")


def expected_mask(wildcards):
    return public_mask(wildcards) if PUBLIC else None


def candidate_patients():
    """Patients the cohort inspects: known at start, or (public) the acquired ones."""
    if not PUBLIC:
        return CANDIDATES
    return list(manifest_rows(public_manifest()))


def cohort_inputs(wildcards):
    """Every candidate's inspection verdict, the clinical table, acquisition exclusions."""
    inputs = {
        "qc": expand("results/cohort/qc/{patient}.json", patient=candidate_patients()),
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


def included_patients():
    return sorted(cohort_table()["patient_id"])


def training_patients():
    table = cohort_table()
    return sorted(table.loc[table["cohort"] == "train", "patient_id"])


def robustness_subset():
    """Training patients re-read for the ICC (features.robustness.n_patients, seeded)."""
    return robustness_patients(
        training_patients(), config["features"]["robustness"]["n_patients"], SEED
    )


def second_reader_mask(wildcards):
    """The second reader's mask of a re-read patient, when the study has a second reader."""
    folder = config["features"]["robustness"]["second_reader"]
    return str(Path(folder) / f"{wildcards.patient}.nii.gz") if folder else []


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


def genomics_inputs(wildcards):
    """Expression, mutations and reference files: made by the generator or named in config."""
    if SYNTHETIC:
        return {
            "counts": "results/raw/expression/counts.tsv",
            "samples": "results/raw/expression/samples.tsv",
            "estimate_gmt": "results/raw/genesets/estimate.gmt",
            "signature": "results/raw/signatures/immune_signature.tsv",
            "maf": "results/raw/mutations.maf",
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
        "maf": "results/raw/mutations.maf",
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


def model_figure(task_kind, caption):
    return report(
        f"results/figures/{{task}}_{task_kind}.png",
        caption=f"../report/{caption}.rst",
        category="Models and evaluation",
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
        *feature_targets(),
        *model_targets(),
        "results/features/deep.parquet",
        "results/features/robustness.tsv",
        "results/models/multiphase/metrics.tsv",
        "results/report/index.html",
    ]
    if config["genomics"]["task"] in TASKS:
        targets.append("results/genomics/deg.tsv")
        if SYNTHETIC:
            targets.append("results/genomics/truth_recovery.tsv")
    return targets
