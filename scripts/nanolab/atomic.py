"""Files that appear whole or not at all, and say what was written (size, CRC-32).

No pyarrow here: the workflow's DAG-time code (catalog, integrity check, job arguments) uses these,
and importing pyarrow and numpy costs every snakemake start ~0.17 s."""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Written:
    """What a write put on disk: a later `os.stat` (size) or a read (CRC) verifies it is still whole."""

    path: Path
    size: int
    crc: str  # CRC-32 of the file's bytes, 8 hex digits


def temporary_for(path: Path) -> Path:
    """A fixed hidden name beside the target: a job killed mid-write leaves it behind, and the rerun
    that rewrites the target replaces it (batches are disjoint and Snakemake locks the results)."""
    return path.with_name(f".{path.name}.tmp")


def write_bytes_atomic(data: pa.Buffer | bytes, path: Path, private: bool = False) -> Written:
    """Write to a hidden temp file beside `path`, then rename: readers never see a half-written file,
    and a failed write (a full disk) leaves nothing behind. `private`: a temp name of this process's
    own, for files that two snakemake processes may write at once (records written at DAG time)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp") if private else temporary_for(path)
    try:
        try:
            handle = open(temporary, "wb")
        except FileNotFoundError:  # first file of its folder: mkdir only then (a mkdir costs ~0.2 ms here)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(temporary, "wb")
        with handle:
            handle.write(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return Written(path, len(data), f"{zlib.crc32(data):08x}")


def write_text_atomic(path: Path, text: str, private: bool = False) -> Path:
    return write_bytes_atomic(text.encode("utf-8"), Path(path), private).path


def link_or_copy(source: Path, target: Path) -> Path:
    """`target` with the bytes of `source`: a hard link (no copy, the same mtime: a kept output linked
    into a folder Snakemake emptied is not rewritten), or a copy where links are not allowed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(target)
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    return target


def write_kept(data: bytes, kept: Path, target: Path) -> Path:
    """`target` with `data`, linked from `kept`, which is written only when its bytes differ: a page whose
    content is unchanged keeps its mtime although Snakemake emptied the declared folder holding it."""
    try:
        unchanged = kept.read_bytes() == data
    except OSError:
        unchanged = False
    if not unchanged:
        write_bytes_atomic(data, kept)
    return link_or_copy(kept, target)


def file_crc(path: Path) -> str:
    """CRC-32 of a file's bytes, 8 hex digits."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"
