import json
import os
from pathlib import Path

from nanolab import catalog as catalog_module
from nanolab.catalog import batch_count, batch_of, find_raw_files, fingerprint, plan_batches, scan, undated, undated_rows
from nanolab.identity import make_run_id

IV = "#Procedure: <laser_setup.procedures.IV.IV>\n#Parameters:\n#\tChip number: 1\n#Metadata:\n#\tStart time: {start}\n#Data:\nVsd (V),I (A)\n0,1\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_finds_csvs_recursively_skipping_hidden_files_and_folders(tmp_path):
    for name in ["2025-09-11/IV_1.csv", "2025-09-11/IV_2.CSV", "old/deep/x.csv", "2025-09-11/._IV_1.csv",
                 ".sync/IV.csv", "2025-09-11/notes.txt", "2025-09-11/.hidden.csv"]:  # fmt: skip
        write(tmp_path / name, "x")
    # resource forks are listed (the manifest shows them as skipped), other hidden files are not
    assert find_raw_files(tmp_path) == ["2025-09-11/._IV_1.csv", "2025-09-11/IV_1.csv", "2025-09-11/IV_2.CSV", "old/deep/x.csv"]


def test_symlinked_folders_are_not_followed_and_outside_targets_not_read(tmp_path):
    raw = tmp_path / "raw"
    write(tmp_path / "outside/secret.csv", IV.format(start=1757584800.0))
    (raw / "2025-09-11").mkdir(parents=True)
    os.symlink(tmp_path / "outside", raw / "linked_folder")
    os.symlink(raw, raw / "2025-09-11/loop")
    os.symlink(tmp_path / "outside/secret.csv", raw / "2025-09-11/secret.csv")
    [entry] = scan(raw, "America/Santiago")
    assert (entry.source_file, entry.proc) == ("2025-09-11/secret.csv", None)  # listed, not read


def test_scan_reads_header_facts_and_caches_them(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "2025-09-11/IV_1.csv", IV.format(start=1757584800.0))  # 2025-09-11 07:00 in Santiago
    write(raw / "2025-09-12/broken.csv", "not a measurement\n")
    cache = tmp_path / "cache.json"
    first = scan(raw, "America/Santiago", cache)
    assert [(f.source_file, f.proc, f.date) for f in first] == [
        ("2025-09-11/IV_1.csv", "IV", "2025-09-11"),
        ("2025-09-12/broken.csv", None, "2025-09-12"),
    ]
    assert cache.exists()
    # a cached entry is trusted while size and mtime are unchanged: prove it by planting a marker
    document = json.loads(cache.read_text())
    [row] = [row for row in document["files"] if "IV" in row]
    row[row.index("IV")] = "CACHED"
    cache.write_text(json.dumps(document))
    assert scan(raw, "America/Santiago", cache)[0].proc == "CACHED"
    os.utime(raw / "2025-09-11/IV_1.csv", ns=(1, 1))
    assert scan(raw, "America/Santiago", cache)[0].proc == "IV"
    # another timezone invalidates the whole cache
    assert scan(raw, "UTC", cache)[0].date == "2025-09-11"


def test_unreadable_file_still_gets_planned(tmp_path):
    raw = tmp_path / "raw"
    (raw / "2025-09-13").mkdir(parents=True)
    os.symlink(raw / "missing.csv", raw / "2025-09-13/dangling.csv")
    [entry] = scan(raw, "America/Santiago")
    assert (entry.source_file, entry.proc, entry.date) == ("2025-09-13/dangling.csv", None, "2025-09-13")


def test_batch_count_is_one_until_the_size_then_powers_of_two():
    assert [batch_count(n, 100) for n in (1, 100, 101, 200, 201, 400, 401, 1000)] == [1, 1, 2, 2, 4, 4, 8, 16]


