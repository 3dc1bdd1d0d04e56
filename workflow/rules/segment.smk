# Stage 3: segmentation. results/segment/{patient}/tumor.nii.gz, the mask every later stage
# reads, comes from the cohort's reference mask (method reference) or from nnU-Net v2
# (method nnunet: a model folder named in config, or one trained here on training patients'
# reference masks; prediction batched, the model loaded once per batch). A corrected mask in
# segmentation.corrections replaces the automatic one for that patient only. The QC checkpoint
# writes qc.tsv, the QC sheet and the patients whose segmentation is unusable.


if NNUNET and not SEGMENTATION["model_dir"]:

    rule nnunet_train:
        input:
            unpack(nnunet_training_inputs),
        output:
            model=directory(NNUNET_MODEL),
        log:
            "logs/segment/nnunet_train.log",
        conda:
            f"{ENVS}/segmentation.yaml"
        threads: SEGMENTATION["threads"]
        resources:
            mem_mb=12000,
            runtime=1440,
        params:
            patients=lambda wildcards: nnunet_training_patients(),
            channels=SEGMENTATION["channels"],
            labels=SEGMENTATION["labels"],
            settings=SEGMENTATION["train"],
            device=SEGMENTATION["device"],
            work="results/segment/nnunet/work",
            seed=SEED,
        script:
            "../scripts/nnunet_train.py"


if NNUNET:

    rule nnunet_predict:
        input:
            model=NNUNET_MODEL,
            images=nnunet_batch_images,
        output:
            directory("results/segment/nnunet/predictions/batch{batch}"),
        log:
            "logs/segment/nnunet_predict/batch{batch}.log",
        conda:
            f"{ENVS}/segmentation.yaml"
        threads: SEGMENTATION["threads"]
        resources:
            mem_mb=8000,
            runtime=240,
        params:
            patients=lambda wildcards: prediction_batches()[int(wildcards.batch)],
            channels=SEGMENTATION["channels"],
            folds=SEGMENTATION["folds"],
            checkpoint=SEGMENTATION["checkpoint"],
            device=SEGMENTATION["device"],
            tta=SEGMENTATION["tta"],
            tile_step_size=SEGMENTATION["tile_step_size"],
        script:
            "../scripts/nnunet_predict.py"


rule segment_patient:
    input:
        unpack(segment_patient_inputs),
        ct="results/imaging/{patient}/ct.nii.gz",
    output:
        **segment_patient_outputs(),
    log:
        "logs/segment/segment_patient/{patient}.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method=SEGMENTATION["method"],
        labels=SEGMENTATION["labels"],
        postprocess=SEGMENTATION["postprocess"],
        min_tumor_ml=SEGMENTATION["min_tumor_ml"],
        on_bad_case=ON_BAD_CASE,
    script:
        "../scripts/segment_patient.py"


checkpoint segmentation_qc:
    input:
        unpack(segmentation_qc_inputs),
    output:
        qc=report_table(
            "results/segment/qc.tsv",
            "segmentation_qc",
            "Segmentation",
            "Segmentation quality control",
        ),
        exclusions="results/segment/exclusions.tsv",
        png=report(
            "results/figures/segmentation_qc.png",
            caption="../report/segmentation_qc.rst",
            category="Segmentation",
        ),
        svg="results/figures/segmentation_qc.svg",
    log:
        "logs/segment/segmentation_qc.log",
    conda:
        f"{ENVS}/imaging.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        patients=lambda wildcards: cohort_patients(),
        window=[
            config["imaging"]["window"]["level"],
            config["imaging"]["window"]["width"],
        ],
    script:
        "../scripts/segmentation_qc.py"
