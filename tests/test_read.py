"""load_runs / load_segments / load_analysis on small Hive trees written here with pyarrow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nanolab import iv_segments
from nanolab.analysis import AnalysisSettings, analyse_day
from nanolab.read import load_analysis, load_runs, load_segments
from nanolab.stage import MANIFEST_SCHEMA as STAGE_MANIFEST_SCHEMA

CORRUPT = b"PAR1 this is not a parquet file PAR1"


def write(path: Path, table: pa.Table | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(table, bytes):
        path.write_bytes(table)
    else:
        pq.write_table(table, path)


def run_table(v: list[float], chip_number: int | None = 67, with_chip: bool = True) -> pa.Table:
    columns = {
        "vsd_V": pa.array(v, pa.float64()),
        "i_A": pa.array([x * 1e-7 for x in v], pa.float64()),
        "plate_t_degC": pa.array([25.0] * len(v)),
        "chip_group": pa.array(["Alisson"] * len(v)),
    }
    if with_chip:
        columns["chip_number"] = pa.array([chip_number] * len(v), pa.int64())
    return pa.table(columns)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Two good IV runs on 2025-09-11 (one without a chip_number column), corrupt files everywhere else."""
    stage = tmp_path / "02_stage" / "raw_measurements"
    write(stage / "proc=IV/date=2025-09-11/run_id=a/part-000.parquet", run_table([0.0, 0.5, 1.0]))
    write(stage / "proc=IV/date=2025-09-11/run_id=b/part-000.parquet", run_table([0.0, -0.5], with_chip=False))
    write(stage / "proc=IV/date=2025-09-12/run_id=c/part-000.parquet", CORRUPT)
    write(stage / "proc=It/date=2025-09-11/run_id=d/part-000.parquet", CORRUPT)

    # segment files as the workflow writes them: data and segment columns; the run columns are the stage manifest's
    segments = tmp_path / "03_intermediate" / "iv_segments" / "proc=IV"
    for run, segment, kind, v in (
        ("a", 0, "forward_positive", [0.0, 1.0]),
        ("a", 1, "return_positive", [0.5]),
        ("b", 0, "forward_negative", [0.0, -1.0]),
    ):
        t = run_table(v).select(["vsd_V", "i_A", "plate_t_degC"])
        t = t.append_column("segment_id", pa.array([segment] * len(v), pa.int64())).append_column("segment_type", pa.array([kind] * len(v)))
        write(segments / f"date=2025-09-11/run_id={run}/segment={segment}/part-000.parquet", t)
    write(segments / "date=2025-09-12/run_id=c/segment=0/part-000.parquet", CORRUPT)
    runs = [
        {
            "run_id": "a",
            "proc": "IV",
            "status": "ok",
            "date": "2025-09-11",
            "source_file": "a.csv",
            "chip_group": "Alisson",
            "chip_number": 67,
            "with_light": True,
        },
        {"run_id": "b", "proc": "IV", "status": "ok", "date": "2025-09-11", "source_file": "b.csv", "chip_group": "Alisson", "with_light": False},
        {"run_id": "c", "proc": "IV", "status": "ok", "date": "2025-09-12", "source_file": "c.csv", "chip_number": 67, "with_light": True},
        {"run_id": "d", "proc": "It", "status": "ok", "date": "2025-09-11", "source_file": "d.csv", "chip_number": 67, "with_light": False},
    ]
    write(tmp_path / "02_stage/_manifest/manifest.parquet", pa.Table.from_pylist(runs, schema=STAGE_MANIFEST_SCHEMA))
    facts = [
        {
            "run_id": "a",
            "status": "ok",
            "segment_v_start": [0.0, 0.5],
            "segment_v_end": [1.0, 0.5],
            "segment_directions": ["increasing", "decreasing"],
        },
        {"run_id": "b", "status": "ok", "segment_v_start": [0.0], "segment_v_end": [-1.0], "segment_directions": ["decreasing"]},
    ]
    write(tmp_path / "03_intermediate/_manifest/manifest.parquet", pa.Table.from_pylist(facts, schema=iv_segments.MANIFEST_SCHEMA))

    analysis = tmp_path / "04_analysis"
    rows = [("a", "Alisson", 67, "forward_positive", v, v * 1e-7) for v in (0.0, 0.5, 1.0)]
    rows += [("a", "Alisson", 67, "return_positive", v, v * 2e-7) for v in (0.75, 0.5, 0.25)]
    rows += [("b", "Alisson", 68, "forward_positive", v, v * 1e-7) for v in (0.0, 0.5, 1.0)]
    rows += [("b", "Alisson", 68, "return_positive", v, v * 3e-7) for v in (0.75, 0.5, 0.25)]
    names = ["run_id", "chip_group", "chip_number", "segment_type", "vsd_V", "i_A"]
    day = analyse_day(pa.Table.from_pylist([dict(zip(names, r)) for r in rows]), AnalysisSettings(poly_orders=(1,)))
    for kind, t in day.items():
        write(analysis / kind / "date=2025-09-11/part-000.parquet", t)
        write(analysis / kind / "date=2025-09-12/part-000.parquet", CORRUPT)
    return tmp_path


def test_corrupt_files_break_a_read_that_opens_them(results: Path) -> None:
    # The pruning tests below mean something only if opening the corrupt partitions fails.
    with pytest.raises(pa.ArrowInvalid):
        load_runs(results, proc="IV", date="2025-09-12")
    with pytest.raises(pa.ArrowInvalid):
        load_segments(results, date="2025-09-12")
    with pytest.raises(pa.ArrowInvalid):
        load_analysis(results, "iv_fits", date="2025-09-12")


