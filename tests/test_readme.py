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


def header_value(path: Path, name: str) -> str | None:
    """A header parameter's text as the raw file has it (`#\tLaser voltage: 2.5 V` -> "2.5 V")."""
    for line in path.read_text().splitlines():
        if line.startswith(f"#\t{name}: "):
            return line.split(": ", 1)[1]
    return None


def test_segments_come_with_their_run_columns_and_filter_on_them(built):
    """The README's query: dark runs' forward segments, with run columns the segment files do not hold."""
    raw = sorted(built.raw_root.rglob("*.csv"))
    lit = {p.relative_to(built.raw_root).as_posix(): float(header_value(p, "Laser voltage").split()[0]) != 0 for p in raw}
    chips = {p.relative_to(built.raw_root).as_posix(): header_value(p, "Chip number") for p in raw}
    assert sorted(lit.values()) == [False, False, True]  # the tree has both kinds
    fwd = load_segments(built.results, segment_type="forward_positive", with_light=False)
    assert set(fwd["source_file"]) == {name for name, light in lit.items() if not light}
    assert set(fwd["with_light"]) == {False} and set(fwd["segment_type"]) == {"forward_positive"}
    for name, rows in fwd.groupby("source_file"):
        assert rows["chip_number"].isna().all() if chips[name] is None else set(rows["chip_number"]) == {int(chips[name])}
        assert rows["vsd_V"].min() == 0.0 and rows["vsd_V"].max() == pytest.approx(1.0)  # a 0 -> 1 V forward sweep
        assert rows["segment_v_end"].unique().tolist() == pytest.approx([1.0]) and set(rows["segment_direction"]) == {"increasing"}
    every = load_segments(built.results, columns=["source_file", "with_light", "vsd_V"])
    assert dict(zip(every["source_file"], every["with_light"])) == lit and list(every.columns) == ["source_file", "with_light", "vsd_V"]
