import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from nanolab.catalog import describe
from nanolab.stage import StageSettings, stage_file, stage_files

IV_TEXT = """#Procedure: <laser_setup.procedures.IV.IV>
#Parameters:
#\tBurn-in time: 60 s
#\tChip group name: Alisson
#\tChip number: 67
#\tInformation: None
#\tLaser toggle: True
#\tLaser voltage: 2.5 V
#\tLaser wavelength: 455 nm
#\tNPLC: 1
#\tOperator mood: calm
#\tProcedure version: 1.0.0
#\tSample: A
#\tVSD start: 1 V
#Metadata:
#\tStart time: 1757584800.0
#Data:
Vsd (V),I (A),Extra
0.0,1e-9,x
0.5,2e-9,y
1.0,bad,z
"""


def settings(raw_root: Path, out_root: Path, lab_schema) -> StageSettings:
    return StageSettings(raw_root, out_root, lab_schema, "America/Santiago")


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_staged_file_holds_typed_data_run_columns_and_parameters(tmp_path, lab_schema):
    raw = write(tmp_path / "raw/2025-09-11/IV2025-09-11_1.csv", IV_TEXT)
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok", row["reason"]
    assert row["output"] == str(tmp_path / f"out/raw_measurements/proc=IV/date=2025-09-11/run_id={row['run_id']}/part-000.parquet")
    assert (row["rows"], row["null_cells"], row["unmapped_columns"]) == (3, 1, ["Extra"])
    table = pq.read_table(row["output"])
    assert table["vsd_V"].type == pa.float64() and table["i_A"].to_pylist() == [1e-9, 2e-9, None]
    assert table["Extra"].to_pylist() == ["x", "y", "z"]
    assert not {"proc", "date", "run_id"} & set(table.column_names)  # partition keys live in the path
    dataset = ds.dataset(tmp_path / "out/raw_measurements", partitioning="hive").to_table()
    first = dataset.slice(0, 1).to_pylist()[0]
    assert (first["proc"], first["date"], first["run_id"]) == ("IV", "2025-09-11", row["run_id"])
    assert first["source_file"] == "2025-09-11/IV2025-09-11_1.csv"
    assert first["start_dt"].isoformat() == "2025-09-11T10:00:00+00:00" and first["date_origin"] == "meta"
    assert (first["with_light"], first["wavelength_nm"], first["laser_voltage_V"]) == (True, 455.0, 2.5)
    assert (first["chip_group"], first["chip_number"], first["sample"], first["procedure_version"]) == ("Alisson", 67, "A", "1.0.0")
    assert (first["burn_in_time_s"], first["nplc"], first["vsd_start_V"], first["information"]) == (60.0, 1, 1.0, None)
    assert first["Operator mood"] == "calm"  # unknown parameters are kept as text
    header = json.loads(table.schema.metadata[b"nanolab.raw_header"])
    assert header["parameters"]["Burn-in time"] == "60 s"


def test_run_id_survives_moving_the_raw_folder(tmp_path, lab_schema):
    raw = write(tmp_path / "a/raw/2025-09-11/IV_1.csv", IV_TEXT)
    first = stage_file(raw, settings(tmp_path / "a/raw", tmp_path / "out1", lab_schema))
    shutil.move(tmp_path / "a/raw", tmp_path / "b")
    second = stage_file(tmp_path / "b/2025-09-11/IV_1.csv", settings(tmp_path / "b", tmp_path / "out2", lab_schema))
    assert first["run_id"] == second["run_id"] and first["status"] == second["status"] == "ok"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x00\x01\x02\x03binary", "binary"),
        (b"Vsd (V),I (A)\n0,1\n", "no '#Data:' line"),
        (IV_TEXT.split("Vsd (V)")[0].encode(), "no data rows"),
        (IV_TEXT.replace("IV.IV>", "Mystery.Mystery>").encode(), "unknown procedure 'Mystery'"),
    ],
)
def test_broken_files_are_rejects_with_a_reason(tmp_path, lab_schema, content, reason):
    raw = write(tmp_path / "raw/2025-09-11/f.csv", content)
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "reject" and reason in row["reason"]
    assert not (tmp_path / "out").exists()


