"""The versions of Python and the libraries that decide the bytes a job writes: the same function makes
the arguments files (an upgrade reruns the job) and the jobs' reuse keys (an upgrade redoes its outputs).
A job module: nothing here is built at DAG time only."""

from __future__ import annotations

import glob
import os
import platform
import sys
from functools import cache


def library_versions(names: tuple[str, ...]) -> dict[str, str]:
    """{'python': '3.11.7', 'pyarrow': '26.0.1', …}. A job has the libraries imported and reads their
    `__version__`; at DAG time nothing is imported for it (pyarrow ~0.2 s, matplotlib ~1 s): the installed
    metadata says."""
    versions = {"python": platform.python_version()}
    for name in names:
        versions[name] = getattr(sys.modules.get(name), "__version__", None) or installed_version(name)
    return versions


@cache
def installed_version(name: str) -> str:
    """The version in the name of the first `<name>-<version>.dist-info` on sys.path, as `import` finds
    the package first (metadata.version parses the METADATA headers: ~10 ms a library)."""
    for folder in sys.path:
        for found in glob.glob(os.path.join(glob.escape(folder or "."), f"{name}-*.dist-info")):
            return os.path.basename(found)[len(name) + 1 : -len(".dist-info")]
    return "not installed"


def describe_versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())
