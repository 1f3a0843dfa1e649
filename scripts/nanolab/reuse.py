"""Skip work whose inputs did not change, so a rerun after one edited file is fast.

A job reruns a whole batch; within it, a run whose input bytes, settings and code are what made
the output already on disk keeps that output. The proof is a small JSON record beside the output
(`_stage.json`, `_segments.json`; names starting with `_` are ignored by every Parquet reader).
Any change to the package's code invalidates every record.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from datetime import datetime
from pathlib import Path

CODE_VERSION = hashlib.blake2b(b"".join(path.read_bytes() for path in sorted(Path(__file__).parent.glob("*.py"))), digest_size=8).hexdigest()


def file_crc(path: Path) -> str:
    """Size and CRC-32 of a file's bytes: what changed, not when."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return f"{path.stat().st_size}:{crc:08x}"


def key(*parts: str) -> str:
    return hashlib.blake2b("\x00".join((CODE_VERSION, *parts)).encode(), digest_size=12).hexdigest()


def load(record: Path, expected_key: str) -> dict | None:
    """The row saved with the output, if it was made from the same inputs; None otherwise."""
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document["row"] if document.get("key") == expected_key else None


def save(record: Path, record_key: str, row: dict) -> None:
    """Written after the output itself, so a record never vouches for a half-written run."""
    temporary = record.with_name(f".{record.name}.tmp")
    temporary.write_text(json.dumps({"key": record_key, "row": row}, default=_jsonable), encoding="utf-8")
    os.replace(temporary, record)


def _jsonable(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