def test_batch_manifest_has_one_row_per_file_in_order(tmp_path, lab_schema):
    paths = [
        write(tmp_path / "raw/2025-09-11/a.csv", IV_TEXT),
        write(tmp_path / "raw/2025-09-11/b.csv", b""),
        write(tmp_path / "raw/2025-09-11/c d'$(x).csv", IV_TEXT.replace("1757584800.0", "1757671200.0")),
    ]
    manifest = stage_files(paths, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert manifest["source_file"].to_pylist() == ["2025-09-11/a.csv", "2025-09-11/b.csv", "2025-09-11/c d'$(x).csv"]
    assert manifest["status"].to_pylist() == ["ok", "reject", "ok"]
    assert manifest["date"].to_pylist() == ["2025-09-11", "2025-09-11", "2025-09-12"]


def test_latin1_label_and_crlf(tmp_path, lab_schema):
    text = IV_TEXT.replace("Vsd (V),I (A),Extra", "Vsd (V),I (A),Plate T (°C)").replace("\n", "\r\n")
    raw = write(tmp_path / "raw/2025-09-11/old.csv", text.encode("latin-1", "replace"))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok"
    assert "plate_t_degC" in pq.read_table(row["output"]).column_names


def test_resource_forks_are_skipped_and_outside_symlinks_rejected(tmp_path, lab_schema):
    fork = write(tmp_path / "raw/2025-09-11/._IV.csv", b"\x00\x05\x16\x07Mac OS X")
    outside = write(tmp_path / "outside/IV.csv", IV_TEXT)
    (tmp_path / "raw/2025-09-11/link.csv").symlink_to(outside)
    (tmp_path / "raw/2025-09-11/inside.csv").symlink_to(tmp_path / "raw/2025-09-11/._IV.csv")
    rows = stage_files(
        [fork, tmp_path / "raw/2025-09-11/link.csv", tmp_path / "raw/2025-09-11/inside.csv"],
        settings(tmp_path / "raw", tmp_path / "out", lab_schema),
    ).to_pylist()
    assert [r["status"] for r in rows] == ["skipped", "reject", "reject"]
    assert "resource fork" in rows[0]["reason"] and "outside raw_root" in rows[1]["reason"]
    assert "binary" in rows[2]["reason"]  # a symlink inside raw_root is read like any file


@pytest.mark.parametrize(
    ("line", "value"),
    [("Chip number: 67", "1e99"), ("Chip number: 67", "99999999999999999999"), ("NPLC: 1", "-1e19"),
     ("Laser voltage: 2.5 V", "inf V"), ("Laser voltage: 2.5 V", "1e400 V"), ("VSD start: 1 V", "nan V"), ("NPLC: 1", "one")],
)  # fmt: skip
def test_a_header_value_beyond_its_type_is_null_and_named_and_the_batch_is_staged(tmp_path, lab_schema, line, value):
    """`Chip number: 1e99` used to kill the batch's manifest (OverflowError in pa.Table.from_pylist): no file of the day was staged."""
    name = line.split(":")[0]
    paths = [
        write(tmp_path / "raw/2025-09-11/bad.csv", IV_TEXT.replace(line, f"{name}: {value}")),
        write(tmp_path / "raw/2025-09-11/good.csv", IV_TEXT),
    ]
    manifest = stage_files(paths, settings(tmp_path / "raw", tmp_path / "out", lab_schema)).to_pylist()
    bad, good = manifest
    assert bad["status"] == good["status"] == "ok", bad["reason"]
    assert bad["invalid_parameters"] == [name] and good["invalid_parameters"] == []
    staged = pq.read_table(bad["output"]).to_pylist()[0]
    column = {"Chip number": "chip_number", "NPLC": "nplc", "Laser voltage": "laser_voltage_V", "VSD start": "vsd_start_V"}[name]
    assert staged[column] is None and pq.read_table(good["output"]).to_pylist()[0][column] is not None
    assert bad["rows"] == good["rows"] == 3


def test_a_missing_header_value_is_not_invalid(tmp_path, lab_schema):
    raw = write(tmp_path / "raw/2025-09-11/a.csv", IV_TEXT.replace("Chip number: 67", "Chip number: None").replace("VSD start: 1 V", "VSD start: "))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok" and row["invalid_parameters"] == [] and row["chip_number"] is None


@pytest.mark.parametrize(
    ("start", "timezone"), [("-62135596800", "America/Santiago"), ("253402300799", "Asia/Tokyo"), ("1e99", "UTC"), ("inf", "UTC")]
)
def test_a_start_time_off_the_calendar_dates_the_run_by_its_path(tmp_path, lab_schema, start, timezone):
    """Year 1 or 9999 cannot move to the lab's timezone (OverflowError in the catalog, at DAG build time)."""
    raw = write(tmp_path / "raw/2025-09-11/a.csv", IV_TEXT.replace("Start time: 1757584800.0", f"Start time: {start}"))
    row = stage_file(raw, StageSettings(tmp_path / "raw", tmp_path / "out", lab_schema, timezone))
    described = describe(tmp_path / "raw", "2025-09-11/a.csv", timezone)
    assert row["status"] == "ok" and (row["date"], row["date_origin"]) == ("2025-09-11", "path")
    assert (described.date, described.run_id) == (row["date"], row["run_id"])
    assert row["start_dt"] is None and set(pq.read_table(row["output"])["start_dt"].to_pylist()) == {None}  # nothing later converts it


def test_a_bad_byte_in_a_ragged_row_is_skipped_without_a_traceback(tmp_path, lab_schema, monkeypatch):
    """pyarrow decodes a ragged row for its handler: a non-UTF-8 byte there failed inside pyarrow, which printed
    the traceback into the job's log (the file was staged right, from the text path)."""
    unraisable = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)
    raw = write(tmp_path / "raw/2025-09-11/a.csv", IV_TEXT.encode().replace(b"0.5,2e-9,y", b"0.5,2e-9,y\n0.7,\x98,1,2"))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok" and (row["rows"], row["skipped_rows"], row["skipped_lines"]) == (3, 1, [21])
    assert unraisable == []


