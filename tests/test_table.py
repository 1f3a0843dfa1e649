import io

import pyarrow as pa
import pytest
from nanolab.schema import normalize_label
from nanolab.table import Damage, map_columns, read_blocks, read_text_blocks


def read(text: str, spec, block_bytes: int | None = None) -> tuple[pa.Table, Damage]:
    """The label row and data rows of `text`, as the stager reads them."""
    label, _, body = text.partition("\n")
    columns = map_columns(label, spec)
    damage = Damage()
    tables = list(read_blocks(io.BytesIO(body.encode()), columns, spec, "utf-8", damage))
    return (pa.concat_tables(tables) if tables else None), damage


def test_labels_map_case_and_punctuation_insensitively(lab_schema):
    columns = map_columns("VDS,IDS (A),Plate T (°C),plate_temp,clock\r\n", lab_schema.procedure("IV"))
    assert columns.names == ["vsd_V", "i_A", "plate_t_degC", "plate_t_degC_2", "clock_ms"]
    assert columns.unmapped == [] and columns.missing == ["ambient_t_degC"]


def test_unmappable_and_duplicate_labels_are_kept(lab_schema):
    columns = map_columns('Vsd (V),Mystery (Ohm),Mystery (Ohm),""', lab_schema.procedure("IV"))
    assert columns.names == ["vsd_V", "Mystery (Ohm)", "Mystery (Ohm)_2", "unnamed"]
    assert columns.unmapped == ["Mystery (Ohm)", "Mystery (Ohm)", "unnamed"]


def test_degree_sign_mangled_by_a_wrong_decode_still_maps():
    assert normalize_label("Plate T (\ufffdC)") == normalize_label("Plate T (degC)")


def test_clean_table_is_float64(lab_schema):
    table, damage = read("Vsd (V),I (A)\n0.0,1e-9\n0.1,2e-9\n", lab_schema.procedure("IV"))
    assert table.schema == pa.schema([("vsd_V", pa.float64()), ("i_A", pa.float64())])
    assert table["i_A"].to_pylist() == [1e-9, 2e-9]
    assert (damage.null_cells, damage.skipped_rows) == (0, 0)


def test_bad_cells_become_null_and_are_counted(lab_schema):
    text = "Vsd (V),I (A),Note,Extra\n0.0,1e-9,a,1\n0.1,oops,b,2\n0.2,,c,\n0.3,3e-9,d,4.5\n"
    table, damage = read(text, lab_schema.procedure("IV"))
    assert table["vsd_V"].to_pylist() == [0.0, 0.1, 0.2, 0.3]
    assert table["i_A"].to_pylist() == [1e-9, None, None, 3e-9]
    assert table["Note"].to_pylist() == ["a", "b", "c", "d"]  # a text column is kept as text
    assert table["Extra"].to_pylist() == [1.0, 2.0, None, 4.5]  # a numeric unmapped column is float
    assert damage.null_cells == 3


def test_ragged_rows_and_a_cut_last_line(lab_schema):
    text = "Vsd (V),I (A),Clock (ms)\r\n0.0,1e-9,1\r\n0.1,2e-9\r\n0.2,3e-9,3,99\r\n0.3,4e-9,4\r\n0.4,5e-"
    table, damage = read(text, lab_schema.procedure("IV"))
    assert table["vsd_V"].to_pylist() == [0.0, 0.3]
    assert damage.skipped_rows == 3  # too few cells, too many, and the line cut inside its second cell
    assert damage.null_cells == 0


def test_a_line_cut_inside_its_last_cell_keeps_the_row(lab_schema):
    table, damage = read("Vsd (V),I (A)\n0.0,1e-9\n0.1,2e", lab_schema.procedure("IV"))
    assert table["vsd_V"].to_pylist() == [0.0, 0.1]
    assert table["i_A"].to_pylist() == [1e-9, None]
    assert (damage.null_cells, damage.skipped_rows) == (1, 0)


