"""What results/ was built from, and what changed since: printed before the job list of every run.

Two small files inside results/ (so they travel with it):
- `.nanolab/raw_root`: the raw tree results/ belongs to, written by the first run that runs jobs.
  A run on another raw tree stops before any job, instead of pruning the results to that tree;
- `.nanolab/raw_tree.json`: the raw tree (path -> content hash, day) and the package's module
  hashes as of the last successful run; the next run lists what was added, edited, removed, moved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_text_atomic

RECORD_FOLDER = ".nanolab"
ROOT_RECORD = "raw_root"
TREE_RECORD = "raw_tree.json"
LISTED = 10  # paths shown per kind of change


def normalise_root(raw_root: str | Path) -> str:
    """Absolute, no trailing slash, symlinks resolved: one raw tree, one spelling."""
    return os.path.realpath(os.path.expanduser(str(raw_root)))


def recorded_root(results: Path) -> str | None:
    try:
        return (results / RECORD_FOLDER / ROOT_RECORD).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def record_root(results: Path, raw_root: str) -> None:
    """Written once, by the first run that runs jobs (never by -n)."""
    if recorded_root(results) is None:
        _write_atomic(results / RECORD_FOLDER / ROOT_RECORD, raw_root + "\n")


def root_mismatch(results: Path, raw_root: str) -> str | None:
    """One line naming both trees and the ways out, when results/ belongs to another raw tree."""
    recorded = recorded_root(results)
    if recorded is None or recorded == raw_root:
        return None
    return (
        f"{results}/ was built from raw_root {recorded}, but this run's raw_root is {raw_root}; nothing was run or removed. "
        f"Run with raw_root={recorded} (lab.yaml or --config), or build the other tree in another folder "
        f"(--directory <folder>) or after deleting {results}/; if the raw tree itself moved, write its new path into "
        f"{results / RECORD_FOLDER / ROOT_RECORD}."
    )


def results_inside_root(results: Path, raw_root: str) -> str | None:
    """One line when results/ lies inside the raw tree (or the tree inside results/): the workflow would write
    under raw_root and read its own tables as raw files, so no run would ever be a no-op."""
    folder = normalise_root(results)
    if not (Path(folder).is_relative_to(raw_root) or Path(raw_root).is_relative_to(folder)):
        return None
    return (
        f"results/ ({folder}) and raw_root {raw_root} overlap: a run would write into the raw tree and read its own "
        f"tables as raw files; nothing was run. Run from a folder outside the raw tree (--directory <folder>, "
        f"holding a lab.yaml), or set raw_root to the folder of the measurements."
    )


@dataclass
class TreeChanges:
    added: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.edited or self.removed or self.moved)


def diff_trees(before: dict[str, str], after: dict[str, str]) -> TreeChanges:
    """Compare {path: content hash} maps. A removed and an added path with the same (non-empty)
    content hash are one move."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    edited = sorted(path for path in set(before) & set(after) if before[path] != after[path])
    unmatched: dict[str, list[str]] = {}
    for path in removed:
        if before[path]:
            unmatched.setdefault(before[path], []).append(path)
    moved = []
    for path in added:
        sources = unmatched.get(after[path])
        if sources:
            moved.append((sources.pop(0), path))
    moved_from, moved_to = {a for a, _ in moved}, {b for _, b in moved}
    return TreeChanges(
        added=[p for p in added if p not in moved_to],
        edited=edited,
        removed=[p for p in removed if p not in moved_from],
        moved=moved,
    )


def describe_changes(changes: TreeChanges, files: int, limit: int = LISTED) -> str:
    """A few lines: counts, then up to `limit` paths of each kind."""
    if not changes:
        return f"nanolab: raw tree unchanged since results/ was last built ({files} files)"
    counts = [f"{len(items)} {kind}" for kind, items in vars(changes).items() if items]
    lines = [f"nanolab: raw tree changed since results/ was last built: {', '.join(counts)} ({files} files now)"]
    for kind, items in vars(changes).items():
        lines += [f"  {kind}: {_show(item)}" for item in items[:limit]]
        if len(items) > limit:
            lines.append(f"  {kind}: … and {len(items) - limit} more")
    return "\n".join(lines)


