# Study report (results/report/index.html) and, on request, the run as an RO-Crate.
# Stages add what the report should wait for to REPORT_INPUTS (a list defined in common.smk);
# the report itself finds every figure and table that exists (radiogenomics.report.STAGE_SPECS).
import os


rule study_report:
    input:
        lambda wildcards: globals().get("REPORT_INPUTS", ["results/cohort/clinical.tsv"]),
    output:
        html="results/report/index.html",
    params:
        captions_dir=os.path.join(workflow.current_basedir, "..", "report"),
    log:
        "logs/report/study_report.log",
    script:
        "../scripts/study_report.py"


# Not part of `all`: run `snakemake ro_crate` after a study to get ro-crate-metadata.json in
# the workdir (data referenced in place, not copied).
rule ro_crate:
    input:
        rules.study_report.output.html,
    output:
        "ro-crate-metadata.json",
    params:
        snakefile=workflow.main_snakefile,
        # --configfile given on the command line wins over the Snakefile's configfile
        configfile=lambda wildcards: (
            list(workflow.overwrite_configfiles) or workflow.configfiles or [None]
        )[-1],
    log:
        "logs/report/ro_crate.log",
    script:
        "../scripts/ro_crate.py"
