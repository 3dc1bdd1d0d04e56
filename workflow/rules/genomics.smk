# Stage 8: radiogenomics. Expression of the high- vs low-score groups of one modelling task:
# DEGs (PyDESeq2), GO/KEGG ORA + GSEA, WGCNA, immune deconvolution, ESTIMATE, TMB, prognostic DEGs.

GENOMICS = config["genomics"]


rule genomics:
    input:
        unpack(genomics_inputs),
        scores=f"results/models/{GENOMICS['task']}/scores.tsv",
        selected=f"results/models/{GENOMICS['task']}/selected_features.tsv",
        clinical="results/cohort/clinical.tsv",
        features="results/features/radiomics.parquet",
    output:
        deg="results/genomics/deg.tsv",
        enrichment="results/genomics/enrichment.tsv",
        modules="results/genomics/wgcna_modules.tsv",
        deconvolution="results/genomics/deconvolution.tsv",
        estimate="results/genomics/estimate.tsv",
        summary="results/genomics/summary.json",
        volcano=report(
            "results/figures/genomics_volcano.png",
            caption="../report/genomics_volcano.rst",
            category="Radiogenomics",
        ),
        deconvolution_bars=report(
            "results/figures/genomics_deconvolution_bars.png",
            caption="../report/genomics_deconvolution.rst",
            category="Radiogenomics",
        ),
    log:
        "logs/genomics/genomics.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        options=lambda wildcards: {
            **{
                k: v
                for k, v in GENOMICS.items()
                if k not in ("task", "gene_sets", "estimate_gmt", "signature")
            },
            "seed": SEED,
        },
        libraries=GENOMICS_LIBRARIES,
    script:
        "../scripts/genomics.py"


rule genomics_truth_recovery:
    input:
        deg="results/genomics/deg.tsv",
        enrichment="results/genomics/enrichment.tsv",
        modules="results/genomics/wgcna_modules.tsv",
        deconvolution="results/genomics/deconvolution.tsv",
        truth="results/truth/de_genes.tsv",
    output:
        "results/genomics/truth_recovery.tsv",
    log:
        "logs/genomics/truth_recovery.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/genomics_truth_recovery.py"