def _show(item: str | tuple[str, str]) -> str:
    return f"{item[0]} -> {item[1]}" if isinstance(item, tuple) else item


def describe_code_changes(before: dict[str, str], after: dict[str, str], affected: dict[str, set[str]]) -> str | None:
    """Which package modules changed since the last build and which rules' jobs they rerun."""
    changed = sorted(m for m in set(before) | set(after) if before.get(m) != after.get(m))
    if not before or not changed:
        return None
    rules = sorted(rule for rule, modules in affected.items() if modules & set(changed))
    return f"nanolab: code changed since results/ was last built: {', '.join(changed)} (reruns {', '.join(rules) or 'no rule'})"


def describe_library_changes(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> str | None:
    """Which library versions changed since the last build ({rule: {library: version}}) and the rules they rerun."""
    changed: dict[str, tuple[str | None, str | None]] = {}
    for rule in sorted(set(before) & set(after)):
        for name in sorted(set(before[rule]) | set(after[rule])):
            if before[rule].get(name) != after[rule].get(name):
                changed[name] = (before[rule].get(name), after[rule].get(name))
    if not changed:
        return None
    rules = sorted(rule for rule in set(before) & set(after) if before[rule] != after[rule])
    named = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changed.items())
    return f"nanolab: libraries changed since results/ was last built: {named} (reruns {', '.join(rules)}, redoing their outputs)"


def change_lines(
    previous: dict | None,
    now: dict[str, str],
    raw_root: str,
    code: dict[str, str],
    affected: Callable[[], dict[str, set[str]]],
    libraries: dict[str, dict[str, str]],
) -> list[str]:
    """What changed since results/ was last built: the raw tree ({path: content hash}), the package's
    modules (`affected()`: {rule: modules it runs}, asked only when the code changed: parsing costs) and
    the library versions ({rule: {library: version}})."""
    if previous is None:
        return [f"nanolab: {len(now)} raw files in {raw_root}; results/ has no record of a finished run yet"]
    before = {path: entry[0] for path, entry in previous["files"].items()}
    lines = [describe_changes(diff_trees(before, now), len(now))]
    if previous.get("code", {}) != code:
        lines.append(describe_code_changes(previous.get("code", {}), code, affected()) or "")
    lines.append(describe_library_changes(previous.get("libraries", {}), libraries) or "")
    return [line for line in lines if line]


def load_tree(results: Path) -> dict | None:
    """The last successful build's record: {'files': {path: [hash, day]}, 'code': {module: hash}}."""
    try:
        document = json.loads((results / RECORD_FOLDER / TREE_RECORD).read_text(encoding="utf-8"))
        return document if isinstance(document.get("files"), dict) else None
    except (OSError, ValueError, AttributeError):
        return None


def tree_after_run(previous: dict | None, files: dict[str, list], code: dict[str, str], days: set[str], libraries: dict | None = None) -> dict:
    """The record after a successful run; a run restricted to some days updates only those days
    (and the undated files, which every run's manifests job handles)."""
    if not days or previous is None:
        return {"files": files, "code": code} | ({"libraries": libraries} if libraries is not None else {})
    kept = {path: entry for path, entry in previous["files"].items() if entry[1] is not None and entry[1] not in days}
    updated = {path: entry for path, entry in files.items() if entry[1] is None or entry[1] in days}
    document = {"files": {**kept, **updated}, "code": previous.get("code", code)}
    if "libraries" in previous or libraries is not None:
        document["libraries"] = previous.get("libraries", libraries)
    return document


def save_tree(results: Path, document: dict) -> None:
    _write_atomic(results / RECORD_FOLDER / TREE_RECORD, json.dumps(document, sort_keys=True))


def _write_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text, private=True)
