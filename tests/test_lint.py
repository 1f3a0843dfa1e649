"""The workflow passes Snakemake's linter and is snakefmt-formatted; no code uses process pools or sys.path."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = Path(sys.executable).parent
WORKFLOW_FILES = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow/rules").rglob("*.smk"))]


def test_snakemake_lint_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_snakefmt_formatted():
    result = subprocess.run([str(TOOLS / "snakefmt"), "--check", *WORKFLOW_FILES], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_process_pools_and_no_sys_path_edits():
    forbidden = re.compile(r"ProcessPoolExecutor|multiprocessing|concurrent\.futures|sys\.path\.(insert|append)|sys\.path\s*=")
    sources = [*REPO.glob("scripts/**/*.py"), *REPO.glob("workflow/**/*.smk"), REPO / "Snakefile", *REPO.glob("bench/*.py")]
    offenders = [str(p) for p in sources if forbidden.search(p.read_text())]
    assert offenders == []


def test_ruff_check_is_clean():
    result = subprocess.run([str(TOOLS / "ruff"), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_formatted():
    result = subprocess.run([str(TOOLS / "ruff"), "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_requirements_include_what_the_readme_commands_need():
    """`make run` installs requirements.txt only; the test venv adds pytest, which brings pygments, so a
    missing report dependency would pass every other test and fail `snakemake --report` for the lab."""
    requirements = (REPO / "requirements.txt").read_text()
    assert re.search(r"^snakemake\[reports\]==", requirements, re.M)
    assert re.search(r"^pygments==", requirements, re.M)


def test_the_pinned_snakemake_still_has_what_the_rate_limit_workaround_sets():
    """nanolab.snakehooks' `without_local_rate_limit` sets the scheduler's `job_rate_limiter` to None, which the
    scheduler then skips (no 1 s re-evaluation timers); a Snakemake that renamed it would silently keep them."""
    from snakemake.scheduling.job_scheduler import JobScheduler

    source = inspect.getsource(JobScheduler)
    assert "self.job_rate_limiter = (" in source
    assert "if self.job_rate_limiter is not None:\n" in source and "self._schedule_reevalutation(self.job_rate_limiter.timespan)" in source
