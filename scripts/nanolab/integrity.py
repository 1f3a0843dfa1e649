"""Is every output the manifests vouch for on disk, whole? Cheap checks run before each run is planned.

The per-run Parquet files are not declared Snakemake outputs (10,000 declared outputs made a no-op
rerun 4.3 s instead of ~1 s), so Snakemake cannot see one go missing or get truncated. Instead each
batch manifest records the size of every file it lists (`output_bytes`, `segment_bytes`), and before
the DAG is built every listed file is stat'ed against it: 0.13 s for 40,000 files, where opening each
to read its Parquet footer took 8.5 s. A batch with a damaged output gets its *check file* rewritten;
the check file is a declared input of the batch's job, now newer than the batch manifest, so
Snakemake's own mtime trigger reruns that batch and everything downstream of it.

Declared outputs (batch and merged manifests, figures, tables) are Snakemake's to recreate when
missing; truncated in place, Snakemake does not notice, so Parquet and PNG files are checked by their
tail (a whole file ends with its footer / IEND chunk) and the manifests job's text outputs against
the sizes it records beside them (`OUTPUT_SIZES`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import outputs
from .atomic import write_text_atomic
from .reuse import FORCED

PARQUET_MAGIC = b"PAR1"
PNG_TRAILER = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # empty IEND chunk: the last 12 bytes of every whole PNG
OUTPUT_SIZES = "_outputs.json"  # written by the manifests job beside the merged stage manifest
WHOLE = "whole\n"  # a check file's text when its batch is whole (mtime 0: older than any output)


class Expected(NamedTuple):  # a tuple: 40,000 (path, size) pairs are checked without building one each
    path: str
    size: int | None  # None: written before sizes were recorded; only its presence can be checked


@dataclass(frozen=True)
class Damage:
    path: str
    expected: int | None
    found: int | None  # None: missing
    detail: str = ""

    def describe(self) -> str:
        if self.found is None:
            return f"{self.path} (missing)"
        if self.detail:
            return f"{self.path} ({self.detail})"
        return f"{self.path} ({self.found} bytes, written as {self.expected})"


def stage_outputs(manifest: dict[str, list]) -> list[Expected]:
    """Staged Parquet files a stage batch manifest lists as ok (columns as Python lists)."""
    sizes = manifest.get("output_bytes") or [None] * len(manifest["output"])
    return [Expected(out, size) for out, status, size in zip(manifest["output"], manifest["status"], sizes) if status == "ok" and out]


def segment_outputs(manifest: dict[str, list]) -> list[Expected]:
    """`segment=<k>/part-000.parquet` of every run a segment batch manifest lists as ok."""
    sizes = manifest.get("segment_bytes") or [None] * len(manifest["output"])
    expected = []
    for folder, status, count, run_sizes in zip(manifest["output"], manifest["status"], manifest["n_segments"], sizes):
        if status != "ok" or not folder:
            continue
        run_sizes = run_sizes or [None] * (count or 0)
        expected += [Expected(f"{folder}/segment={k}/part-000.parquet", size) for k, size in enumerate(run_sizes)]
    return expected


def analysis_outputs(manifest: dict[str, list]) -> list[Expected]:
    """The day tables a month's analysis manifest lists."""
    return [Expected(out, size) for out, size in zip(manifest["output"], manifest["output_bytes"])]


LISTED = {
    "stage": (("output", "status", "output_bytes"), stage_outputs),
    "segment": (("output", "status", "n_segments", "segment_bytes"), segment_outputs),
    "analysis": (("output", "output_bytes"), analysis_outputs),
}


