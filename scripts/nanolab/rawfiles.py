"""What makes a raw file one the workflow reads, and the reasons it is not: shared by the catalog (at DAG
time) and the staging job, so neither imports the other."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCE_FORK = "macOS resource fork (._ file), not a measurement"
OUTSIDE_ROOT = "symlink to a file outside raw_root: not read"
NO_DATA_ROWS = "header but no data rows"


def unknown_procedure(name: str) -> str:
    """The reject reason of a procedure the schema does not know (the catalog's and the stage job's)."""
    return f"unknown procedure {name!r} (not in the procedure schema)"


def is_resource_fork(name: str) -> bool:
    return name.startswith("._")


def escapes_root(path: Path, raw_root: Path) -> bool:
    """A symlink whose target lies outside raw_root: never read (policy: raw_root bounds what we touch)."""
    if not path.is_symlink():
        return False
    target = Path(os.path.realpath(path))  # unlike Path.resolve, never raises on a symlink loop
    return not target.is_relative_to(os.path.realpath(raw_root))
