"""The README's Python examples run as written on results of a raw tree with mixed column sets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from nanolab.read import load_runs, load_segments
from nanolab.synthetic import iv_voltages, make_run, render_raw
from workflow_runner import REPO, Workdir

SNIPPET = re.compile(r"```python\n(.*?)```", re.S)
NOON_SEP_11 = 1757602800.0  # 2025-09-11 12:00 in Santiago


def readme_snippets() -> list[str]:
    return SNIPPET.findall((REPO / "README.md").read_text(encoding="utf-8"))


def write_mixed_tree(raw: Path) -> None:
    """IV runs of chip 67 on 2025-09-11, one without the temperature columns, one without a chip number."""
    rng = np.random.default_rng(3)
    for n, (light, drop_temperatures, drop_chip) in enumerate([(True, False, False), (False, True, False), (False, False, True)]):
        start = NOON_SEP_11 + 600 * n
        parameters, labels, data = make_run("IV", rng, start, chip_number=67, voltages=iv_voltages(1.0, 0.05), light=light)
        if drop_temperatures:
            labels, data = labels[:2], data[:, :2]
        if drop_chip:
            del parameters["Chip number"]
        path = raw / "2025-09-11" / f"IV2025-09-11_{n + 1}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_raw("IV", parameters, start, labels, data))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Workdir:
    tmp = tmp_path_factory.mktemp("readme")
    wd = Workdir(tmp / "work", tmp / "raw")
    wd.path.mkdir()
    write_mixed_tree(wd.raw_root)
    wd.write_config(figures=False)
    wd.snakemake()
    return wd


def test_the_readme_has_python_examples():
    assert len(readme_snippets()) >= 3


@pytest.mark.parametrize("index", range(len(readme_snippets())))
def test_readme_example_runs_as_written(built, index):
    snippet = readme_snippets()[index]
    result = subprocess.run([sys.executable, "-c", snippet], cwd=built.path, capture_output=True, text=True)
    assert result.returncode == 0, f"README example {index + 1} failed:\n{snippet}\n{result.stderr[-3000:]}"


def test_chip_number_is_a_nullable_integer_column(built):
    runs = load_runs(built.results, proc="IV")
    assert str(runs["chip_number"].dtype) == "Int64"
    assert runs["chip_number"].isna().any() and set(runs["chip_number"].dropna()) == {67}
    assert str(load_segments(built.results)["chip_number"].dtype) == "Int64"
