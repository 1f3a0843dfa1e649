"""Randomly damaged copies of good PyMeasure-written files (seeded) beside the good ones: the real
workflow exits 0, every raw file has one manifest row, every good file is staged, and every day and
month with IV runs has all its analysis tables, figures and runs tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from nanolab.analysis import KINDS
from nanolab.lab_analysis_job import LAB_KINDS
from nanolab.synthetic import iv_voltages
from pymeasure_raw import write_iv_with_pymeasure
from raw_damage import KINDS as DAMAGE_KINDS
from raw_damage import damage
from workflow_runner import Workdir

SAMPLES = Path(__file__).parent / "data" / "samples"  # IVg, It and LaserCalibration files as the lab's PCs wrote them
DAYS = {"2025-09-11": 1757602800.0, "2025-09-12": 1757689200.0}  # noon in Santiago
SEED = 36  # its damage held a Chip number beyond int64 and a 1.7e308 current: both failed a job before
DAMAGED = 36


def good_tree(raw: Path) -> list[Path]:
    """Per day, five IV runs on two chips (PyMeasure's writer) and, on the samples' days, the samples."""
    good = []
    for day, noon in DAYS.items():
        for k in range(5):
            path = raw / day / f"IV{day}_{k + 1}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            vmax = 1.0 if k < 3 else 2.0
            good.append(write_iv_with_pymeasure(path, iv_voltages(vmax, 0.05), noon + 600 * k, chip_number=67 + k % 2, vsd_start=vmax))
    for sample in sorted(SAMPLES.glob("*.csv")):
        day = next(day for day in DAYS if day in sample.name)
        good.append(Path(shutil.copyfile(sample, raw / day / sample.name)))
    return good


def test_random_damage_affects_only_the_damaged_file(tmp_path):
    raw = tmp_path / "raw"
    good = good_tree(raw)
    rng = np.random.default_rng(SEED)
    applied: dict[str, list[str]] = {}
    for n in range(DAMAGED):
        source = good[int(rng.integers(len(good)))]
        content, kinds = damage(source.read_bytes(), rng)
        target = source.with_name(f"damaged_{n:02d}_{source.name}")
        target.write_bytes(content)
        applied[target.relative_to(raw).as_posix()] = kinds
    assert {kind for kinds in applied.values() for kind in kinds} == set(DAMAGE_KINDS)  # every kind, in one run
    wd = Workdir(tmp_path / "work", raw)
    wd.path.mkdir()
    wd.write_config(figures=True)

    wd.snakemake()  # raises with snakemake's output unless it exits 0

    manifest = {row["source_file"]: row for row in pq.read_table(wd.results / "02_stage/_manifest/manifest.parquet").to_pylist()}
    raw_files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*.csv"))
    assert sorted(manifest) == raw_files and len(raw_files) == len(good) + DAMAGED  # one row per raw file
    for path in good:
        row = manifest[path.relative_to(raw).as_posix()]
        assert (row["status"], row["null_cells"], row["skipped_rows"], row["invalid_parameters"]) == ("ok", 0, 0, []), row
    for source, kinds in applied.items():
        row = manifest[source]
        assert row["status"] == "ok" or (row["status"] == "reject" and row["reason"]), (source, kinds, row)
    iv_days = sorted({row["date"] for row in manifest.values() if row["status"] == "ok" and row["proc"] == "IV"})
    assert set(DAYS) <= set(iv_days)
    for day in iv_days:
        month = day[:7]
        for kind in KINDS:
            assert (wd.results / "04_analysis" / kind / f"date={day}" / "part-000.parquet").is_file(), (kind, day)
        assert (wd.results / "04_report/iv_days" / f"month={month}" / f"date={day}.png").stat().st_size > 10_000, day
        assert (wd.results / "04_report/iv_day_runs" / f"month={month}" / f"date={day}.csv").is_file(), day
        assert (wd.results / "04_report/iv_fits" / f"month={month}.csv").is_file(), month
        for kind in LAB_KINDS:  # the lab analysis and its figures too: damage stays in its file
            assert (wd.results / "04_analysis" / kind / f"date={day}" / "part-000.parquet").is_file(), (kind, day)
        assert (wd.results / "04_report/lab_days" / f"date={day}.png").stat().st_size > 10_000, day
    assert len(list((wd.results / "04_report/lab_chips").glob("chip=*.png"))) >= 2  # the two good chips at least
    assert wd.planned_jobs() == {}  # and a second run has nothing to do


def test_a_start_time_at_the_calendar_edge_leaves_its_month_figures_whole(tmp_path):
    """Seeded damage found it (seed 219): a header `Start time` of year 1 or 9999 was staged as the run's start,
    and the month's figure job failed converting it to the lab's timezone for the runs table."""
    raw = tmp_path / "raw"
    good = good_tree(raw)
    source = next(path for path in good if path.name == "IV2025-09-11_1.csv")
    text = source.read_text()
    start = next(line for line in text.splitlines() if "Start time:" in line)
    for n, edge in enumerate(("-62135596800", "253402300799")):
        (source.parent / f"edge_{n}.csv").write_text(text.replace(start, start.split(":")[0] + f": {edge}"))
    wd = Workdir(tmp_path / "work", raw)
    wd.path.mkdir()
    wd.write_config(figures=True)

    wd.snakemake()  # raises with snakemake's output unless it exits 0

    runs = (wd.results / "04_report/iv_day_runs/month=2025-09/date=2025-09-11.csv").read_text().splitlines()
    edges = [line for line in runs if "edge_" in line]
    assert len(edges) == 2 and len(runs) == 1 + 5 + 2  # label row, the day's five good runs and the two
    assert (wd.results / "04_report/iv_days/month=2025-09/date=2025-09-11.png").stat().st_size > 10_000
    assert wd.planned_jobs() == {}