def test_adding_files_keeps_everyone_else_in_their_batch(tmp_path):
    raw = tmp_path / "raw"
    for n in range(30):
        write(raw / f"2025-09-11/IV_{n}.csv", IV.format(start=1757584800.0 + n))
    before = plan_batches(scan(raw, "America/Santiago"), batch_size=10)
    assert len(before) == 4 and all(key[0] == "2025-09-11" for key in before)
    for n in range(30, 35):
        write(raw / f"2025-09-11/IV_{n}.csv", IV.format(start=1757584800.0 + n))
    after = plan_batches(scan(raw, "America/Santiago"), batch_size=10)
    where = {f.source_file: key for key, files in after.items() for f in files}
    for key, files in before.items():
        assert all(where[f.source_file] == key for f in files)


def test_batch_membership_is_balanced_enough():
    counts = [0] * 8
    for n in range(8000):
        counts[batch_of(make_run_id(f"2025-09-11/IV2025-09-11_{n}.csv", None), 8)] += 1
    assert min(counts) > 800


def test_fingerprint_follows_content_and_membership_not_mtime(tmp_path):
    raw = tmp_path / "raw"
    first = write(raw / "2025-09-11/IV_1.csv", IV.format(start=1757584800.0))
    cache = tmp_path / "cache.json"
    before = fingerprint(scan(raw, "UTC", cache))
    os.utime(first, ns=(5, 5))
    assert fingerprint(scan(raw, "UTC", cache)) == before
    first.write_text(IV.format(start=1757584800.0) + "1,2\n")
    edited = fingerprint(scan(raw, "UTC", cache))
    assert edited != before
    write(raw / "2025-09-11/IV_2.csv", IV.format(start=1757584801.0))
    assert fingerprint(scan(raw, "UTC", cache)) not in {before, edited}


def test_unreadable_header_without_a_path_date_has_no_day_and_no_batch(tmp_path):
    raw = tmp_path / "raw"
    write(raw / "misc/junk.csv", "garbage, not a measurement\n")  # no header, no date in the path
    write(raw / "2025-09-12/broken.csv", "garbage\n")  # no header, dated folder
    write(raw / "misc/._IV.csv", "\x00\x05")  # resource fork, undated
    write(raw / "2025-09-11/IV_1.csv", IV.format(start=1757584800.0))
    catalog = scan(raw, "America/Santiago")
    days = {f.source_file: f.date for f in catalog}
    assert days == {"misc/junk.csv": None, "misc/._IV.csv": None, "2025-09-12/broken.csv": "2025-09-12", "2025-09-11/IV_1.csv": "2025-09-11"}
    assert set(plan_batches(catalog, 400)) == {("2025-09-11", "1-of-1"), ("2025-09-12", "1-of-1")}
    rows = {row["source_file"]: row for row in undated_rows(undated(catalog))}
    assert set(rows) == {"misc/junk.csv", "misc/._IV.csv"}
    assert rows["misc/junk.csv"]["status"] == "reject" and rows["misc/junk.csv"]["date"] is None
    assert rows["misc/junk.csv"]["reason"] == "no '#Data:' line before the data table"  # what staging says of it
    assert rows["misc/junk.csv"]["size_bytes"] == len("garbage, not a measurement\n")
    assert rows["misc/._IV.csv"]["status"] == "skipped"


def test_a_file_the_catalog_fails_on_is_an_unreadable_entry_not_a_stop(tmp_path, monkeypatch):
    """The catalog runs while the DAG is built: one file it cannot describe must not stop every day's run."""
    raw = tmp_path / "raw"
    write(raw / "2025-09-11/good.csv", IV.format(start="1757584800.0"))
    write(raw / "2025-09-11/odd.csv", IV.format(start="1757584801.0"))
    describe = catalog_module.describe

    def failing(raw_root, source_file, timezone):
        if source_file.endswith("odd.csv"):
            raise OverflowError("date value out of range")  # how a year-1 start time used to fail here
        return describe(raw_root, source_file, timezone)

    monkeypatch.setattr(catalog_module, "describe", failing)
    good, odd = scan(raw, "America/Santiago")
    assert (good.proc, good.date) == ("IV", "2025-09-11")
    assert (odd.proc, odd.date, odd.reason) == (None, "2025-09-11", "OverflowError: date value out of range")
