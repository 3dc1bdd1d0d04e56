"""A one-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd (Debian's
packages) with their own configuration, state and logs in a temporary folder.

No cgroups (proctrack/linuxproc, task/none) and no accounting database (accounting_storage/none):
Slurm 22.05 has no file-based accounting storage, so `sacct` cannot answer; finished jobs are
counted from the job completion log (jobcomp/filetxt) and job states come from `squeue`
(MinJobAge keeps finished jobs visible). The node is the size profiles/slurm bounds a group job
to (16 CPUs, 64 GB, one GPU) whatever the machine has (config_overrides); memory is not a
consumable (CR_CPU) and the "GPU" is /dev/null, so the GPU rules run on the CPU. Its
slurm.conf is also copied to /etc/slurm/slurm.conf for the cluster's lifetime (see DEFAULT_CONF):
one such cluster per machine at a time.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
# The plugin's job step drops SLURM_CONF from the environment of the srun it starts inside each
# job (snakemake-executor-plugin-slurm-jobstep 0.6.1), so srun reads the default location: the
# cluster's config is installed there too while the cluster runs.
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
NODE_CPUS, NODE_MEM_MB = 16, 64000


def missing_daemons() -> list[str]:
    return [name for name in (*DAEMONS, "sbatch", "squeue") if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalSlurm:
    folder: Path
    node: str

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    @property
    def jobcomp(self) -> Path:
        return self.folder / "jobcomp.txt"

    def finished_jobs(self) -> list[dict[str, str]]:
        """One record per job the cluster ran to an end (completed, failed, cancelled)."""
        if not self.jobcomp.exists():
            return []
        return [
            dict(field.split("=", 1) for field in line.split() if "=" in field)
            for line in self.jobcomp.read_text().splitlines()
            if line.strip()
        ]

    def queued_jobs(self) -> list[str]:
        done = subprocess.run(
            ["squeue", "-h", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING", "-o", "%i"],
            capture_output=True, text=True, env=self.env, check=True,
        )
        return done.stdout.split()

    def logs(self) -> str:
        return "\n".join(
            f"== {path.name}\n{path.read_text()[-3000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )

    def write_config(self) -> None:
        for name in ("state", "spool"):
            (self.folder / name).mkdir(exist_ok=True)
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        f = self.folder
        self.conf.write_text(
            f"""ClusterName=radiogenomics-ci
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={f}/munge.socket
CredType=cred/munge
StateSaveLocation={f}/state
SlurmdSpoolDir={f}/spool
SlurmctldPidFile={f}/slurmctld.pid
SlurmdPidFile={f}/slurmd.pid
SlurmctldLogFile={f}/slurmctld.log
SlurmdLogFile={f}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MinJobAge=600
ReturnToService=2
MpiDefault=none
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )
        (self.folder / "gres.conf").write_text(f"NodeName={self.node} Name=gpu Count=1 File=/dev/null\n")

    def start(self, timeout_s: float = 120) -> None:
        self.write_config()
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.conf, DEFAULT_CONF)
        f = self.folder
        subprocess.run(
            [
                "munged", "--force", f"--socket={f}/munge.socket", f"--key-file={f}/munge.key",
                f"--pid-file={f}/munged.pid", f"--log-file={f}/munged.log", f"--seed-file={f}/munged.seed",
            ],
            check=True,
        )
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=self.env)
        subprocess.run(["slurmd", "-f", str(self.conf), "-N", self.node], check=True, env=self.env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-n", self.node, "-o", "%T"], capture_output=True, text=True, env=self.env
            ).stdout.strip()
            if state == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the test cluster's node did not come up (state {state!r}):\n{self.logs()}")

    def stop(self) -> None:
        if DEFAULT_CONF.exists() and DEFAULT_CONF.read_text() == self.conf.read_text():
            DEFAULT_CONF.unlink()
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.folder / f"{name}.pid"
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text())
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
