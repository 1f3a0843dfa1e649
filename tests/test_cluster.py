"""Cluster execution: the profiles, the conda environments, and the workflow on a real SLURM.

The SLURM test runs `snakemake --profile profiles/slurm` against a single-node SLURM that
tests/slurm_cluster.py installs and starts (root only), and checks that the jobs went through sbatch
and that the outputs equal a local run of the same raw tree.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from nanolab.synthetic import write_tree
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401 - the fixture
from workflow_runner import REPO, Workdir

PROFILES = REPO / "profiles"
EXECUTORS = {"default": None, "slurm": "slurm", "cluster-generic": "cluster-generic"}
TOOLS = Path(sys.executable).parent
# pip and conda name a few packages differently (conda's matplotlib-base has no Qt/GUI backends).
CONDA_TO_PIP = {"matplotlib-base": "matplotlib"}
# Not a job's software: snakemake runs the jobs, the conda environments hold what they execute.
NOT_IN_JOB_ENVS = {"snakemake", "pygments"}  # the snakemake process itself (pygments: its --report), not the jobs


def profile(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text())


def pins(requirements: Path) -> dict[str, str]:
    """`name==version` lines of a pip requirements file (names lower-case without extras, `-r` lines not followed)."""
    found = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            found[name.split("[")[0].strip().lower()] = version.strip()
    return found


# --- profiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXECUTORS)
def test_profile_parses_names_its_executor_and_uses_only_known_options(name):
    from snakemake.cli import get_argument_parser

    settings = profile(name)
    assert settings.get("executor") == EXECUTORS[name]
    if name != "default":
        plugin = importlib.import_module(f"snakemake_executor_plugin_{name.replace('-', '_')}")
        assert plugin.Executor
        pinned = pins(REPO / "requirements-cluster.txt")[f"snakemake-executor-plugin-{name}"]
        assert importlib.metadata.version(f"snakemake-executor-plugin-{name}") == pinned
        assert settings["jobs"] > 1 and {"mem_mb", "runtime"} <= set(settings["default-resources"])
        assert set(settings["groups"]) == {"stage_batch"}  # month jobs (analysis, figures) span many days: not grouped
    known = {option for action in get_argument_parser()._actions for option in action.option_strings}
    assert {f"--{key}" for key in settings} <= known  # a misspelt key would be silently ignored
    rules = set(re.findall(r"^rule (\w+):", "".join(p.read_text() for p in (REPO / "workflow/rules").rglob("*.smk")), re.M))
    for key in ("set-threads", "groups"):
        assert set(settings.get(key, {})) <= rules, key


def test_default_profile_keeps_local_runs_sensible():
    settings = profile("default")
    assert settings["rerun-incomplete"] and settings["keep-going"] and settings["retries"] >= 1
    rules = "".join(p.read_text() for p in (REPO / "workflow/rules").rglob("*.smk"))
    assert len(re.findall(r"^rule \w+:", rules, re.M)) == rules.count("threads: 1") == 7  # single-threaded jobs
    assert "groups" not in settings  # groups would also reshape dry runs; they belong to the cluster profiles


def test_slurm_profile_asks_slurm_for_partition_memory_and_runtime():
    settings = profile("slurm")
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(settings["default-resources"])
    assert settings["slurm-status-command"] in {"squeue", "sacct"}


def test_cluster_generic_profile_submits_with_resources_and_has_status_and_cancel():
    settings = profile("cluster-generic")
    submit = settings["cluster-generic-submit-cmd"]
    assert "qsub" in submit and "{threads}" in submit and "{resources.mem_mb}" in submit and "{resources.runtime}" in submit
    assert settings["cluster-generic-cancel-cmd"] == "qdel"
    status = PROFILES / "cluster-generic" / settings["cluster-generic-status-cmd"]
    assert status.is_file() and os.access(status, os.X_OK)  # snakemake makes the name absolute in the profile dir


def fake_scheduler(tmp_path: Path, **commands: str) -> dict[str, str]:
    """Shell scripts named after scheduler commands, first on PATH (then this interpreter's tools)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in commands.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": os.pathsep.join([str(bin_dir), str(TOOLS), os.environ["PATH"]])}


def status(script: str, env: dict[str, str], job_id: str = "42.server") -> str:
    result = subprocess.run([str(PROFILES / "cluster-generic" / script), job_id], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("qstat", "expected"),
    [
        ('printf "Job Id: 42.server\\n    job_state = R\\n"', "running"),
        ('printf "Job Id: 42.server\\n    job_state = Q\\n"', "running"),
        ('printf "Job Id: 42.server\\n    job_state = F\\n    Exit_status = 0\\n"', "success"),
        ('printf "Job Id: 42.server\\n    job_state = F\\n    Exit_status = 271\\n"', "failed"),
        ('echo "<Data><Job><job_state>C</job_state><exit_status>0</exit_status></Job></Data>"', "success"),  # Torque XML
        ('echo "qstat: Unknown Job Id 42.server" >&2; exit 153', "failed"),
        ('echo "cannot connect to server" >&2; exit 1', "running"),
    ],
)
def test_pbs_status_script(tmp_path, qstat, expected):
    assert status("status-pbs.sh", fake_scheduler(tmp_path, qstat=qstat)) == f"{expected}\n"


@pytest.mark.parametrize(
    ("qstat", "qacct", "expected"),
    [
        ("exit 0", "exit 1", "running"),
        ("exit 1", 'printf "jobnumber    42\\nfailed       0\\nexit_status  0\\n"', "success"),
        ("exit 1", 'printf "jobnumber    42\\nfailed       0\\nexit_status  1\\n"', "failed"),
        ("exit 1", 'printf "jobnumber    42\\nfailed       37  : qmaster enforced h_rt limit\\nexit_status  137\\n"', "failed"),
        ("exit 1", "exit 1", "running"),  # finished, not yet in the accounting file
    ],
)
def test_sge_status_script(tmp_path, qstat, qacct, expected):
    assert status("status-sge.sh", fake_scheduler(tmp_path, qstat=qstat, qacct=qacct), "42") == f"{expected}\n"


@pytest.fixture(scope="module")
def twelve_days(tmp_path_factory) -> Workdir:
    tmp_path = tmp_path_factory.mktemp("twelve_days")
    wd = Workdir(tmp_path / "work", tmp_path / "raw")
    wd.path.mkdir()
    write_tree(wd.raw_root, start_date="2025-09-01", days=12, iv_per_day=1, ivg_per_day=1, it_per_day=0, seed=2)
    wd.write_config()
    return wd


@pytest.mark.parametrize("name", ["slurm", "cluster-generic"])
def test_cluster_profiles_submit_one_job_per_five_days(twelve_days, name):
    """12 days: 24 per-day jobs become 3 group jobs (5 + 5 + 2 days), plus the manifests job."""
    result = twelve_days.snakemake("--profile", str(PROFILES / name), "--dry-run")
    output = result.stdout + result.stderr
    assert output.count("Group job day ") == math.ceil(12 / profile(name)["group-components"]["day"]) == 3
    assert re.search(r"^stage_batch\s+12$", output, re.M) and re.search(r"^manifests\s+1$", output, re.M)


# --- conda environments ------------------------------------------------------------------------


def rule_envs() -> dict[str, Path]:
    """{rule: its conda env file} for every rule that runs something (`shell:`, `run:`, `script:`…)."""
    envs = {}
    for smk in sorted((REPO / "workflow/rules").rglob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block)[1]
            if not re.search(r"^\s+(shell|run|script|notebook|wrapper):", block, re.M):
                continue
            conda = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", block, re.M)
            assert conda, f"rule {name} ({smk.name}) has no conda: directive"
            envs[name] = (smk.parent / conda[1]).resolve()
    return envs


def test_every_rule_points_to_a_conda_env_that_pins_the_pip_requirements():
    envs = rule_envs()
    assert {"stage_batch", "analyse_iv", "draw_iv", "manifests"} <= set(envs)
    requirements = {k: v for k, v in pins(REPO / "requirements.txt").items() if k not in NOT_IN_JOB_ENVS}
    for rule, env_file in envs.items():
        assert env_file.is_file() and env_file.parent == REPO / "envs", (rule, env_file)
        env = yaml.safe_load(env_file.read_text())
        assert env["channels"][0] == "conda-forge", env_file
        conda_pins, pip_lines = {}, []
        for dep in env["dependencies"]:
            if isinstance(dep, dict):
                pip_lines += dep["pip"]
                continue
            name, _, version = dep.partition("=")
            conda_pins[CONDA_TO_PIP.get(name, name)] = version
        assert re.fullmatch(r"\d+\.\d+", conda_pins.pop("python")) and conda_pins.pop("pip") == ""
        assert conda_pins == requirements, f"{env_file.name} and requirements.txt pin different versions"
        # the nanolab package itself, installed from this repository (relative to the env file)
        assert [line for line in pip_lines if line.startswith("-e")] == ["-e .."]
        assert (env_file.parent / ".." / "pyproject.toml").is_file()


def test_every_env_file_is_used_by_a_rule():
    assert set(REPO.glob("envs/*.yaml")) <= set(rule_envs().values())


# --- the workflow on a real SLURM ---------------------------------------------------------------


def relative_parts(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("part-*.parquet")}


def run_snakemake(wd: Workdir, env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """The real snakemake on `wd`, as `Workdir.snakemake` runs it, but with a time limit."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(wd.path), *args]  # fmt: skip
    process = subprocess.Popen(command, cwd=wd.path, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 15)  # snakemake cancels its SLURM jobs on SIGTERM
        output, _ = process.communicate(timeout=60)
        raise AssertionError(f"snakemake {' '.join(args)} did not finish in {timeout} s:\n{output}") from None
    assert process.returncode == 0, f"snakemake {' '.join(args)} failed:\n{output}"
    return output


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Workdir:
    """A small raw tree (2 days) and a local run of it: the reference for the cluster runs."""
    tmp_path = tmp_path_factory.mktemp("local_run")
    write_tree(tmp_path / "raw", start_date="2025-09-01", days=2, iv_per_day=3, ivg_per_day=1, it_per_day=1, seed=1)
    local = new_workdir(tmp_path / "local", tmp_path / "raw")
    run_snakemake(local, {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ['PATH']}"}, "--cores", "2")
    return local


def new_workdir(path: Path, raw: Path) -> Workdir:
    wd = Workdir(path, raw)
    wd.path.mkdir()
    wd.write_config()
    return wd


def assert_same_results(ours: Workdir, reference: Workdir) -> None:
    """Manifests, every Parquet file and the report tables data-equal; the same figures."""
    for manifest in ("02_stage/_manifest/manifest.parquet", "03_intermediate/_manifest/manifest.parquet"):
        table = pq.read_table(ours.results / manifest)
        assert table.num_rows > 0 and table.equals(pq.read_table(reference.results / manifest)), manifest
    for dataset in ("02_stage/raw_measurements", "03_intermediate/iv_segments"):
        files, expected = relative_parts(ours.results / dataset), relative_parts(reference.results / dataset)
        assert files.keys() == expected.keys() and files, dataset
        for name, path in files.items():
            assert pq.read_table(path).equals(pq.read_table(expected[name])), name
    for table in ("summary.txt", "04_report/staging_summary.csv", "04_report/segmentation_qc.csv", "04_report/segment_points.csv"):
        assert (ours.results / table).read_text() == (reference.results / table).read_text(), table
    figures = lambda wd: sorted(p.relative_to(wd.results).as_posix() for p in wd.results.glob("04_report/**/*.png"))  # noqa: E731
    assert figures(ours) == figures(reference) and figures(reference)


def test_workflow_on_slurm_goes_through_sbatch_and_equals_a_local_run(slurm_cluster: SlurmCluster, local_run, tmp_path):  # noqa: F811
    cluster = new_workdir(tmp_path / "cluster", local_run.raw_root)
    # Jobs inherit the environment of the snakemake that submits them (sbatch --export=ALL).
    env = slurm_cluster.env(PATH=f"{TOOLS}{os.pathsep}{os.environ['PATH']}")
    # The profile as shipped; the test only keeps SLURM's logs and asks SLURM sooner for job states.
    output = run_snakemake(
        cluster, env, "--profile", str(PROFILES / "slurm"),
        "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "2",
    )  # fmt: skip

    # 1. Every cluster job went through sbatch: SLURM gave it a job id, ran it to completion, and its
    #    output (the inner snakemake that ran the rules inside the allocation) is the SLURM log.
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", output)
    assert len(submitted) == 6, (
        output
    )  # one group job for both days, the month's analysis and figures, the manifests, the lab analysis and its figures
    rules_run_by_slurm = []
    for job_id, log in submitted:
        job = slurm_cluster.job(job_id)
        assert job["JobState"] == "COMPLETED" and job["WorkDir"] == str(cluster.path), job
        assert job["Partition"] == slurm_cluster.partition and job["NodeList"] == "localhost", job
        slurm_log = Path(log)
        assert slurm_log.is_file() and cluster.path / ".snakemake/slurm_logs" in slurm_log.parents, log
        rules_run_by_slurm += re.findall(r"^rule (\w+):", slurm_log.read_text(), re.M)
    assert sorted(rules_run_by_slurm) == sorted(["stage_batch"] * 2 + ["analyse_iv", "draw_iv", "manifests", "lab_analysis", "lab_figures"])
    # The group job runs its two jobs one after another (the plugin's way), and asks for just that:
    # 1 CPU and the sum of their runtimes, not a CPU per day side by side.
    group = slurm_cluster.job(next(job_id for job_id, log in submitted if "/group_day" in log))
    runtimes = re.findall(r"^\s+rule stage_batch:\n(?:.*\n)*?\s+resources: .*\bruntime=(\d+)", output, re.M)
    hours, minutes, _ = group["TimeLimit"].split(":")
    assert group["NumCPUs"] == "1" and len(runtimes) == 2 and 60 * int(hours) + int(minutes) == sum(map(int, runtimes))

    # 2. The same results as the local run.
    assert_same_results(cluster, local_run)


# A stand-in PBS for the cluster-generic profile: `qsub … script` runs the script in the background
# and prints a job id; `qstat -fx id` reports it running, then finished with its exit status.
FAKE_QSUB = r"""J=$FAKE_PBS_JOBS
printf '%s\n' "$*" >> "$J/qsub.calls"
for script; do :; done
n=$(( $(cat "$J/count" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$J/count"; id="$n.pbs"
: > "$J/$id.out"
(sh "$script" > "$J/$id.out" 2>&1; echo $? > "$J/$id.tmp"; mv "$J/$id.tmp" "$J/$id.rc") < /dev/null > /dev/null 2>&1 &
echo "$id"
"""
FAKE_QSTAT = r"""J=$FAKE_PBS_JOBS; id=$2
[ -e "$J/$id.out" ] || { echo "qstat: Unknown Job Id $id" >&2; exit 153; }
echo "Job Id: $id"
if [ -e "$J/$id.rc" ]; then printf '    job_state = F\n    Exit_status = %s\n' "$(cat "$J/$id.rc")"; else echo '    job_state = R'; fi
"""


def test_cluster_generic_profile_runs_the_workflow_through_qsub_and_its_status_script(local_run, tmp_path):
    """No PBS here: a stand-in `qsub` runs each job script in the background and `qstat -fx` reports
    it as PBS Pro would, so the profile's submit line, status-pbs.sh and the plugin work together."""
    jobs = tmp_path / "pbs_jobs"
    jobs.mkdir()
    env = fake_scheduler(tmp_path, qsub=FAKE_QSUB, qstat=FAKE_QSTAT, qdel="true")
    env["FAKE_PBS_JOBS"] = str(jobs)
    generic = new_workdir(tmp_path / "generic", local_run.raw_root)
    run_snakemake(generic, env, "--profile", str(PROFILES / "cluster-generic"), "--seconds-between-status-checks", "1")
    calls = (jobs / "qsub.calls").read_text().splitlines()
    assert len(calls) == 6, calls  # one job for both days, the month's analysis and figures, the manifests, the lab analysis and figures
    # two days' stage_batch jobs side by side: 2 CPUs, their memory added up, the longer runtime (5 minutes)
    assert "select=1:ncpus=2:mem=2000mb" in calls[0] and "walltime=5:00" in calls[0]
    assert sorted(p.read_text() for p in jobs.glob("*.rc")) == ["0\n"] * 6
    assert_same_results(generic, local_run)