def listed_outputs(batch_manifest: str | Path, kind: str) -> tuple[list[Expected], list[str]]:
    """What a batch manifest (kind 'stage', 'segment' or 'analysis') says is on disk, and for a segment
    manifest the days that have analysis tables and figures (`outputs.iv_days`); raises if unreadable."""
    import pyarrow.parquet as pq  # only for a manifest written since the last run: a no-op run imports no pyarrow (~0.17 s)

    columns, expected = LISTED[kind]
    with pq.ParquetFile(batch_manifest) as parquet:
        present = [name for name in (*columns, "date") if name in parquet.schema_arrow.names]
        table = parquet.read(columns=present, use_threads=False).to_pydict()
    return expected(table), outputs.iv_days(table) if kind == "segment" else []


def find_damage(expected: Iterable[Expected | tuple[str, int | None]]) -> list[Damage]:
    """Files missing or not of the size they were written with: one stat each, nothing opened."""
    damage = []
    for path, written in expected:
        try:
            size = os.stat(path).st_size
        except OSError:
            damage.append(Damage(path, written, None))
            continue
        if written is not None and size != written:
            damage.append(Damage(path, written, size))
    return damage


def _tail(path: str | Path, count: int) -> tuple[int, bytes]:
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(max(size - count, 0))
        return size, handle.read(count)


def parquet_is_whole(path: str | Path) -> bool:
    """Ends with a footer length that fits in the file and the magic bytes: a truncated file does not."""
    size, tail = _tail(path, 8)
    return size >= 12 and tail[4:] == PARQUET_MAGIC and int.from_bytes(tail[:4], "little") <= size - 12


def png_is_whole(path: str | Path) -> bool:
    size, tail = _tail(path, len(PNG_TRAILER))
    return tail == PNG_TRAILER


def check_batch_manifest(batch_manifest: str, kind: str) -> list[Damage]:
    """The batch manifest itself, then every output it lists; [] when it is missing (Snakemake reruns it)."""
    return check_batch_manifests({batch_manifest: kind}, None)[batch_manifest]


def check_batch_manifests(manifests: dict[str, str], index_path: Path | None) -> dict[str, list[Damage]]:
    """{batch manifest: kind} -> {batch manifest: damage}: each listed file stat-ed against its size."""
    return check_and_list(manifests, index_path)[0]


def check_and_list(manifests: dict[str, str], index_path: Path | None) -> tuple[dict[str, list[Damage]], dict[str, list[str]]]:
    """The damage of each batch manifest (as `check_batch_manifests`) and the days each whole segment
    manifest that could be read has analysis tables and figures for (`outputs.iv_days`)."""
    listed, damage = read_listed(manifests, index_path)
    for manifest in manifests:
        if manifest not in damage:
            paths, sizes = listed[manifest][1:3] if manifest in listed else ([], [])  # missing: nothing listed to check
            damage[manifest] = find_damage(zip(paths, sizes))
    return damage, {manifest: entry[3] for manifest, entry in listed.items()}


def read_listed(manifests: dict[str, str], index_path: Path | None) -> tuple[dict[str, list], dict[str, list[Damage]]]:
    """What each batch manifest lists, {manifest: [[size, mtime], paths, sizes, days]}, and the damage of those
    that are unreadable. Cached in `index_path` by the manifest's size and mtime: a no-op run reads no
    Parquet file. Also called after a successful run, so the next run finds the index up to date."""
    index = _load_index(index_path)
    listed: dict[str, list] = {}
    unreadable: dict[str, list[Damage]] = {}
    changed = False
    for manifest, kind in manifests.items():
        try:
            stat = os.stat(manifest)
        except OSError:
            continue
        key = [stat.st_size, stat.st_mtime_ns]
        entry = index.get(manifest)
        if entry is None or entry[0] != key or len(entry) != 4:
            try:
                if not parquet_is_whole(manifest):
                    raise ValueError("not a whole Parquet file")
                items, days = listed_outputs(manifest, kind)
            except (OSError, ValueError, KeyError) as error:
                unreadable[manifest] = [Damage(manifest, None, stat.st_size, f"{stat.st_size} bytes, unreadable: {error}")]
                continue
            entry, changed = [key, [item.path for item in items], [item.size for item in items], days], True
        listed[manifest] = entry
    if index_path is not None and (changed or listed.keys() != index.keys()):  # comparing 40,000 entries costs more
        _write(index_path, json.dumps(listed))
    return listed, unreadable


