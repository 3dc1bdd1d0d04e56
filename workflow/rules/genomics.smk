# Stage 8: radiogenomics. Expression of the high- vs low-score groups of one modelling task, one
# rule per analysis: the shared expression (genomics_expression), DEGs (PyDESeq2 / limma-voom),
# WGCNA, GO/KEGG ORA + GSEA, immune deconvolution, ESTIMATE, TMB (with a MAF), prognostic DEGs,
# then summary.json. Targets: genomics_targets() in common.smk.

GENOMICS = config["genomics"]
GENOMICS_DIR = "results/genomics"


rule genomics_expression:
    input:
        unpack(genomics_input("counts", "samples")),
        scores=f"results/models/{GENOMICS['task']}/scores.tsv",
    output:
        normalisation=f"{GENOMICS_DIR}/normalisation.json",
        counts=f"{GENOMICS_DIR}/intermediate/counts.parquet",
        expression=f"{GENOMICS_DIR}/intermediate/expression.parquet",
        groups=f"{GENOMICS_DIR}/intermediate/groups.parquet",
    log:
        "logs/genomics/expression.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        options=genomics_options(
            *GENOMICS_GROUPS, "cohorts", "min_count", "min_fraction", "deg"
        ),
    script:
        "../scripts/genomics_expression.py"


rule genomics_deg:
    input:
        unpack(genomics_input("counts", "samples")),
        filtered=rules.genomics_expression.output.counts,
        expression=rules.genomics_expression.output.expression,
        groups=rules.genomics_expression.output.groups,
    output:
        deg=genomics_table("deg", "Differential expression"),
        deg_full=f"{GENOMICS_DIR}/intermediate/deg.parquet",
        volcano=genomics_figure("volcano"),
        volcano_svg="results/figures/genomics_volcano.svg",
        pca=genomics_figure("deg_pca"),
        pca_svg="results/figures/genomics_deg_pca.svg",
        heatmap=genomics_figure("deg_heatmap"),
        heatmap_svg="results/figures/genomics_deg_heatmap.svg",
    log:
        "logs/genomics/deg.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        options=genomics_options(*GENOMICS_GROUPS, "deg"),
    script:
        "../scripts/genomics_deg.py"


rule genomics_wgcna:
    input:
        expression=rules.genomics_expression.output.expression,
        groups=rules.genomics_expression.output.groups,
        selected=f"results/models/{GENOMICS['task']}/selected_features.tsv",
        features="results/features/radiomics.parquet",
    output:
        modules=f"{GENOMICS_DIR}/wgcna_modules.tsv",
        soft_power=f"{GENOMICS_DIR}/wgcna_soft_power.tsv",
        eigengenes=f"{GENOMICS_DIR}/wgcna_eigengenes.tsv",
        module_trait=f"{GENOMICS_DIR}/wgcna_module_trait.tsv",
        network=f"{GENOMICS_DIR}/intermediate/wgcna.json",
        soft_threshold=genomics_figure("wgcna_soft_threshold"),
        soft_threshold_svg="results/figures/genomics_wgcna_soft_threshold.svg",
        module_trait_heatmap=genomics_figure("wgcna_module_trait"),
        module_trait_heatmap_svg="results/figures/genomics_wgcna_module_trait.svg",
    log:
        "logs/genomics/wgcna.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        options=genomics_options(*GENOMICS_GROUPS, "wgcna"),
    script:
        "../scripts/genomics_wgcna.py"


rule genomics_enrichment:
    input:
        deg=rules.genomics_deg.output.deg_full,
        modules=rules.genomics_wgcna.output.modules,
        network=rules.genomics_wgcna.output.network,
        libraries=list(GENOMICS_LIBRARIES.values()),
    output:
        enrichment=genomics_table("enrichment", "Gene-set enrichment"),
        dotplot=genomics_figure("enrichment_dotplot"),
        dotplot_svg="results/figures/genomics_enrichment_dotplot.svg",
    log:
        "logs/genomics/enrichment.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=genomics_options("enrichment", seed=True),
        libraries=GENOMICS_LIBRARIES,
    script:
        "../scripts/genomics_enrichment.py"


