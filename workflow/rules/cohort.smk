# Stage 1: the cohort. The synthetic generator (default) writes raw images, clinical data,
# omics and planted truth, or (source public) fetch_public downloads them from TCIA and GDC;
# every patient is inspected; a checkpoint assembles the included cohort, its
# train/test/external split and the exclusions.


# Both write results/raw/clinical.tsv and the omics tables: only one of them may exist.
if PUBLIC:

    checkpoint fetch_public:
        output:
            manifest="results/raw/manifest.tsv",
            clinical="results/raw/clinical.tsv",
            downloads="results/raw/downloads.tsv",
            exclusions="results/raw/acquisition_exclusions.tsv",
            counts="results/raw/expression/counts.tsv",
            samples="results/raw/expression/samples.tsv",
            mutations="results/raw/mutations.maf",
        log:
            "logs/cohort/fetch_public.log",
        conda:
            f"{ENVS}/imaging.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=2880,
        params:
            cohort=config["cohort"],
            on_bad_case=ON_BAD_CASE,
        script:
            "../scripts/fetch_public.py"

else:

    rule synthetic_cohort:
        output:
            clinical="results/raw/clinical.tsv",
            phantoms="results/raw/phantoms.tsv",
            counts="results/raw/expression/counts.tsv",
            samples="results/raw/expression/samples.tsv",
            genesets=expand(
                "results/raw/genesets/{library}.gmt",
                library=[*GENOMICS_LIBRARY_NAMES, "estimate"],
            ),
            signature="results/raw/signatures/immune_signature.tsv",
            mutations="results/raw/mutations.maf",
            truth_patients="results/truth/patients.tsv",
            truth_de="results/truth/de_genes.tsv",
            truth_fractions="results/truth/cell_fractions.tsv",
            truth_modules="results/truth/modules.tsv",
            truth_transforms="results/truth/phase_transforms.tsv",
        log:
            "logs/cohort/synthetic_cohort.log",
        conda:
            f"{ENVS}/imaging.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            synthetic=config["synthetic"],
            seed=SEED,
            reference_phase=REFERENCE_PHASE,
            mask_phase=MASK_PHASE,
        script:
            "../scripts/synthetic_cohort.py"

    rule synthetic_phantom:
        input:
            phantoms="results/raw/phantoms.tsv",
        output:
            raw=directory("results/raw/{patient}"),
            truth="results/truth/{patient}/habitats.nii.gz",
            kidney="results/truth/{patient}/kidney.nii.gz",
        log:
            "logs/cohort/synthetic_phantom/{patient}.log",
        conda:
            f"{ENVS}/imaging.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            spacing=config["imaging"]["spacing_mm"],
        script:
            "../scripts/synthetic_phantom.py"


rule inspect_case:
    input:
        unpack(raw_case_input),
    output:
        "results/cohort/qc/{patient}.json",
    log:
        "logs/cohort/inspect/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        phases=PHASES,
        on_bad_case=ON_BAD_CASE,
        synthetic=SYNTHETIC,
        expected_mask=expected_mask,
        mask_phase=mask_phase,
        case_paths=manifest_case_paths,
        checks=CASE_CHECKS,
    script:
        "../scripts/inspect_case.py"


checkpoint cohort:
    input:
        unpack(cohort_inputs),
    output:
        clinical="results/cohort/clinical.tsv",
        exclusions="results/cohort/exclusions.tsv",
    log:
        "logs/cohort/cohort.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        manifest_problems=MANIFEST_PROBLEMS,
        required=config["cohort"]["required_clinical"],
        split=config["cohort"]["split"],
        seed=SEED,
        on_bad_case=ON_BAD_CASE,
    script:
        "../scripts/assemble_cohort.py"