def test_many_blocks_give_the_same_table(lab_schema, monkeypatch):
    rows = "\n".join(f"{k / 100},{k * 1e-9},n{k % 3}" for k in range(5000))
    text = f"Vsd (V),I (A),Note\n{rows}\n"
    whole, _ = read(text, lab_schema.procedure("IV"))
    monkeypatch.setattr("nanolab.table.BLOCK_BYTES", 4096)
    blocks, damage = read(text, lab_schema.procedure("IV"))
    assert blocks.num_rows == 5000 and blocks.equals(whole)
    assert damage.null_cells == 0


def test_no_rows_gives_no_block(lab_schema):
    table, damage = read("Vg (V),I (A)\n", lab_schema.procedure("IVg"))
    assert table is None and damage.null_cells == 0


def text_path(text: str, spec) -> tuple[pa.Table | None, Damage]:
    """The same table read only through the text path (every cell checked as text)."""
    label, _, body = text.partition("\n")
    columns = map_columns(label, spec)
    damage = Damage()
    tables = list(read_text_blocks(io.BytesIO(body.encode()), columns, spec, "utf-8", damage))
    return (pa.concat_tables(tables) if tables else None), damage


DAMAGED = {
    "clean": "Vsd (V),I (A)\n0.0,1e-9\n0.1,2e-9\n",
    "word for infinity": "Vsd (V),I (A)\n0.0,Infinity\n0.1,2e-9\n",  # the CSV reader takes it, the text path does not
    "nan with payload": "Vsd (V),I (A)\n0.0,nan(1)\n0.1,2e-9\n",
    "inf and nan spelled out": "Vsd (V),I (A)\n0.0,inf\n0.1,NAN\n0.2,-inf\n",
    "padded cells": "Vsd (V),I (A)\n 0.0 ,1e-9\n0.1,\t2e-9\n",
    "empty and null words": "Vsd (V),I (A)\n0.0,\n0.1,NA\n0.2,null\n",
    "ragged and cut": "Vsd (V),I (A),Clock (ms)\n0.0,1e-9,1\n0.1,2e-9\n0.2,3e-9,3,99\n0.3,4e-9,4\n0.4,5e-",
    "cut inside the last cell": "Vsd (V),I (A)\n0.0,1e-9\n0.1,2e",
    "text column": "Vsd (V),I (A),Note\n0.0,1e-9,a\n0.1,oops,b\n",
    "no rows": "Vsd (V),I (A)\n",
    "nan columns as PyMeasure writes them": "Vsd (V),I (A),Plate T (degC),Clock (ms)\n0.0,1e-9,nan,nan\n0.1,2e-9,nan,nan\n",
    "nan beside an empty cell": "Vsd (V),I (A),Clock (ms)\n0.0,1e-9,nan\n0.1,,-NaN\n0.2,3e-9, nan \n",
    "nan in a text column": "Vsd (V),I (A),Note\n0.0,1e-9,a\n0.1,2e-9,nan\n",
}


@pytest.mark.parametrize("name", DAMAGED)
def test_fast_float_path_gives_exactly_the_text_paths_table_and_counts(lab_schema, name):
    spec = lab_schema.procedure("IV")
    fast, fast_damage = read(DAMAGED[name], spec)
    slow, slow_damage = text_path(DAMAGED[name], spec)
    assert (fast is None) == (slow is None)
    if fast is not None:  # repr: NaN equals NaN, and stays distinct from a null (None)
        assert fast.schema == slow.schema and repr(fast.to_pydict()) == repr(slow.to_pydict()), name
    assert (fast_damage.null_cells, fast_damage.skipped_rows) == (slow_damage.null_cells, slow_damage.skipped_rows)
    assert fast_damage.not_measured == slow_damage.not_measured and fast_damage.null_at == slow_damage.null_at


