"""The raw-file catalog Snakemake plans from: which files exist, their day, procedure, content
hash and batch.

Read at DAG-build time, so it must be cheap for ~10,000 files: facts are cached by (size, mtime)
and only files that changed since the last run are opened (~150 µs each otherwise). The content
hash lets a batch's fingerprint ignore a touched-but-unchanged file.

A file the catalog already knows is a reject (unreadable header, no data rows; nanolab.plan adds an
unknown procedure) gets no batch (no job, no figure): it reaches the manifest as a reject row with the
reason found here, dated only by its start time or path (never by its mtime: a broken file copied
today must not create a day "today").
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

from .atomic import write_text_atomic
from .header import HEADER_BYTES, RawFormatError, split_raw
from .identity import date_from_path, make_run_id, parse_start_time, resolve_date
from .rawfiles import NO_DATA_ROWS, OUTSIDE_ROOT, RESOURCE_FORK, escapes_root, is_resource_fork, unknown_procedure

CACHE_VERSION = 6  # 6: date_origin; a header without data rows is a reject
CHUNK_BYTES = 1 << 20


class RawFile(NamedTuple):  # built ~10,000 times from the cache each run: a tuple is cheapest
    source_file: str  # relative to raw_root, POSIX
    size: int
    mtime_ns: int
    proc: str | None  # None when the header cannot be read: the stage job writes the reject reason
    date: str | None  # None: header unreadable and no date in the path (an undated reject, no batch)
    run_id: str
    content_hash: str  # "<size>:<crc32>" of the bytes; "" when the file cannot be read
    reason: str | None = None  # why the file is a reject the catalog already knows (None: it may stage)
    date_origin: str | None = None  # meta | path | mtime: where `date` came from


def is_raw_csv(name: str) -> bool:
    """CSV files that are not hidden. macOS `._` resource forks are listed so the manifest shows them skipped."""
    return name.lower().endswith(".csv") and (not name.startswith(".") or is_resource_fork(name))


def find_raw_files(raw_root: Path) -> list[str]:
    """Every raw CSV below raw_root, relative POSIX paths, sorted. Hidden folders are skipped, and
    symlinked folders are not followed (no loops, nothing outside raw_root)."""
    found = []
    for folder, subfolders, files in os.walk(raw_root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = Path(folder).relative_to(raw_root).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        found += [prefix + name for name in files if is_raw_csv(name)]  # strings: Path per file cost ~0.1 s a run
    return sorted(found)


def describe(raw_root: Path, source_file: str, timezone: str) -> RawFile:
    """Read just the header: procedure, measurement day and run_id, as the stage job will compute them."""
    path = raw_root / source_file
    if is_resource_fork(path.name):
        return unreadable(source_file, timezone, RESOURCE_FORK)
    if escapes_root(path, raw_root):
        return unreadable(source_file, timezone, OUTSIDE_ROOT)
    stat = os.stat(path)  # follows symlinks; a broken one or a loop raises and is described as unreadable
    crc = 0  # change detection, not security: CRC-32 reads 450 MB in 0.23 s, blake2b in 0.5 s
    with open(path, "rb") as handle:
        head = handle.read(HEADER_BYTES)
        crc = zlib.crc32(head)
        while chunk := handle.read(CHUNK_BYTES):
            crc = zlib.crc32(chunk, crc)
    content_hash = f"{stat.st_size}:{crc:08x}"
    try:
        header, _, label_offset = split_raw(head)
        proc, start = header.procedure, parse_start_time(header.start_time_text)
    except RawFormatError as error:
        run_id = make_run_id(source_file, None)
        day = path_day(source_file)
        return RawFile(source_file, stat.st_size, stat.st_mtime_ns, None, day, run_id, content_hash, str(error), day and "path")
    day, origin = resolve_date(start, source_file, stat.st_mtime, timezone)
    run_id = make_run_id(source_file, start)
    reason = None if stat.st_size > len(head) or has_data_rows(head[label_offset:]) else NO_DATA_ROWS
    return RawFile(source_file, stat.st_size, stat.st_mtime_ns, proc, day.isoformat(), run_id, content_hash, reason, origin)


def has_data_rows(table: bytes) -> bool:
    """Anything but blanks after the label row (the table part of a file read whole)."""
    return any(line.strip() for line in table.splitlines()[1:])


def path_day(source_file: str) -> str | None:
    """The day of a file without a readable header: a date in its path, else none (never its mtime:
    a broken file copied today must not create a day 'today')."""
    day = date_from_path(source_file)
    return None if day is None else day.isoformat()


def unreadable(source_file: str, timezone: str, reason: str) -> RawFile:
    """A file we cannot even stat or open: a reject row, dated by its path when it has a date there."""
    day = path_day(source_file)
    return RawFile(source_file, -1, -1, None, day, make_run_id(source_file, None), "", reason, day and "path")


def scan(raw_root: Path, timezone: str, cache_path: Path | None = None) -> list[RawFile]:
    """Catalog the raw tree, reusing cached header facts for files whose size and mtime are unchanged."""
    cached = _load_cache(cache_path, raw_root, timezone)
    catalog = []
    root = os.fspath(raw_root)
    for source_file in find_raw_files(raw_root):
        try:
            stat = os.stat(os.path.join(root, source_file))
            hit = cached.get(source_file)
            if hit and hit.size == stat.st_size and hit.mtime_ns == stat.st_mtime_ns:
                catalog.append(hit)
            else:
                catalog.append(describe(raw_root, source_file, timezone))
        except OSError as error:
            catalog.append(unreadable(source_file, timezone, f"unreadable: {error.strerror or error}"))
        except Exception as error:  # noqa: BLE001 - read while the DAG is built: a file we fail on must not stop every day
            catalog.append(unreadable(source_file, timezone, f"{type(error).__name__}: {error}"))
    if cache_path is not None and (len(catalog) != len(cached) or any(f is not cached.get(f.source_file) for f in catalog)):
        _save_cache(cache_path, raw_root, timezone, catalog)
    return catalog


def _cache_key(raw_root: Path, timezone: str) -> dict:
    return {"version": CACHE_VERSION, "raw_root": os.path.abspath(raw_root), "timezone": timezone}


def _load_cache(cache_path: Path | None, raw_root: Path, timezone: str) -> dict[str, RawFile]:
    try:
        with open(cache_path, encoding="utf-8") as handle:  # type: ignore[arg-type]
            document = json.load(handle)
        if document["key"] != _cache_key(raw_root, timezone):
            return {}
        return {entry[0]: RawFile._make(entry) for entry in document["files"]}
    except (TypeError, OSError, ValueError, KeyError):
        return {}


def _save_cache(cache_path: Path, raw_root: Path, timezone: str, catalog: list[RawFile]) -> None:
    document = {"key": _cache_key(raw_root, timezone), "files": [list(f) for f in catalog]}
    write_text_atomic(cache_path, json.dumps(document), private=True)


def batch_count(files: int, batch_size: int) -> int:
    """Sub-batches for a day: a power of two, so growing splits each batch in two instead of reshuffling."""
    return 1 if files <= batch_size else 2 ** math.ceil(math.log2(files / batch_size))


def batch_of(run_id: str, batches: int) -> int:
    """Stable membership: a run stays in its batch as long as the day's batch count does not change."""
    return int(run_id, 16) % batches


