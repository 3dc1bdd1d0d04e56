"""The sbatch submissions a SLURM run would make, from a dry run, as the SLURM plugin builds them.

usage: bin/slurm-plan PLAN.json [snakemake arguments, e.g. --profile profiles/slurm --configfile F]

Runs `snakemake --dry-run` with the given arguments, but lets it plan as the cluster executor
does (group jobs formed, their resources summed within --resources' per-submission pool) and
hands every submission to snakemake-executor-plugin-slurm's own validation and sbatch-command
building. Writes a JSON file: every rule of the workflow (its group, its wildcards) and every
submission (name, rules, jobs, resources, sbatch arguments, the plugin's error if it refuses
the job), and prints the number of submissions. Exit status 1
if the plugin refuses any submission. Account and partition checks need a cluster: they are
reported as given (slurm_account, slurm_partition), not validated.
"""

import json
import shlex
import sys
from pathlib import Path

from snakemake.executors import dryrun
from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string
from snakemake_executor_plugin_slurm.validation import validate_slurm_extra
from snakemake_interface_common.exceptions import WorkflowError


def sbatch_arguments(job) -> str:
    """The plugin's sbatch call for a job (without the wrapped command); raises its WorkflowError."""
    validate_slurm_extra(job)
    account = job.resources.get("slurm_account")
    partition = job.resources.get("slurm_partition")
    params = {
        "run_uuid": "RUN_UUID",
        "slurm_logfile": f".snakemake/slurm_logs/{job.name}/%j.log",
        "comment_str": f"rule_{job.name}",
        "account": f"-A {shlex.quote(str(account))}" if account else "",
        "partition": f"-p {shlex.quote(str(partition))}" if partition else "",
        "workdir": "",
    }
    return get_submit_command(job, params) + set_gres_string(job)


def describe(job) -> dict:
    members = list(job.jobs) if job.is_group() else [job]
    entry = {
        "name": job.name,
        "group": job.is_group(),
        "rules": sorted({member.rule.name for member in members}),
        "jobs": len(members),
        "resources": {
            name: value
            for name, value in job.resources.items()
            if isinstance(value, (int, str)) and not name.startswith("_")
        },
    }
    try:
        entry["sbatch"] = sbatch_arguments(job)
    except WorkflowError as error:
        entry["error"] = str(error)
    return entry


def main(argv: list[str]) -> int:
    plan_path, snakemake_args = Path(argv[0]), argv[1:]
    submissions, rules = [], {}

    def plan_job(executor, job):
        rules.update(
            (rule.name, {"group": rule.group, "wildcards": sorted(rule.wildcard_names)})
            for rule in executor.workflow.rules
        )
        if not job.is_local:  # local rules run in the main process, not submitted
            submissions.append(describe(job))
        dry_run_job(executor, job)

    # Plan as a remote executor (the dry-run executor otherwise counts as local, where Snakemake
    # ignores groups), and dry-run the local rules too instead of running them.
    dry_run_job = dryrun.Executor.run_job
    dryrun.Executor.run_job = plan_job
    dryrun.common_settings.non_local_exec = True
    get_plugin = ExecutorPluginRegistry.get_plugin
    ExecutorPluginRegistry.get_plugin = lambda registry, name: get_plugin(
        registry, "dryrun" if name == "local" else name
    )

    from snakemake.cli import main as snakemake_main

    try:
        snakemake_main([*snakemake_args, "--dry-run", "--quiet", "all"])
    except SystemExit as done:
        if done.code:
            return int(done.code) if isinstance(done.code, int) else 1
    plan_path.write_text(json.dumps({"rules": rules, "submissions": submissions}, indent=1))
    refused = [entry for entry in submissions if "error" in entry]
    print(f"{len(submissions)} submissions ({sum(e['jobs'] for e in submissions)} jobs); refused: {len(refused)}")
    for entry in refused:
        print(f"refused {entry['name']}: {entry['error']}", file=sys.stderr)
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
