"""Config checks that fit on one line: the first thing a user reads must name the bad key."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


def config_problems(config: dict, schema_path: str | Path) -> list[str]:
    """One readable line per schema violation, e.g. "batch_size: 'many' is not of type 'integer'"."""
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(map(str, error.absolute_path))
        problems.append(f"{where}: {error.message}" if where else error.message)
    return problems
