# ccRCC CT radiomics + radiogenomics study workflow.
# `snakemake --cores N` runs the study described by config/config.yaml (by default the embedded
# synthetic cohort); `--configfile config/studies/<preset>.yaml` reproduces a published study.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# relative to this file, so that runs with --directory elsewhere still load the defaults that
# a --configfile (e.g. config/tiny.yaml) extends
configfile: str(Path(workflow.basedir) / "config/config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/imaging.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/regions.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/deep.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/genomics.smk"
include: "workflow/rules/pathomics.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule features:
    input:
        feature_targets(),


rule models:
    input:
        model_targets(),