def test_what_the_instrument_wrote_as_nan_is_not_measured_and_not_damage(lab_schema):
    """PyMeasure writes `nan` where nothing was connected (the real files' Plate T, Ambient T and Clock): such a
    cell is null in the table and counted per column as not measured; only empty or broken cells are damage."""
    table, damage = read(DAMAGED["nan columns as PyMeasure writes them"], lab_schema.procedure("IV"))
    assert table["plate_t_degC"].to_pylist() == [None, None] and table["clock_ms"].null_count == 2
    assert damage.null_cells == 0 and damage.null_at == [] and damage.not_measured == {"plate_t_degC": 2, "clock_ms": 2}
    table, damage = read(DAMAGED["nan beside an empty cell"], lab_schema.procedure("IV"))
    assert table["i_A"].to_pylist() == [1e-9, None, 3e-9] and table["clock_ms"].to_pylist() == [None, None, None]
    assert damage.null_cells == 1 and damage.null_at == [2] and damage.not_measured == {"clock_ms": 3}
    table, damage = read(DAMAGED["nan in a text column"], lab_schema.procedure("IV"))
    assert table["Note"].to_pylist() == ["a", None] and damage.not_measured == {"Note": 1} and damage.null_cells == 0


def test_spellings_the_text_path_refuses_become_null(lab_schema):
    table, damage = read(DAMAGED["word for infinity"], lab_schema.procedure("IV"))
    assert table["i_A"].to_pylist() == [None, 2e-9] and damage.null_cells == 1
    table, damage = read(DAMAGED["inf and nan spelled out"], lab_schema.procedure("IV"))
    values = table["i_A"].to_pylist()
    assert values[0] == float("inf") and values[2] == float("-inf") and damage.null_cells == 0
    assert values[1] is None and damage.not_measured == {"i_A": 1}  # NAN: not measured, stored as null (never NaN)


def test_padded_numbers_are_numbers(lab_schema):
    table, damage = read(DAMAGED["padded cells"], lab_schema.procedure("IV"))
    assert table["vsd_V"].to_pylist() == [0.0, 0.1] and table["i_A"].to_pylist() == [1e-9, 2e-9]
    assert damage.null_cells == 0


def test_damaged_rows_are_located_by_line_after_the_label_row(lab_schema, monkeypatch):
    """Blank lines count as lines (the CSV reader does not number them) when the table is one block."""
    text = "Vsd (V),I (A)\n0.0,1e-9\n0.1,x\n\n\n0.2,3e-9\n1,2,3\n0.3,\n9\n0.4,4e-9\n"
    spec = lab_schema.procedure("IV")
    body = text.partition("\n")[2].splitlines()
    skipped = [n for n, line in enumerate(body, start=1) if line and line.count(",") != 1]
    nulls = [n for n, line in enumerate(body, start=1) if line.count(",") == 1 and not all(c[:1].isdigit() for c in line.split(","))]
    assert (skipped, nulls) == ([6, 8], [2, 7])
    for case in (text, text.replace("\n", "\r\n")):
        _, damage = read(case.replace("\r\n", "\n", 1), spec)
        assert (damage.skipped_at, damage.null_at) == (skipped, nulls), case
    _, fast = read(text.replace("0.1,x", "0.1,"), spec)  # every cell a number or empty: the float path
    assert (fast.skipped_at, fast.null_at) == (skipped, nulls)
    monkeypatch.setattr("nanolab.table.BLOCK_BYTES", 16)  # streamed in blocks: the reader's numbers, blank lines not counted
    _, streamed = read(text, spec)
    assert (streamed.skipped_at, streamed.null_at) == ([4, 6], [2, 5])


def test_only_the_first_rows_with_nulls_are_kept_and_a_clean_table_has_none(lab_schema):
    rows = "\n".join(f"{k},{'' if k % 3 == 0 else k}" for k in range(30))
    _, damage = read(f"Vsd (V),I (A)\n{rows}\n", lab_schema.procedure("IV"))
    assert damage.null_cells == 10 and damage.null_at == [1, 4, 7, 10, 13]
    _, clean = read(DAMAGED["clean"], lab_schema.procedure("IV"))
    assert (clean.skipped_at, clean.null_at) == ([], [])
