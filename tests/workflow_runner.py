"""Run the real `snakemake` on a temporary working directory, as a lab user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
JOB_STATS = re.compile(r"^Job stats:\n.*?\n-+\s+-+\n(?P<rows>.*?)\ntotal", re.S | re.M)


@dataclass
class Workdir:
    path: Path
    raw_root: Path

    def write_config(self, **overrides: object) -> None:
        config = yaml.safe_load((REPO / "config.yaml").read_text())
        config["raw_root"] = str(self.raw_root)
        for key, value in overrides.items():
            if isinstance(value, dict):
                config[key] = {**config.get(key, {}), **value}
            else:
                config[key] = value
        (self.path / "config.yaml").write_text(yaml.safe_dump(config))

    def snakemake(self, *args: str, check: bool = True, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """`snakemake --snakefile <repo>/Snakefile --directory <workdir> …` with this interpreter's tools on PATH,
        run through `prefix` (e.g. `setpriv …`) when given."""
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        command = [*prefix, sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                   "--directory", str(self.path), "--cores", "2", *args]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=self.path)
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def planned_jobs(self, *args: str) -> dict[str, int]:
        """What a run would execute now: {rule: job count}, {} when there is nothing to be done."""
        result = self.snakemake("--dry-run", *args)
        output = result.stdout + result.stderr
        if "Nothing to be done" in output:
            return {}
        match = JOB_STATS.search(output)
        assert match, output
        return {rule: int(count) for rule, count in (line.split() for line in match["rows"].splitlines())}

    @property
    def results(self) -> Path:
        return self.path / "results"


def downstream_of_batches(stage_batches: int) -> dict[str, int]:
    """The jobs a run plans when `stage_batches` batch jobs of one month rerun, figures on: all that follows them."""
    later = ("analyse_iv", "draw_iv", "lab_analysis", "lab_figures", "manifests", "landing_page", "all")
    return {"stage_batch": stage_batches, **dict.fromkeys(later, 1)}
