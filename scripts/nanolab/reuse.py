"""Skip work whose inputs did not change, so a rerun after one edited file is fast: one engine for every job.

A job reruns a whole batch, month or run; within it, an output whose inputs, settings and code are what
made the output already on disk is kept (`Engine.reuse_or_make`: key -> load, or compute -> write ->
record). The proof is a record: for the stage and segment files one entry per run in the batch's record
file (`<root>/_records/date=<d>/batch=<b>.json`, `Records`; names starting with `_` are ignored by every
Parquet reader), for the per-day tables and figures a small JSON file per day (`Folder`). A record also
lists the size and CRC-32 of every file it vouches for: it is trusted only while those files are whole
(a truncated or missing file means the output is redone).

A key holds the fingerprint of exactly the code that computes the output (`Engine.code`: the sources of
the module that computes it and of what it imports, `nanolab.codehash`, carried into the job by its
arguments file), the library versions and the inputs: a change to segmentation code re-segments but
restages nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Protocol

from .atomic import Written, file_crc, write_text_atomic
from .versions import library_versions

FORCED = "forced"  # a check file starting so: its job was forced (`--forceall`, `-R`), see `forced_days`
EVERY_DAY = "*"


@cache
def library_key(*names: str) -> str:
    """The versions of Python and the libraries that write a job's bytes (`versions.library_versions`)."""
    return json.dumps(library_versions(("pyarrow", "numpy", *names)), sort_keys=True)


def forced_days(check_files: list[Path] | None) -> frozenset[str] | None:
    """What a force covers, from the job's check files (a declared input, so a cluster job reads it too):
    None when the job was not forced; the days of a `days=…` run (`forced days=<d>,<d>`); else every day."""
    for path in check_files or []:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        if text.startswith(FORCED):
            days = text.split("days=", 1)[1].split()[0] if " days=" in text.splitlines()[0] else EVERY_DAY
            return frozenset(days.split(","))
    return None


class Store(Protocol):
    def load(self, name: str, expected_key: str, whole: Callable[[Written], bool]) -> Record | None: ...
    def save(self, name: str, record_key: str, row: dict, outputs: list[Written]) -> None: ...


@dataclass(frozen=True)
class Engine:
    """One kind of output's reuse in one job: `code` is the fingerprint of the modules that compute it,
    `forced` what a force covers (None: not forced; the forced days; or `EVERY_DAY`)."""

    code: str = ""
    forced: frozenset[str] | None = None

    def key(self, *parts: str) -> str:
        """Changes with the computing code, the library versions and the given parts."""
        return hashlib.blake2b("\x00".join((self.code, library_key(), *parts)).encode(), digest_size=12).hexdigest()

    def trusts(self, day: str | None = None) -> bool:
        """Whether a record may be reused: not for a day a force covers (an output of no day: any force)."""
        if self.forced is None:
            return True
        return day is not None and EVERY_DAY not in self.forced and day not in self.forced

    def reuse_or_make(
        self,
        store: Store,
        name: str,
        key: str,
        make: Callable[[], tuple[dict, list[Written]]],
        day: str | None = None,
    ) -> tuple[dict, bool]:
        """(the output's row, whether it was made now): the row recorded under `key` when its outputs are
        whole and the engine trusts the record; else `make()` writes the outputs and the record is saved."""
        if self.trusts(day) and (saved := store.load(name, key, is_whole)) is not None:
            return saved.row, False
        row, written = make()
        store.save(name, key, row, written)
        return row, True


IN_PROCESS = Engine()  # outside a workflow job (tests, the in-process pipeline): no code fingerprint, never forced


def engine(code: dict[str, str], kind: str, check_files: list[Path] | None) -> Engine:
    """The engine of one kind of output, from a job's `--code` (`{kind: fingerprint}`) and `--check` files."""
    return Engine(code.get(kind, ""), forced_days(check_files))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every reusing job's two arguments: its code fingerprints and its check files."""
    parser.add_argument("--code", type=json.loads, default={}, help="JSON {kind: fingerprint of the code computing it}")
    parser.add_argument("--check", type=Path, nargs="*", help="the job's check files: a forced job reuses no record of the days forced")


def content_id(path: Path) -> str:
    """Size and CRC-32 of a file's bytes: what changed, not when."""
    return f"{path.stat().st_size}:{file_crc(path)}"


