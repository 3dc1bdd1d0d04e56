# Stage 5: handcrafted radiomics. PyRadiomics per region (whole tumour, each habitat,
# peritumoral shell) per phase, one job per patient, then one table.

RADIOMICS = config["features"]["radiomics"]


rule radiomics:
    input:
        phases=expand(
            "results/imaging/{{patient}}/{phase}.nii.gz", phase=RADIOMICS["phases"]
        ),
        tumor="results/segment/{patient}/tumor.nii.gz",
        habitats="results/regions/{patient}/habitats.nii.gz",
        peri="results/regions/{patient}/peri.nii.gz",
        model="results/regions/habitat_model.json",
        params=project_file(RADIOMICS["params"]),
    output:
        features="results/features/patients/{patient}.radiomics.json",
        diagnostics="results/features/patients/{patient}.diagnostics.json",
    log:
        "logs/features/radiomics/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        phases=RADIOMICS["phases"],
        regions=RADIOMICS["regions"],
    script:
        "../scripts/extract_radiomics.py"


rule radiomics_table:
    input:
        features=lambda wildcards: expand(
            "results/features/patients/{patient}.radiomics.json",
            patient=included_patients(),
        ),
        diagnostics=lambda wildcards: expand(
            "results/features/patients/{patient}.diagnostics.json",
            patient=included_patients(),
        ),
    output:
        features="results/features/radiomics.parquet",
        diagnostics="results/features/radiomics_diagnostics.tsv",
    log:
        "logs/features/radiomics_table.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=20,
    script:
        "../scripts/radiomics_table.py"


# Robustness (ICC): a seeded subset of training patients is re-read, by second-reader masks
# when the study has them, else by seeded perturbations of the reference mask; each rater's
# mask goes through the frozen habitat model and the shell before re-extraction.
ROBUSTNESS = config["features"]["robustness"]


rule radiomics_robustness:
    input:
        unpack(second_reader_inputs),
        phases=expand(
            "results/imaging/{{patient}}/{phase}.nii.gz", phase=RADIOMICS["phases"]
        ),
        habitat_phases=expand(
            "results/imaging/{{patient}}/{phase}.nii.gz", phase=HABITATS["phases"]
        ),
        tumor="results/segment/{patient}/tumor.nii.gz",
        model="results/regions/habitat_model.json",
        params=project_file(RADIOMICS["params"]),
    output:
        "results/features/robustness/{patient}.radiomics.json",
    log:
        "logs/features/radiomics_robustness/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        phases=RADIOMICS["phases"],
        habitat_phases=HABITATS["phases"],
        regions=RADIOMICS["regions"],
        margin_mm=config["regions"]["peri"]["margin_mm"],
        body_threshold_hu=config["regions"]["peri"]["body_threshold_hu"],
        robustness=ROBUSTNESS,
        seed=SEED,
    script:
        "../scripts/radiomics_robustness.py"


rule robustness_table:
    input:
        reference=lambda wildcards: expand(
            "results/features/patients/{patient}.radiomics.json",
            patient=robustness_subset(),
        ),
        raters=lambda wildcards: expand(
            "results/features/robustness/{patient}.radiomics.json",
            patient=robustness_subset(),
        ),
        deep="results/features/robustness_deep.tsv",
    output:
        table=report_table(
            "results/features/robustness.tsv",
            "robustness",
            "Features",
            "Feature robustness",
        ),
        png=report(
            "results/figures/robustness_icc.png",
            caption="../report/robustness.rst",
            category="Features",
        ),
        svg="results/figures/robustness_icc.svg",
    log:
        "logs/features/robustness_table.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=20,
    params:
        form=ROBUSTNESS["form"],
        thresholds=icc_thresholds(),
    script:
        "../scripts/robustness_table.py"
