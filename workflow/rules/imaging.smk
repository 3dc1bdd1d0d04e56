# Stage 2: imaging. Every phase of a patient is registered to the reference phase (before the
# cohort checkpoint: a phase that cannot be registered excludes the patient), then all phases
# and the mask are resampled onto the reference phase's grid at the analysis spacing (B-spline
# for images, nearest neighbour for the mask).


rule register_phases:
    input:
        unpack(raw_case_input),
        qc="results/cohort/qc/{patient}.json",
    output:
        "results/imaging/{patient}/registration.json",
    log:
        "logs/imaging/register_phases/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    # one thread: ITK sums the metric per thread, a fixed count keeps results bit-identical
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        phases=PHASES,
        registration=REGISTRATION,
        mask_phase=mask_phase,
        mask_label=config["cohort"]["mask_label"],
        mask_required=not NNUNET,
        seed=SEED,
        on_bad_case=ON_BAD_CASE,
        synthetic=SYNTHETIC,
    script:
        "../scripts/register_phases.py"


rule preprocess:
    input:
        unpack(raw_case_input),
        registration="results/imaging/{patient}/registration.json",
    output:
        phases=expand("results/imaging/{{patient}}/{phase}.nii.gz", phase=PHASES),
        ct="results/imaging/{patient}/ct.nii.gz",
        reference="results/imaging/{patient}/reference_tumor.nii.gz",
    log:
        "logs/imaging/preprocess/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        phases=PHASES,
        analysis_phase=config["imaging"]["analysis_phase"],
        spacing=config["imaging"]["spacing_mm"],
        interpolator=config["imaging"]["interpolator"],
        synthetic=SYNTHETIC,
        mask_label=config["cohort"]["mask_label"],
        mask_required=not NNUNET,
    script:
        "../scripts/preprocess.py"


rule registration_table:
    input:
        unpack(registration_inputs),
    output:
        report_table(
            "results/imaging/registration.tsv",
            "registration",
            "Imaging",
            "Phase registration",
        ),
    log:
        "logs/imaging/registration_table.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/registration_table.py"


rule registration_qc:
    input:
        unpack(registration_qc_inputs),
    output:
        png=report(
            "results/figures/registration_qc.png",
            caption="../report/registration_qc.rst",
            category="Imaging",
        ),
        svg="results/figures/registration_qc.svg",
    log:
        "logs/imaging/registration_qc.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        reference=REFERENCE_PHASE,
        window=config["imaging"]["window"],
    script:
        "../scripts/registration_qc.py"
