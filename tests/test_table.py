import pyarrow as pa

from nanolab.schema import normalize_label
from nanolab.table import column_names, read_data


def test_labels_map_case_and_punctuation_insensitively(lab_schema):
    iv = lab_schema.procedure("IV")
    names, unmapped = column_names(["VDS", "IDS (A)", "Plate T (°C)", "plate_temp", "clock"], iv)
    assert names == ["vsd_V", "i_A", "plate_t_degC", "plate_t_degC_2", "clock_ms"]
    assert unmapped == []


def test_unmappable_and_duplicate_labels_are_kept(lab_schema):
    names, unmapped = column_names(["Vsd (V)", "Mystery (Ohm)", "Mystery (Ohm)", ""], lab_schema.procedure("IV"))
    assert names == ["vsd_V", "Mystery (Ohm)", "Mystery (Ohm)_2", "unnamed"]
    assert unmapped == ["Mystery (Ohm)", "Mystery (Ohm)", "unnamed"]


def test_degree_sign_mangled_by_a_wrong_decode_still_maps():
    assert normalize_label("Plate T (\ufffdC)") == normalize_label("Plate T (degC)")


def test_clean_table_is_float64(lab_schema):
    data = read_data("Vsd (V),I (A)\n0.0,1e-9\n0.1,2e-9\n", lab_schema.procedure("IV"))
    assert data.table.schema == pa.schema([("vsd_V", pa.float64()), ("i_A", pa.float64())])
    assert data.table["i_A"].to_pylist() == [1e-9, 2e-9]
    assert (data.null_cells, data.skipped_rows) == (0, 0)
    assert data.missing == ("plate_t_degC", "ambient_t_degC", "clock_ms")


def test_bad_cells_become_null_and_are_counted(lab_schema):
    text = "Vsd (V),I (A),Note\n0.0,1e-9,a\n0.1,oops,b\n0.2,,c\n0.3,3e-9,d\n"
    data = read_data(text, lab_schema.procedure("IV"))
    assert data.table["vsd_V"].to_pylist() == [0.0, 0.1, 0.2, 0.3]
    assert data.table["i_A"].to_pylist() == [1e-9, None, None, 3e-9]
    assert data.table["Note"].to_pylist() == ["a", "b", "c", "d"]  # text column kept as text
    assert data.null_cells == 2


def test_ragged_rows_and_a_cut_last_line(lab_schema):
    text = "Vsd (V),I (A),Clock (ms)\r\n0.0,1e-9,1\r\n0.1,2e-9\r\n0.2,3e-9,3,99\r\n0.3,4e-9,4\r\n0.4,5e-"
    data = read_data(text, lab_schema.procedure("IV"))
    assert data.table["vsd_V"].to_pylist() == [0.0, 0.3]
    assert data.skipped_rows == 3  # too few cells, too many, and the line cut inside its second cell
    assert data.null_cells == 0


def test_a_line_cut_inside_its_last_cell_keeps_the_row(lab_schema):
    data = read_data("Vsd (V),I (A)\n0.0,1e-9\n0.1,2e", lab_schema.procedure("IV"))
    assert data.table["vsd_V"].to_pylist() == [0.0, 0.1]
    assert data.table["i_A"].to_pylist() == [1e-9, None]
    assert (data.null_cells, data.skipped_rows) == (1, 0)


def test_no_rows_gives_an_empty_typed_table(lab_schema):
    data = read_data("Vg (V),I (A)\n", lab_schema.procedure("IVg"))
    assert data.table.num_rows == 0
    assert data.table.column_names == ["vg_V", "i_A"]
