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
        features="results/features/patients/{patient}.radiomics.parquet",
        diagnostics="results/features/patients/{patient}.diagnostics.json",
    log:
        "logs/features/radiomics/{patient}.log",
    group:
        "per_patient"
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
            "results/features/patients/{patient}.radiomics.parquet",
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
