# Stage 4: regions. Intratumoral habitats from one Gaussian mixture fitted on training patients'
# tumour voxels (K by BIC) and applied frozen to everyone; the peritumoral shell by physical
# distance; the whole tumour is the reference mask itself.

HABITATS = config["regions"]["habitats"]


rule habitat_voxels:
    input:
        phases=expand(
            "results/imaging/{{patient}}/{phase}.nii.gz", phase=HABITATS["phases"]
        ),
        tumor="results/segment/{patient}/tumor.nii.gz",
    output:
        "results/regions/voxels/{patient}.npz",
    log:
        "logs/regions/habitat_voxels/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        phases=HABITATS["phases"],
        texture=HABITATS["texture"],
        texture_radius_mm=HABITATS["texture_radius_mm"],
        smooth_sigma_mm=HABITATS["smooth_sigma_mm"],
        n_voxels=HABITATS["voxels_per_patient"],
        seed=SEED,
    script:
        "../scripts/habitat_voxels.py"


rule fit_habitats:
    input:
        lambda wildcards: expand(
            "results/regions/voxels/{patient}.npz", patient=training_patients()
        ),
    output:
        model="results/regions/habitat_model.json",
        bic=report_table(
            "results/regions/habitat_bic.tsv",
            "habitat_bic",
            "Regions",
            "Habitat model: BIC per K",
        ),
        png=report(
            "results/figures/habitat_bic.png",
            caption="../report/habitat_bic.rst",
            category="Regions",
        ),
        svg="results/figures/habitat_bic.svg",
    log:
        "logs/regions/fit_habitats.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        k_range=HABITATS["k_range"],
        bic_tolerance=HABITATS["bic_tolerance"],
        outlier_z=HABITATS["outlier_z"],
        seed=SEED,
    script:
        "../scripts/fit_habitats.py"


rule regions:
    input:
        model="results/regions/habitat_model.json",
        phases=expand(
            "results/imaging/{{patient}}/{phase}.nii.gz", phase=HABITATS["phases"]
        ),
        tumor="results/segment/{patient}/tumor.nii.gz",
    output:
        habitats="results/regions/{patient}/habitats.nii.gz",
        peri="results/regions/{patient}/peri.nii.gz",
        habitats_ctbl="results/regions/{patient}/habitats.ctbl",
        peri_ctbl="results/regions/{patient}/peri.ctbl",
    log:
        "logs/regions/regions/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        phases=HABITATS["phases"],
        margin_mm=config["regions"]["peri"]["margin_mm"],
        body_threshold_hu=config["regions"]["peri"]["body_threshold_hu"],
    script:
        "../scripts/regions.py"