def batch_label(index: int, batches: int) -> str:
    return f"{index + 1}-of-{batches}"


def plan_batches(catalog: list[RawFile], batch_size: int) -> dict[tuple[str, str], list[RawFile]]:
    """Group the catalog into (date, batch label) jobs; one job per day unless the day is large."""
    by_day: dict[str, list[RawFile]] = {}
    for raw_file in catalog:
        if raw_file.date is not None:
            by_day.setdefault(raw_file.date, []).append(raw_file)
    plan: dict[tuple[str, str], list[RawFile]] = {}
    for day, files in sorted(by_day.items()):
        batches = batch_count(len(files), batch_size)
        for raw_file in files:
            label = batch_label(batch_of(raw_file.run_id, batches), batches)
            plan.setdefault((day, label), []).append(raw_file)
    return plan


def fingerprint(files: list[RawFile]) -> str:
    """Changes exactly when a batch's membership or any member's content changes (not its mtime)."""
    digest = hashlib.blake2b(digest_size=8)
    for raw_file in sorted(files, key=lambda f: f.source_file):
        digest.update(f"{raw_file.source_file}\x00{raw_file.content_hash}\x00".encode())
    return digest.hexdigest()


def reject_reason(raw_file: RawFile, procedures: frozenset[str]) -> str | None:
    """Why the file cannot stage, when the catalog already knows; None when it goes to a staging job."""
    if raw_file.reason is not None or raw_file.proc is None:
        return raw_file.reason or "unreadable"
    return None if raw_file.proc in procedures else unknown_procedure(raw_file.proc)


def reject_day(raw_file: RawFile) -> str | None:
    """A reject's day: its start time's or its path's, never its mtime's."""
    return raw_file.date if raw_file.date_origin in ("meta", "path") else None


def undated(catalog: list[RawFile]) -> list[RawFile]:
    """Files with no measurement day: they have no batch, only a manifest row."""
    return [raw_file for raw_file in catalog if raw_file.date is None]


def undated_rows(files: list[RawFile]) -> list[dict[str, object]]:
    """Manifest rows of undated files (reject, or skipped for a resource fork), date null, with the reason."""
    return reject_rows([(f, f.reason) for f in files])


def reject_rows(rejects: list[tuple[RawFile, str | None]]) -> list[dict[str, object]]:
    """Manifest rows of the rejects the catalog knows (reject, or skipped for a resource fork), with the
    reason and the day of their start time or path (null otherwise): the manifests job writes them."""
    return [
        {
            "source_file": f.source_file,
            "status": "skipped" if reason == RESOURCE_FORK else "reject",
            "reason": reason,
            "proc": f.proc,
            "date": reject_day(f),
            "date_origin": f.date_origin if reject_day(f) else None,
            "run_id": f.run_id if f.proc is not None else None,
            "size_bytes": f.size if f.size >= 0 else None,
        }
        for f, reason in rejects
    ]


def duplicates(catalog: list[RawFile], raw_root: Path) -> list[dict[str, str]]:
    """Measurement files (a readable header) with the bytes of another: one row per copy with its run_id,
    day and `duplicate_of`, the first path in sorted order with those bytes. Equal size and CRC-32 are
    confirmed byte by byte, so a CRC collision is no duplicate (only copies are read, each run)."""
    groups: dict[str, list[RawFile]] = {}
    for raw_file in catalog:
        if raw_file.proc is not None and raw_file.content_hash:
            groups.setdefault(raw_file.content_hash, []).append(raw_file)
    rows = []
    for files in groups.values():
        originals: list[str] = []
        for raw_file in sorted(files, key=lambda f: f.source_file) if len(files) > 1 else ():
            original = next((o for o in originals if same_bytes(raw_root / o, raw_root / raw_file.source_file)), None)
            if original is None:
                originals.append(raw_file.source_file)
            else:
                rows.append({"source_file": raw_file.source_file, "run_id": raw_file.run_id, "date": raw_file.date, "duplicate_of": original})
    return sorted(rows, key=lambda row: row["source_file"])


def same_bytes(a: Path, b: Path) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False
