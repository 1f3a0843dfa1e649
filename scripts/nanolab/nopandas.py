"""Jobs run without pandas: `without_pandas()` first thing in a job's main()."""

from __future__ import annotations

import sys


class NoPandas:
    """Makes `import pandas` fail at once in a job process (a `sys.meta_path` finder: any object with
    `find_spec`; subclassing importlib.abc.MetaPathFinder would import importlib.abc, ~15-25 ms a job).

    pyarrow imports pandas (~0.5 s CPU, more than the interpreter and pyarrow together) the first
    time it converts any Python object (a list, a scalar), only to ask whether the object is a pandas
    one. A job never holds one, so it need not pay: pyarrow takes the ImportError as "no pandas"."""

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not used by nanolab jobs", name=name)
        return None


def without_pandas() -> None:
    if "pandas" not in sys.modules and not any(isinstance(finder, NoPandas) for finder in sys.meta_path):
        sys.meta_path.insert(0, NoPandas())
