# ccRCC CT radiomics + radiogenomics study workflow.
# `snakemake --cores N` runs the study described by config/config.yaml (by default the embedded
# synthetic cohort); `--configfile config/studies/<preset>.yaml` reproduces a published study.
# The workflow lives in workflow/Snakefile (the snakemake-workflows catalog's layout); this
# entry point only includes it.


include: "workflow/Snakefile"


# An included file's `default_target: True` does not reach the including file (Snakemake
# restores the includer's default target after an include: snakemake issues #2056, #2773), so
# the entry point names the workflow's default target again.
workflow.default_target = "all"