def test_a_stray_byte_in_the_table_of_a_utf8_file_is_a_null_cell_not_a_reject(tmp_path, lab_schema):
    text = IV_TEXT.replace("Information: None", "Information: 25 °C")
    raw = write(tmp_path / "raw/2025-09-11/a.csv", text.encode().replace(b"0.5,2e-9", b"0.5,2\xe4-9"))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok", row["reason"]
    assert (row["rows"], row["null_cells"]) == (3, 2)  # "2\xe4-9" and "bad"
    assert pq.read_table(row["output"])["vsd_V"].to_pylist() == [0.0, 0.5, 1.0]


def test_nul_bytes_in_the_table_are_damaged_cells_and_in_the_header_a_binary_file(tmp_path, lab_schema):
    """A power cut can leave a zero-filled tail: the rows before it are the measurement."""
    tail = write(tmp_path / "raw/2025-09-11/tail.csv", IV_TEXT.encode() + b"\x00" * 300)
    inside = write(tmp_path / "raw/2025-09-11/inside.csv", IV_TEXT.encode().replace(b"0.5,2e-9", b"0.5,2\x00e-9"))
    header = write(tmp_path / "raw/2025-09-11/header.csv", IV_TEXT.encode().replace(b"Sample: A", b"Sample: \x00A"))
    rows = stage_files([tail, inside, header], settings(tmp_path / "raw", tmp_path / "out", lab_schema)).to_pylist()
    assert [r["status"] for r in rows] == ["ok", "ok", "reject"]
    assert (rows[0]["rows"], rows[0]["skipped_rows"]) == (3, 1) and (rows[1]["rows"], rows[1]["null_cells"]) == (3, 2)
    assert "binary" in rows[2]["reason"]


def test_lone_carriage_returns_end_lines_too(tmp_path, lab_schema):
    raw = write(tmp_path / "raw/2025-09-11/mac.csv", IV_TEXT.replace("\n", "\r"))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok", row["reason"]
    assert (row["rows"], row["unmapped_columns"]) == (3, ["Extra"])


@pytest.mark.parametrize("block_bytes", [8 << 20, 64])
def test_doubled_carriage_returns_and_blank_lines_before_the_label_row_keep_the_labels(tmp_path, lab_schema, monkeypatch, block_bytes):
    """CRLF text written again in text mode on Windows ends lines with \\r\\r\\n: a blank line after each. The
    blank line after `#Data:` was taken for the label row: pyarrow then took the labels for a header, so a table of
    numbers read whole kept the raw labels as names (no `vsd_V`: never segmented) and any other was rejected."""
    monkeypatch.setattr("nanolab.table.BLOCK_BYTES", block_bytes)
    doubled = write(tmp_path / "raw/2025-09-11/doubled.csv", IV_TEXT.replace("\n", "\r\r\n"))
    blank = write(tmp_path / "raw/2025-09-11/blank.csv", IV_TEXT.replace("#Data:\n", "#Data:\n\n \n"))
    for raw in (doubled, blank):
        row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
        assert row["status"] == "ok", row["reason"]
        assert (row["rows"], row["unmapped_columns"], row["null_cells"]) == (3, ["Extra"], 1)
        staged = pq.read_table(row["output"])
        assert staged["vsd_V"].to_pylist() == [0.0, 0.5, 1.0] and staged["i_A"].to_pylist() == [1e-9, 2e-9, None]
    assert describe(tmp_path / "raw", "2025-09-11/doubled.csv", "America/Santiago").reason is None


