"""Snakemake executor `slurm-groups`: snakemake-executor-plugin-slurm with group jobs whose
member jobs run side by side inside their allocation.

The pinned plugin (2.8.0, also its main branch) starts the Snakemake process inside every
submitted job with `--executor slurm-jobstep --jobs 1`, and the jobstep executor waits for each
`srun` step before it starts the next, so a group job of 100 patients on 16 CPUs runs its members
one at a time (plugin issue #469; docs/upstream.md). Here a group job's inner Snakemake gets no
jobstep executor: it schedules its members as local processes of the allocation, as many at a
time as the group's CPUs and memory allow, which is what the group's request was sized for.
Single jobs are submitted exactly as the plugin submits them.
"""

import threading

from snakemake_executor_plugin_slurm import Executor as SlurmExecutor
from snakemake_executor_plugin_slurm import ExecutorSettings, common_settings
from snakemake_interface_executor_plugins.utils import format_cli_arg, join_cli_args

__all__ = ["Executor", "ExecutorSettings", "common_settings"]


class Executor(SlurmExecutor):
    def __post_init__(self, *args, **kwargs):
        super().__post_init__(*args, **kwargs)
        # which job's command is being formatted: submissions may be formatted on several threads
        self._formatting = threading.local()

    def format_job_exec(self, job) -> str:
        self._formatting.group = job.is_group()
        try:
            return super().format_job_exec(job)
        finally:
            self._formatting.group = False

    def additional_general_args(self):
        if getattr(self._formatting, "group", False):
            # no `--executor slurm-jobstep --jobs 1`: the local executor of the inner Snakemake
            return ""
        return super().additional_general_args()

    def get_job_args(self, job) -> str:
        args = super().get_job_args(job)
        if not job.is_group():
            return args
        # The inner Snakemake may use what the group asked SLURM for, no more (a repeated
        # option: the last one counts).
        cpus = job.resources.get("cpus_per_task") or job.resources.get("_cores")
        mem_mb = job.resources.get("mem_mb")
        return join_cli_args(
            [
                args,
                format_cli_arg("--cores", cpus, skip=not cpus),
                format_cli_arg("--resources", {"mem_mb": mem_mb}, skip=not mem_mb),
            ]
        )