rule genomics_deconvolution:
    input:
        unpack(genomics_input("signature")),
        counts=rules.genomics_expression.output.counts,
        groups=rules.genomics_expression.output.groups,
    output:
        deconvolution=f"{GENOMICS_DIR}/deconvolution.tsv",
        tests=f"{GENOMICS_DIR}/deconvolution_tests.tsv",
        bars=genomics_figure("deconvolution_bars", "deconvolution"),
        bars_svg="results/figures/genomics_deconvolution_bars.svg",
        boxplots=genomics_figure("deconvolution_boxplots"),
        boxplots_svg="results/figures/genomics_deconvolution_boxplots.svg",
    log:
        "logs/genomics/deconvolution.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=genomics_options(*GENOMICS_GROUPS, "deconvolution", seed=True),
    script:
        "../scripts/genomics_deconvolution.py"


rule genomics_estimate:
    input:
        unpack(genomics_input("estimate_gmt")),
        expression=rules.genomics_expression.output.expression,
        groups=rules.genomics_expression.output.groups,
    output:
        estimate=genomics_table("estimate", "ESTIMATE scores"),
        tests=f"{GENOMICS_DIR}/estimate_tests.tsv",
        boxplots=genomics_figure("estimate_boxplots"),
        boxplots_svg="results/figures/genomics_estimate_boxplots.svg",
    log:
        "logs/genomics/estimate.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        options=genomics_options(*GENOMICS_GROUPS),
    script:
        "../scripts/genomics_estimate.py"


# Only with a MAF (genomics_maf() in common.smk; genomics_targets() asks for it).
rule genomics_tmb:
    input:
        unpack(genomics_input("maf", "samples")),
        expression=rules.genomics_expression.output.expression,
        deg=rules.genomics_deg.output.deg_full,
    output:
        tmb=f"{GENOMICS_DIR}/tmb.tsv",
        mutation_status=f"{GENOMICS_DIR}/mutation_status.tsv",
        deg_tmb=f"{GENOMICS_DIR}/deg_tmb.tsv",
    log:
        "logs/genomics/tmb.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        options=genomics_options("tmb"),
    script:
        "../scripts/genomics_tmb.py"


rule genomics_prognostic:
    input:
        clinical="results/cohort/clinical.tsv",
        expression=rules.genomics_expression.output.expression,
        deg=rules.genomics_deg.output.deg_full,
    output:
        prognostic=f"{GENOMICS_DIR}/prognostic_degs.tsv",
        km=genomics_figure("km_top_degs"),
        km_svg="results/figures/genomics_km_top_degs.svg",
    log:
        "logs/genomics/prognostic.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        options=genomics_options("survival"),
    script:
        "../scripts/genomics_prognostic.py"


rule genomics_summary:
    input:
        normalisation=rules.genomics_expression.output.normalisation,
        deg=rules.genomics_deg.output.deg,
        network=rules.genomics_wgcna.output.network,
    output:
        f"{GENOMICS_DIR}/summary.json",
    log:
        "logs/genomics/summary.log",
    conda:
        f"{ENVS}/genomics.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/genomics_summary.py"


rule genomics_truth_recovery:
    input:
        deg=rules.genomics_deg.output.deg,
        enrichment=rules.genomics_enrichment.output.enrichment,
        modules=rules.genomics_wgcna.output.modules,
        module_trait=rules.genomics_wgcna.output.module_trait,
        deconvolution=rules.genomics_deconvolution.output.deconvolution,
        truth="results/truth/de_genes.tsv",
        truth_fractions="results/truth/cell_fractions.tsv",
        truth_modules="results/truth/modules.tsv",
    output:
        genomics_table("truth_recovery", "Recovery of the planted biology"),
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
