# Stage 2: imaging. Every included patient's phases are read (NIfTI or DICOM series) and
# resampled to the analysis grid (B-spline for images, nearest neighbour for the reference
# mask, which the segmentation stage uses or compares with).


rule preprocess:
    input:
        unpack(raw_case_input),
        qc="results/cohort/qc/{patient}.json",
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
