"""Skip work whose inputs did not change, so a rerun after one edited file is fast.

A job reruns a whole batch; within it, a run whose input bytes, settings and code are what made
the output already on disk keeps that output. The proof is a small JSON record beside the output
(`_stage.json`, `_segments.json`; names starting with `_` are ignored by every Parquet reader).
It also lists the size and CRC-32 of every file it vouches for: a record is trusted only while
those files are whole (a truncated or missing file means the run is redone).
Any change to the package's code invalidates every record.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from .atomic import Written, file_crc, write_text_atomic
from .integrity import FORCED
from .plan import library_versions

CODE_VERSION = hashlib.blake2b(b"".join(path.read_bytes() for path in sorted(Path(__file__).parent.glob("*.py"))), digest_size=8).hexdigest()


def trusted(check_files: list[Path] | None) -> bool:
    """Whether this job may reuse its records: not when the plan marked it forced (common.smk's onstart
    writes its check file, a declared input, so a cluster job reads it too)."""
    for path in check_files or []:
        try:
            if path.read_text(encoding="utf-8").startswith(FORCED):
                return False
        except OSError:
            continue
    return True


@cache
def library_key(*names: str) -> str:
    """The versions of Python and the libraries that write a job's bytes (`plan.library_versions`)."""
    return json.dumps(library_versions(("pyarrow", "numpy", *names)), sort_keys=True)


def content_id(path: Path) -> str:
    """Size and CRC-32 of a file's bytes: what changed, not when."""
    return f"{path.stat().st_size}:{file_crc(path)}"


def key(*parts: str) -> str:
    """Changes with the package's code, the library versions and the given parts."""
    return hashlib.blake2b("\x00".join((CODE_VERSION, library_key(), *parts)).encode(), digest_size=12).hexdigest()


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
        if document.get("key") != expected_key:
            return None
        outputs = [Written(record.parent / name, int(size), str(crc)) for name, size, crc in document["outputs"]]
        row = document["row"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Record(row, outputs) if all(whole(output) for output in outputs) else None


def save(record: Path, record_key: str, row: dict, outputs: list[Written]) -> None:
    """Written after the outputs themselves, so a record never vouches for a half-written run."""
    listed = [[Path(os.path.relpath(output.path, record.parent)).as_posix(), output.size, output.crc] for output in outputs]
    write_text_atomic(record, json.dumps({"key": record_key, "row": row, "outputs": listed}, default=_jsonable))


def _jsonable(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
