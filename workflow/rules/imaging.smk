# Stage 2: imaging. Every included patient's phases are read (NIfTI or DICOM series) and
# resampled to the analysis grid (B-spline for images, nearest neighbour for the mask).


rule preprocess:
    input:
        unpack(raw_case_input),
        qc="results/cohort/qc/{patient}.json",
    output:
        phases=expand("results/imaging/{{patient}}/{phase}.nii.gz", phase=PHASES),
        ct="results/imaging/{patient}/ct.nii.gz",
        tumor="results/segment/{patient}/tumor.nii.gz",
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
    script:
        "../scripts/preprocess.py"