def test_runs_open_only_the_partitions_asked_for(results: Path) -> None:
    runs = load_runs(results, proc="IV", date="2025-09-11")
    assert sorted(runs["run_id"].unique()) == ["a", "b"]
    assert len(runs) == 5 and set(runs["date"]) == {"2025-09-11"} and set(runs["proc"]) == {"IV"}
    assert load_runs(results, proc="IV", date=["2025-09-11"], run_id="b")["vsd_V"].tolist() == [0.0, -0.5]


def test_chip_number_is_a_nullable_integer_when_a_file_lacks_it(results: Path) -> None:
    runs = load_runs(results, proc="IV", date="2025-09-11").sort_values(["run_id", "vsd_V"])
    assert runs["chip_number"].dtype == pd.Int64Dtype()
    assert runs["chip_number"].tolist()[:3] == [67, 67, 67] and runs["chip_number"].isna().tolist() == [False] * 3 + [True] * 2
    assert load_runs(results, proc="IV", date="2025-09-11", chip_number=67)["run_id"].unique().tolist() == ["a"]
    segments = load_segments(results, date="2025-09-11")
    assert segments["chip_number"].dtype == pd.Int64Dtype() and segments["segment_id"].dtype == pd.Int64Dtype()
    assert segments["chip_number"].isna().sum() == 2  # run b's forward_negative rows


def test_segments_carry_their_run_columns_and_voltage_range_from_the_manifests(results: Path) -> None:
    segments = load_segments(results, date="2025-09-11").sort_values(["run_id", "segment", "vsd_V"])
    assert segments["source_file"].tolist() == ["a.csv"] * 3 + ["b.csv"] * 2
    assert segments["with_light"].tolist() == [True] * 3 + [False] * 2
    assert segments["segment_v_end"].tolist() == [1.0, 1.0, 0.5, -1.0, -1.0]
    assert segments["segment_direction"].tolist() == ["increasing"] * 2 + ["decreasing"] * 3
    assert list(segments.columns[:3]) == ["vsd_V", "i_A", "plate_t_degC"] and list(segments.columns[-4:]) == ["proc", "date", "run_id", "segment"]


def test_a_filter_on_a_run_column_opens_only_that_runs_folders(results: Path) -> None:
    # run c's segment file is corrupt and chip 67's: opened only when the stage manifest lists it for the filter
    dark = load_segments(results, with_light=False, columns=["vsd_V", "source_file", "chip_number"])
    assert list(dark.columns) == ["vsd_V", "source_file", "chip_number"]
    assert dark["source_file"].tolist() == ["b.csv", "b.csv"] and dark["chip_number"].isna().all()
    lit = load_segments(results, with_light=[True], chip_number=67, source_file="a.csv", segment_type="forward_positive", labels="lab")
    assert lit["Vsd (V)"].tolist() == [0.0, 1.0] and set(lit["run_id"]) == {"a"}
    assert load_segments(results, date="2025-09-11", chip_number=68).empty
    assert load_segments(results, segment_direction="decreasing", date="2025-09-11")["vsd_V"].tolist() == [0.5, 0.0, -1.0]
    with pytest.raises(pa.ArrowInvalid):
        load_segments(results, chip_number=67)  # runs a and c


def test_lab_labels_rename_the_data_columns_only(results: Path) -> None:
    canonical = load_runs(results, proc="IV", date="2025-09-11")
    lab = load_runs(results, proc="IV", date="2025-09-11", labels="lab")
    assert {"vsd_V", "i_A", "plate_t_degC"} <= set(canonical.columns)
    assert {"Vsd (V)", "I (A)", "Plate T (degC)", "chip_number", "chip_group", "run_id"} <= set(lab.columns)
    assert not {"vsd_V", "i_A", "plate_t_degC"} & set(lab.columns)
    assert lab["Vsd (V)"].tolist() == canonical["vsd_V"].tolist()
    segments = load_segments(results, date="2025-09-11", columns=["vsd_V", "i_A", "segment_type"], labels="lab", segment_type="return_positive")
    assert list(segments.columns) == ["Vsd (V)", "I (A)", "segment_type"] and segments["Vsd (V)"].tolist() == [0.5]
    with pytest.raises(ValueError):
        load_runs(results, proc="IV", date="2025-09-11", labels="french")


def test_load_analysis_prunes_dates_and_keeps_types(results: Path) -> None:
    fits = load_analysis(results, "iv_fits", date="2025-09-11")
    assert fits["chip_number"].tolist() == [67, 68] and fits["chip_number"].dtype == pd.Int64Dtype()
    assert fits["n_runs"].dtype == pd.Int64Dtype() and fits["date"].tolist() == ["2025-09-11"] * 2
    assert fits["slope_S"].tolist() == pytest.approx([2e-7, 3e-7])
    one = load_analysis(results, "hysteresis_peaks", date=["2025-09-11"], chip_number=68, method="raw")
    assert len(one) == 1 and one["chip_number"].iloc[0] == 68
    stats = load_analysis(results, "iv_stats", date="2025-09-11", columns=["vsd_V", "branch"])
    assert list(stats.columns) == ["vsd_V", "branch"] and len(stats) == 2 * (3 + 3)


def test_load_analysis_without_files_or_with_an_unknown_kind(results: Path) -> None:
    assert load_analysis(results, "hysteresis", date="2030-01-01").empty
    with pytest.raises(ValueError):
        load_analysis(results, "peaks")