def _load_index(index_path: Path | None) -> dict[str, list]:
    try:
        document = json.loads(index_path.read_text(encoding="utf-8"))  # type: ignore[union-attr]
        return document if isinstance(document, dict) else {}
    except (AttributeError, OSError, ValueError):
        return {}


def check_declared(paths: Iterable[str], sizes: dict[str, int]) -> list[Damage]:
    """Declared outputs truncated in place: Parquet and PNG by their tail, others against `sizes`.
    Missing ones are left to Snakemake, which reruns their job anyway."""
    damage = []
    for path in paths:
        files = sorted(str(p) for p in Path(path).glob("*.png")) if os.path.isdir(path) else [path]
        for file in files:
            try:
                size = os.path.getsize(file)
                if file.endswith(".parquet") and not parquet_is_whole(file):
                    damage.append(Damage(file, None, size, f"{size} bytes, not a whole Parquet file"))
                elif file.endswith(".png") and not png_is_whole(file):
                    damage.append(Damage(file, None, size, f"{size} bytes, not a whole PNG image"))
                elif file in sizes and size != sizes[file]:
                    damage.append(Damage(file, sizes[file], size))
            except OSError:
                continue  # vanished meanwhile: missing, Snakemake's case
    return damage


def load_output_sizes(record: str | Path) -> dict[str, int] | None:
    """Sizes the manifests job recorded for its outputs; None when the record is missing or unreadable."""
    try:
        document = json.loads(Path(record).read_text(encoding="utf-8"))
        return {str(path): int(size) for path, size in document.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def save_output_sizes(record: Path, outputs: Iterable[Path]) -> Path:
    """Written last by the job, so a record exists only when every output it names is whole."""
    sizes = {str(path): path.stat().st_size for path in outputs}
    return write_text_atomic(record, json.dumps(sizes, indent=0, sort_keys=True) + "\n")


def check_file(checks_root: str, output: str) -> str:
    """The check file of one job, named after the output it vouches for."""
    return f"{checks_root}/{output}.txt"


def write_check(path: str | Path, damage: list[Damage]) -> None:
    """Damaged: list it, with the time, so the text (and Snakemake's checksum of it) differs from any
    earlier check and the mtime is newer than the job's output. Whole: 'whole', mtime 0 (never newer)."""
    path = Path(path)
    if damage:
        lines = [f"damaged outputs found {time.strftime('%Y-%m-%d %H:%M:%S')} ({time.time_ns()}):", *(d.describe() for d in damage)]
        _write(path, "\n".join(lines) + "\n")
        return
    try:
        if path.stat().st_mtime_ns == 0:
            return  # the usual case: one stat
    except OSError:
        pass
    _write(path, WHOLE)
    os.utime(path, ns=(0, 0))


def write_forced(path: str | Path, days: Iterable[str] = ()) -> None:
    """A forced job's check file: the job reads it (`reuse.forced_days`) and reuses no record of the
    forced `days` (of any day when none are given: a force without `days=…`)."""
    scope = f" days={','.join(sorted(days))}" if days else ""
    _write(Path(path), f"{FORCED}{scope} {time.strftime('%Y-%m-%d %H:%M:%S')} ({time.time_ns()}): no reuse record of these days applies\n")


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text, private=True)  # at DAG time: a concurrent `snakemake -n` may write too


def damage_line(output: str, damage: list[Damage], shown: int = 5) -> str:
    """One line per damaged job for the run's log: the output it is rerun for and up to `shown` files."""
    named = "; ".join(d.describe() for d in damage[:shown])
    more = f"; and {len(damage) - shown} more" if len(damage) > shown else ""
    return f"nanolab: rerunning the job of {output}: {len(damage)} damaged output{'s' if len(damage) != 1 else ''}: {named}{more}"
