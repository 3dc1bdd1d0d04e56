"""A one-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd (Debian's
packages) with their own configuration, state and logs in a temporary folder.

The node is this machine as `slurmd -C` reports it (its real CPUs and memory, memory a consumable
resource), plus one "GPU" whose device file is /dev/null: the profile's GPU rules ask for
`--gres=gpu:1` and the test submits them as written; they run on the CPU. No cgroups
(proctrack/linuxproc, task/none) and no accounting database: Slurm 22.05 has no file-based
accounting storage, so finished jobs go to the job completion log (jobcomp/filetxt), which
`sacct --completion` reads; running jobs' states come from `squeue` (MinJobAge keeps finished
jobs visible long enough for the plugin's status checks).

The plugin's job step drops SLURM_CONF from the environment of the srun it starts inside each job
(snakemake-executor-plugin-slurm-jobstep 0.6.1), so srun reads the default location: the
cluster's slurm.conf is also written to /etc/slurm/slurm.conf while the cluster runs (one such
cluster per machine at a time; the configuration of another cluster there is never replaced).
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
CLIENTS = ("sbatch", "squeue", "sacct", "scancel", "sinfo")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
OWN_CONF_MARK = "# one-node test cluster of tests/slurm_cluster.py\n"
# jobcomp/filetxt fields sacct --completion can print
COMPLETION_FIELDS = ("JobID", "JobName", "State", "ExitCode", "Start", "End", "NodeList", "WorkDir")


def missing_commands() -> list[str]:
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name) is None]


def default_conf_in_use() -> bool:
    """Whether /etc/slurm/slurm.conf belongs to another cluster or to a test cluster still running
    (one left by a killed test run, its slurmctld gone, is replaced)."""
    if not DEFAULT_CONF.exists():
        return False
    text = DEFAULT_CONF.read_text()
    if not text.startswith(OWN_CONF_MARK):
        return True
    pid_file = Path(next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("SlurmctldPidFile=")))
    return pid_file.exists() and _alive(int(pid_file.read_text()))


def machine_node() -> dict[str, str]:
    """This machine's node description as slurmd detects it (CPUs, sockets, cores, memory)."""
    detected = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    first = detected.splitlines()[0]
    return dict(field.split("=", 1) for field in first.split() if "=" in field)


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

    def command(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(args, capture_output=True, text=True, env=self.env)
        if check and done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr}\n{self.logs()}")
        return done.stdout

    def completed_jobs(self) -> list[dict[str, str]]:
        """`sacct --completion`: one record per job the cluster ran to an end (any state)."""
        out = self.command(
            "sacct", "--completion", "--allusers", "--parsable2", "--noheader",
            "--format", ",".join(COMPLETION_FIELDS),
        )
        return [dict(zip(COMPLETION_FIELDS, line.split("|"))) for line in out.splitlines() if line.strip()]

    def queued_jobs(self) -> list[str]:
        return self.command("squeue", "-h", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING", "-o", "%i").split()

    def wait_until_idle(self, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while self.queued_jobs():
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs still queued after {timeout_s} s: {self.queued_jobs()}\n{self.logs()}")
            time.sleep(1)

    def logs(self) -> str:
        return "\n".join(
            f"== {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )

    def write_config(self) -> None:
        for name in ("state", "spool"):
            (self.folder / name).mkdir(exist_ok=True)
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        machine = machine_node()
        hardware = " ".join(
            f"{name}={machine[name]}"
            for name in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
        )
        f = self.folder
        self.conf.write_text(
            OWN_CONF_MARK
            + f"""ClusterName=radiogenomics-ci
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
JobCompLoc={f}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MinJobAge=600
ReturnToService=2
SchedulerParameters=sched_interval=2
MpiDefault=none
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 {hardware} Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )
        (f / "gres.conf").write_text(f"NodeName={self.node} Name=gpu Count=1 File=/dev/null\n")

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
        state = ""
        while time.monotonic() < deadline:
            state = self.command("sinfo", "-h", "-n", self.node, "-o", "%T", check=False).strip()
            if state == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the test cluster's node did not come up (state {state!r}):\n{self.logs()}")

    def stop(self) -> None:
        """Cancel what still runs, stop the daemons, remove the default-location slurm.conf."""
        if (self.folder / "slurmctld.pid").exists():
            self.command("scancel", "--full", "--partition", "main", check=False)
            try:
                self.wait_until_idle(timeout_s=30)
            except RuntimeError:
                pass  # the daemons go down anyway; slurmd's stop kills what is left
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.folder / f"{name}.pid"
            if pid_file.exists():
                _terminate(int(pid_file.read_text()))
        if DEFAULT_CONF.exists() and DEFAULT_CONF.read_text() == self.conf.read_text():
            DEFAULT_CONF.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _terminate(pid: int, grace_s: float = 10) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
