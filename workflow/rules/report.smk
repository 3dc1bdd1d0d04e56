# Study report (results/report/index.html) and, on request, the run as an RO-Crate.
# The report waits for every other target of the study (all_targets in common.smk). Its figures
# and tables are the outputs the rules wrap in report(...) (tables: report_table), with their
# caption files and categories, the same list `snakemake --report` shows (report_outputs in
# common.smk, read at DAG time).


rule study_report:
    input:
        clinical="results/cohort/clinical.tsv",
        exclusions="results/cohort/exclusions.tsv",
        segment_exclusions="results/segment/exclusions.tsv",
        stages=lambda wildcards: [
            target
            for target in all_targets()
            if not target.startswith("results/report/")
        ],
    output:
        html=report(
            "results/report/index.html",
            caption="../report/study_report.rst",
            category="Report",
        ),
        flow=report(
            "results/report/assets/patient_flow.png",
            caption="../report/patient_flow.rst",
            category="Report",
        ),
        table1=report(
            "results/report/assets/table1.tsv",
            caption="../report/table1.rst",
            category="Report",
        ),
    log:
        "logs/report/study_report.log",
    conda:
        f"{ENVS}/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        captions_dir=str(REPORT_CAPTIONS),
        declared=lambda wildcards: report_outputs(),
    script:
        "../scripts/study_report.py"


# Not part of `all`: run `snakemake ro_crate` after a study to get ro-crate-metadata.json in
# the workdir (data referenced in place, not copied).
rule ro_crate:
    input:
        rules.study_report.output.html,
    output:
        "ro-crate-metadata.json",
    log:
        "logs/report/ro_crate.log",
    conda:
        f"{ENVS}/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        snakefile=workflow.main_snakefile,
        # --configfile given on the command line wins over the Snakefile's configfile
        configfile=lambda wildcards: (
            list(workflow.overwrite_configfiles) or workflow.configfiles or [None]
        )[-1],
    script:
        "../scripts/ro_crate.py"
