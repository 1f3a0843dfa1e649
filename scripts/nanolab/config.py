"""Config checks that fit on one line: the first thing a user reads must name the bad key, the value
and the form that is accepted.

`snakemake --config key=value` hands over strings for anything but ints, floats and the exact words
True/False, and the mapping form (`'segmentation={dv_threshold: 0.01}'`) gives strings only; values
are therefore coerced by the schema's types before validation.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .atomic import write_text_atomic
from .schema import read_yaml

BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
LIST_SEPARATOR = re.compile(r"[,\s]+")


def accepted_form(schema: dict) -> str:
    """What a value must look like, in words, from its schema (e.g. 'a number > 0')."""
    kind = schema.get("type")
    if kind == "boolean":
        return "true or false"
    if kind in ("integer", "number"):
        words = "an integer" if kind == "integer" else "a number"
        if "minimum" in schema:
            words += f" >= {schema['minimum']}"
        if "exclusiveMinimum" in schema:
            words += f" > {schema['exclusiveMinimum']}"
        return words
    if kind == "array":
        return "a list, each " + accepted_form(schema.get("items", {}))
    if kind == "object":
        return "a mapping of " + ", ".join(schema.get("properties", {}))
    if "title" in schema:  # e.g. "date (YYYY-MM-DD)"
        return f"a {schema['title']}"
    return "text"


def example(key: str, schema: dict) -> str:
    """How to give the key on the command line; nested keys need the mapping form."""
    value = schema.get("default", "…")
    parent, _, child = key.rpartition(".")
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, list):
        items = [str(item) for item in value] or ["2025-09-11", "2025-09-12"]  # no default: days
        value = f"[{', '.join(items)}]" if parent else ",".join(items)  # a mapping takes YAML's list form
    if parent:
        return f"--config '{parent}={{{child}: {value}}}'"
    return f"--config {key}={value}"


def coerce_value(value: object, schema: dict) -> object:
    """The value as the schema's type; ValueError when it cannot be read as that type."""
    kind = schema.get("type")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word not in BOOLEAN_WORDS:
            raise ValueError(value)
        return BOOLEAN_WORDS[word]
    if kind == "integer" and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
    if kind == "number" and isinstance(value, str):
        number = float(value.strip())
        if number != number:  # nan
            raise ValueError(value)
        return number
    if kind == "array":
        items = [part for part in LIST_SEPARATOR.split(value.strip()) if part] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError(value)
        return [coerce_value(item, schema.get("items", {})) for item in items]
    if kind == "string" and isinstance(value, datetime.date):
        return value.isoformat()  # YAML reads an unquoted 2025-09-11 as a date
    return value


def unflatten(config: dict, schema: dict) -> dict:
    """`segmentation.dv_threshold: 0.01` (a config file, or a future --config) merged into `segmentation`."""
    result: dict = {}
    for key, value in config.items():
        parent, _, child = str(key).partition(".")
        if child and isinstance(schema.get("properties", {}).get(parent), dict):
            nested = result.setdefault(parent, {})
            if isinstance(nested, dict):
                nested.update(unflatten({child: value}, schema["properties"][parent]))
            continue
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key].update(value)
        else:
            result[key] = value
    return result


def coerce_config(config: dict, schema: dict, prefix: str = "") -> tuple[dict, list[str]]:
    """The config with command-line strings turned into the schema's types, and one line per value
    that cannot be (key, value, accepted form, an example)."""
    properties = schema.get("properties", {})
    coerced, problems = {}, []
    for key, value in unflatten(config, schema).items():
        name = f"{prefix}{key}"
        sub = properties.get(key)
        if sub is None and isinstance(schema.get("additionalProperties"), dict):
            sub = schema["additionalProperties"]  # a mapping of free keys (per-chip overrides), each of this schema
        if sub is None:
            problems.append(f"{name}: unknown key (known: {', '.join(properties)})")
            coerced[key] = value
        elif sub.get("type") == "object" and isinstance(value, dict):
            coerced[key], nested = coerce_config(value, sub, f"{name}.")
            problems += nested
        else:
            try:
                coerced[key] = coerce_value(value, sub)
            except (ValueError, TypeError):
                problems.append(f"{name}: {value!r} is not accepted; use {accepted_form(sub)} (e.g. {example(name, sub)})")
                coerced[key] = value
    return coerced, problems


def subschema(schema: dict, path: list[str]) -> dict:
    for part in path:
        schema = schema.get("properties", {}).get(part) or schema.get("items", {})
    return schema


def config_problems(config: dict, schema: dict) -> list[str]:
    """One readable line per schema violation, e.g. "batch_size: 'many' is not of type 'integer'; use an integer >= 1"."""
    import jsonschema  # ~0.1 s CPU: only when a config is validated, not on a run whose config was (`validated`)

    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        path = [str(part) for part in error.absolute_path if not isinstance(part, int)]
        where = ".".join(map(str, error.absolute_path))
        if error.validator == "additionalProperties":
            known = ", ".join(subschema(schema, path).get("properties", {}))
            problems.append(f"{where + ': ' if where else ''}{error.message} (known keys: {known})")
            continue
        sub = subschema(schema, path)
        hint = f"; use {accepted_form(sub)} (e.g. {example('.'.join(path), sub)})" if path else ""
        problems.append(f"{where}: {error.message}{hint}" if where else error.message)
    return problems


def checked_config(config: dict, schema_path: str | Path) -> tuple[dict, list[str]]:
    """Coerce, then validate: the config to run with and every problem, one line each."""
    schema = read_yaml(schema_path)
    coerced, problems = coerce_config(config, schema)
    return coerced, problems or config_problems(coerced, schema) or value_problems(coerced)


def value_problems(config: dict) -> list[str]:
    """What the schema cannot say: a timezone that is not one made every raw file a reject (none could be dated)."""
    name = config.get("timezone")
    try:
        if name is not None:
            ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return [f"timezone: {name!r} is not an IANA timezone; use one such as America/Santiago (e.g. --config timezone=America/Santiago)"]
    return []


def value_notes(config: dict) -> list[str]:
    """Settings that run but give less than they seem to ask: the chip history shows one polynomial order's
    hysteresis and coercive field, and the analysis fits only `analysis.poly_orders`."""
    orders, order = config["analysis"]["poly_orders"], config["lab_analysis"]["history_order"]
    if order in orders:
        return []
    return [
        f"nanolab: lab_analysis.history_order {order} is not among analysis.poly_orders {orders}: the chip history's"
        f" hysteresis and coercive-field columns stay empty (add {order} to poly_orders, or pick one of them,"
        f" e.g. --config 'lab_analysis={{history_order: {orders[-1]}}}')"
    ]


def validated(config: dict, schema_path: str | Path, check: Callable[[dict], dict], memo: Path, version: str) -> dict:
    """`check(config)` (the validation that fills in the schema's defaults, or raises), remembered in `memo`
    for this config, schema, this module and `version` (of `check` and what it calls): a run with the
    config of the last one imports no validator (~0.1 s CPU). Only a result that JSON keeps exactly is
    remembered."""
    parts = [config, Path(schema_path).read_text(encoding="utf-8"), Path(__file__).read_text(encoding="utf-8"), version]
    key = hashlib.blake2b(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()
    try:
        document = json.loads(memo.read_text(encoding="utf-8"))
        if document["key"] == key:
            return document["config"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = check(config)
    try:
        if json.loads(json.dumps(result)) == result:
            write_text_atomic(memo, json.dumps({"key": key, "config": result}), private=True)  # two runs may write it
    except (TypeError, ValueError, OSError):
        pass  # not JSON (e.g. a date): validated again next time
    return result
