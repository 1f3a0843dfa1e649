"""A real single-node SLURM cluster on this machine, for tests/test_cluster.py.

The `slurm_cluster` fixture installs Debian's slurm-wlm and munge with apt when they are missing (root
only), writes a slurm.conf for localhost, starts munged, slurmctld and slurmd, waits until `sinfo` shows
the node idle, and in its finalizer stops the three daemons by their pids. It skips, saying why, when
the machine cannot have one: not root, or SLURM missing and no apt-get.

Everything but the configuration lives in a temporary folder (munge key and socket, SLURM state, spool,
logs, pid files). The configuration itself must be /etc/slurm/slurm.conf: the SLURM plugin runs every
job under `srun` inside its allocation with the SLURM_* variables (SLURM_CONF too) removed, so `srun`
only finds the default path. The file is marked as the test's and removed afterwards; a slurm.conf
that is not the test's is never touched (the tests skip instead).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Throwaway single-node cluster of nanolab's tests/slurm_cluster.py: removed when the tests end."
SBIN = Path("/usr/sbin")
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
APT_PACKAGES = ("slurm-wlm", "munge")


def missing_programs() -> list[str]:
    return [p for p in DAEMONS if not (SBIN / p).exists()] + [p for p in CLIENTS if shutil.which(p) is None]


def unavailable_reason() -> str | None:
    """Why no test cluster can be had here, or None."""
    if os.geteuid() != 0:
        return "a SLURM test cluster needs root (apt-get install slurm-wlm munge, then start munged/slurmctld/slurmd)"
    if missing_programs() and shutil.which("apt-get") is None:
        return f"SLURM is not installed ({', '.join(missing_programs())} missing) and apt-get is unavailable"
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace"):
        return f"{SLURM_CONF} exists and is not the test's: a real SLURM is configured here, the tests leave it alone"
    return None


def install() -> None:
    """apt-get install slurm-wlm munge, when any program is missing."""
    if not missing_programs():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    if missing := missing_programs():
        raise RuntimeError(f"installed {' '.join(APT_PACKAGES)} but still missing: {', '.join(missing)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> tuple[int, int]:
    """(CPUs, RealMemory in MB) as slurmd itself sees this machine."""
    line = subprocess.run([str(SBIN / "slurmd"), "-C"], capture_output=True, text=True, check=True, timeout=30).stdout
    cpus = int(re.search(r"\bCPUs=(\d+)", line)[1])
    memory = int(re.search(r"\bRealMemory=(\d+)", line)[1])
    return cpus, memory


def alive(pid: int, name: str) -> bool:
    """Is `pid` still the daemon we started (not a pid reused by another program)?"""
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


class SlurmCluster:
    """munged + slurmctld + slurmd for NodeName=localhost, partition `debug`; state under `root`."""

    partition = "debug"

    def __init__(self, root: Path):
        self.root = root
        self.pids: dict[str, int] = {}
        self.cpus, memory = node_hardware()
        self.memory_mb = int(memory * 0.8)  # RealMemory must not exceed what slurmd finds
        self.wrote_conf = False

    def path(self, name: str) -> Path:
        return self.root / name

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment without SLURM_* variables that could point elsewhere."""
        return {**{k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}, **extra}

    def run(self, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env())

    def start(self) -> None:
        self.root.chmod(0o700)
        self._start_munge()
        self._write_conf()
        self._start_daemon("slurmctld", [str(SBIN / "slurmctld")])
        self._start_daemon("slurmd", [str(SBIN / "slurmd"), "-N", "localhost"])
        self._wait_until_idle(timeout=60)

    def _start_munge(self) -> None:
        munge = self.path("munge")
        munge.mkdir(mode=0o700)
        key = munge / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(1024))
        self.munge_socket = munge / "munge.socket"
        self._start_daemon(
            "munged",
            [
                str(SBIN / "munged"),
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],  # fmt: skip
            pid_file=munge / "munged.pid",
        )

    def _write_conf(self) -> None:
        for name in ("state", "spool", "log"):
            self.path(name).mkdir()
        conf = f"""{MARKER}
ClusterName=nanolabtest
SlurmctldHost=localhost
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={self.path("state")}
SlurmdSpoolDir={self.path("spool")}
SlurmctldPidFile={self.path("slurmctld.pid")}
SlurmdPidFile={self.path("slurmd.pid")}
SlurmctldLogFile={self.path("log/slurmctld.log")}
SlurmdLogFile={self.path("log/slurmd.log")}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName=localhost CPUs={self.cpus} RealMemory={self.memory_mb} State=UNKNOWN
PartitionName={self.partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(conf)
        self.wrote_conf = True

    def _start_daemon(self, name: str, command: list[str], pid_file: Path | None = None) -> None:
        """Start a daemon that forks into the background; remember its pid from its pid file."""
        pid_file = pid_file or self.path(f"{name}.pid")
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=self.env())
        if result.returncode != 0:
            raise RuntimeError(f"{name} did not start:\n{result.stdout}{result.stderr}{self.log_tails()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = pid_file.read_text().strip() if pid_file.exists() else ""
            if text.isdigit() and alive(int(text), name):
                self.pids[name] = int(text)
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} wrote no pid file {pid_file}{self.log_tails()}")

    def _wait_until_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run("sinfo", "--noheader", "--Node", "--format=%T").stdout.strip()
            if state.rstrip("*") == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node is {state!r}, not idle, after {timeout:.0f} s{self.log_tails()}")

    def log_tails(self) -> str:
        tails = []
        for log in (self.path("munge/munged.log"), self.path("log/slurmctld.log"), self.path("log/slurmd.log")):
            if log.exists():
                tails.append(f"\n--- {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "".join(tails)

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (finished jobs stay known for MinJobAge=600 s)."""
        out = self.run("scontrol", "--oneliner", "show", "job", job_id).stdout
        return dict(field.split("=", 1) for field in out.split() if "=" in field)

    def stop(self) -> None:
        """Cancel leftover jobs of this cluster, then SIGTERM each daemon by pid (SIGKILL after 15 s)."""
        if "slurmctld" in self.pids:
            try:
                if ids := self.run("squeue", "--noheader", "--format=%i").stdout.split():
                    self.run("scancel", *ids)
                    time.sleep(2)
            except subprocess.TimeoutExpired:
                pass  # a controller that does not answer is stopped below all the same
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.pop(name, None)
            if pid is None or not alive(pid, name):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while alive(pid, name) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid, name):
                os.kill(pid, signal.SIGKILL)
        if self.wrote_conf and SLURM_CONF.exists() and MARKER in SLURM_CONF.read_text(errors="replace"):
            SLURM_CONF.unlink()
        self.wrote_conf = False


@pytest.fixture(scope="module")
def slurm_cluster(request, tmp_path_factory) -> SlurmCluster:
    if reason := unavailable_reason():
        pytest.skip(reason)
    install()
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    request.addfinalizer(cluster.stop)
    cluster.start()
    return cluster