def test_a_label_row_that_lost_a_label_is_a_reject_that_says_so(tmp_path, lab_schema):
    raw = write(tmp_path / "raw/2025-09-11/a.csv", IV_TEXT.replace("Vsd (V),I (A),Extra", "Vsd (V),I (A)"))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "reject"
    assert row["reason"] == "no data rows with as many cells as the label row (2): 3 rows with another number skipped"


def test_a_reject_is_never_dated_by_its_mtime(tmp_path, lab_schema):
    """No start time and no date in its path: the day would be the file's mtime (today), which only a file that stages gets."""
    undated = IV_TEXT.replace("#\tStart time: 1757584800.0\n", "")
    staged = stage_file(write(tmp_path / "raw/new/a.csv", undated), settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert staged["status"] == "ok" and staged["date_origin"] == "mtime" and staged["date"]
    broken = undated.replace("Vsd (V),I (A),Extra", "Vsd (V),I (A)")  # no row has as many cells as the labels
    rejected = stage_file(write(tmp_path / "raw/new/b.csv", broken), settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert rejected["status"] == "reject" and rejected["reason"].startswith("no data rows with as many cells")
    assert rejected["date"] is None and rejected["date_origin"] is None


def test_the_manifest_names_the_raw_lines_of_skipped_rows_and_rows_with_nulls(tmp_path, lab_schema):
    text = IV_TEXT.replace("0.5,2e-9,y\n", "0.5,2e-9,y\n0.6,7\n\n0.7,,q\n0.8,3e-9,r,extra\n")
    lines = text.splitlines()
    raw = write(tmp_path / "raw/2025-09-11/a.csv", "\ufeff" + text.replace("\n", "\r\n"))
    row = stage_file(raw, settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    assert row["status"] == "ok" and (row["skipped_rows"], row["null_cells"]) == (2, 2)
    assert [lines[n - 1] for n in row["skipped_lines"]] == ["0.6,7", "0.8,3e-9,r,extra"]
    assert [lines[n - 1] for n in row["null_lines"]] == ["0.7,,q", "1.0,bad,z"]
    clean = stage_file(
        write(tmp_path / "raw/2025-09-11/b.csv", IV_TEXT.replace("1.0,bad,z", "1.0,3e-9,z")), settings(tmp_path / "raw", tmp_path / "out", lab_schema)
    )
    assert (clean["null_cells"], clean["skipped_lines"], clean["null_lines"]) == (0, [], [])


def test_a_stray_byte_in_a_table_read_in_blocks_is_a_null_cell_as_in_one_read(tmp_path, lab_schema, monkeypatch):
    """A table over BLOCK_BYTES is read in blocks: a stray byte in it refused the whole file (invalid UTF-8 in a
    string column, or in a ragged row handed to our handler), where a table read whole had a null cell."""
    head = IV_TEXT.partition("0.0,1e-9,x")[0]  # 18 header lines, the label row last
    rows = [f"{k * 1e-3:.3f},{k * 1e-9:.3e},x" for k in range(600)]
    rows[100] = "0.100,1\x98e-9,x"  # line 119
    rows.insert(200, "0.2,1,2,\x98")  # line 219, ragged
    content = (head + "\n".join(rows) + "\n").encode("latin-1")
    whole = stage_file(write(tmp_path / "raw/2025-09-11/whole.csv", content), settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    monkeypatch.setattr("nanolab.table.BLOCK_BYTES", 4096)  # ~20 KB: five blocks
    blocks = stage_file(write(tmp_path / "raw/2025-09-11/blocks.csv", content), settings(tmp_path / "raw", tmp_path / "out", lab_schema))
    for row in (whole, blocks):
        assert row["status"] == "ok", row["reason"]
        assert (row["rows"], row["null_cells"], row["skipped_rows"]) == (600, 1, 1)
        assert (row["null_lines"], row["skipped_lines"]) == ([119], [219])
    assert pq.read_table(blocks["output"]).column("i_A").to_pylist() == pq.read_table(whole["output"]).column("i_A").to_pylist()