@dataclass(frozen=True)
class Record:
    row: dict  # the manifest row saved with the output
    outputs: list[Written]  # in the order they were saved


def is_whole(output: Written) -> bool:
    """The file is there with the size and bytes it was written with."""
    try:
        return os.stat(output.path).st_size == output.size and file_crc(output.path) == output.crc
    except OSError:
        return False


def has_size(output: Written) -> bool:
    """The file is there with the size it was written with; its caller checks the bytes as it reads them."""
    try:
        return os.stat(output.path).st_size == output.size
    except OSError:
        return False


def read_if_whole(output: Written) -> bytes | None:
    """The file's bytes when they are those it was written with (one read: the CRC and the caller's parse)."""
    try:
        data = output.path.read_bytes()
    except OSError:
        return None
    return data if len(data) == output.size and f"{zlib.crc32(data):08x}" == output.crc else None


def load(record: Path, expected_key: str, whole: Callable[[Written], bool] = is_whole) -> Record | None:
    """The record saved with the output, if made from the same inputs and its outputs are `whole`; else None."""
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _record(record.parent, document, expected_key, whole) if isinstance(document, dict) else None


def save(record: Path, record_key: str, row: dict, outputs: list[Written]) -> None:
    """Written after the outputs themselves, so a record never vouches for a half-written run."""
    write_text_atomic(record, json.dumps(_document(record.parent, record_key, row, outputs), default=_jsonable))


def _document(folder: Path, record_key: str, row: dict, outputs: list[Written]) -> dict:
    """A record's JSON form; the outputs' paths relative to `folder`, so results/ can move."""
    listed = [[Path(os.path.relpath(output.path, folder)).as_posix(), output.size, output.crc] for output in outputs]
    return {"key": record_key, "row": row, "outputs": listed}


def _record(folder: Path, document: dict, expected_key: str, whole: Callable[[Written], bool]) -> Record | None:
    try:
        if document.get("key") != expected_key:
            return None
        outputs = [Written(folder / name, int(size), str(crc)) for name, size, crc in document["outputs"]]
        row = document["row"]
    except (ValueError, KeyError, TypeError):
        return None
    return Record(row, outputs) if all(whole(output) for output in outputs) else None


class Folder:
    """A record file per output name in one folder (`<folder>/<name>.json`): the per-day tables and figures."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, name: str, expected_key: str, whole: Callable[[Written], bool] = is_whole) -> Record | None:
        return load(self.path / f"{name}.json", expected_key, whole)

    def save(self, name: str, record_key: str, row: dict, outputs: list[Written]) -> None:
        save(self.path / f"{name}.json", record_key, row, outputs)


def records_file(root: Path, batch_manifest: Path) -> Path:
    """A batch's record file under a stage's root: `<root>/_records/date=<d>/batch=<b>.json` for the batch
    manifest `…/date=<d>/batch=<b>.parquet` (the manifests job removes those of batches gone)."""
    return root / "_records" / batch_manifest.parent.name / f"{batch_manifest.stem}.json"


class Records:
    """A batch job's records, one entry per run, in one file: read when the job starts, written when it
    ends with the entries of this job's runs only. A file per run cost ~0.3 ms CPU to write (a forced day
    job of 192 files 1.025 -> 0.98 CPU-s); a job killed before the end leaves the previous file, whose
    entries still hold only where their key and their outputs' sizes and CRCs do."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept: dict[str, dict] = {}
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        self.saved: dict = saved if isinstance(saved, dict) else {}

    def load(self, name: str, expected_key: str, whole: Callable[[Written], bool] = is_whole) -> Record | None:
        """The entry saved for run `name` if made from the same inputs and its outputs are `whole`; kept for the next run."""
        document = self.saved.get(name)
        record = _record(self.path.parent, document, expected_key, whole) if isinstance(document, dict) else None
        if record is not None:
            self.kept[name] = document
        return record

    def save(self, name: str, record_key: str, row: dict, outputs: list[Written]) -> None:
        """After the run's outputs are written; on disk with the others when the job ends (`write`)."""
        self.kept[name] = _document(self.path.parent, record_key, row, outputs)

    def write(self) -> None:
        """Only when an entry changed: a batch whose runs were all reused leaves its file untouched."""
        if self.kept != self.saved:
            write_text_atomic(self.path, json.dumps(self.kept, default=_jsonable))


def _jsonable(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
