"""profiles/slurm's executor `slurm-groups` without a cluster: what it changes in the command of
the Snakemake process that runs inside a submitted job. The plugin's own parts are replaced by
stand-ins here; tests/test_slurm.py runs the executor on a real one-node SLURM."""

from types import SimpleNamespace

import pytest
from snakemake_executor_plugin_slurm import Executor as SlurmExecutor
from snakemake_executor_plugin_slurm_groups import Executor

PLUGIN_GENERAL_ARGS = "--executor slurm-jobstep --jobs 1"


def job(group: bool, **resources):
    return SimpleNamespace(is_group=lambda: group, resources=resources)


@pytest.fixture
def executor(monkeypatch):
    # the plugin's command: its job args, then the general args it adds while formatting a job
    monkeypatch.setattr(SlurmExecutor, "additional_general_args", lambda self: PLUGIN_GENERAL_ARGS)
    monkeypatch.setattr(SlurmExecutor, "get_job_args", lambda self, job: "--target-jobs x")
    monkeypatch.setattr(
        SlurmExecutor, "format_job_exec",
        lambda self, job: f"snakemake {self.get_job_args(job)} {self.additional_general_args()}".strip(),
    )  # fmt: skip
    monkeypatch.setattr(SlurmExecutor, "__post_init__", lambda self, *args, **kwargs: None)
    instance = object.__new__(Executor)
    instance.__post_init__()
    return instance


def test_a_group_job_runs_its_members_with_the_local_executor_bounded_by_its_request(executor):
    command = executor.format_job_exec(job(True, cpus_per_task=16, mem_mb=64000))
    assert "slurm-jobstep" not in command and "--jobs 1" not in command
    assert command == "snakemake --target-jobs x --cores 16 --resources 'mem_mb=64000'"


def test_a_single_job_is_submitted_as_the_plugin_submits_it(executor):
    command = executor.format_job_exec(job(False, cpus_per_task=2, mem_mb=4000))
    assert command == f"snakemake --target-jobs x {PLUGIN_GENERAL_ARGS}"
    # after a group job the flag is reset: the next single job gets the plugin's arguments again
    executor.format_job_exec(job(True, cpus_per_task=4))
    assert executor.additional_general_args() == PLUGIN_GENERAL_ARGS


def test_a_group_without_a_cpu_request_falls_back_to_its_cores(executor):
    command = executor.format_job_exec(job(True, _cores=8))
    assert "--cores 8" in command and "--resources" not in command
