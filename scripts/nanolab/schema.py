"""The lab's procedure schema (workflow/schemas/procedures.yaml) as typed, read-only lookups."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .jobargs import write_once

PARAMETER_TYPES = ("float", "float_no_unit", "int", "bool", "str", "datetime")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_label(label: str) -> str:
    """Case- and punctuation-insensitive key for a column label or parameter name ("Plate T (°C)" -> "platetdegc")."""
    return _NOT_ALNUM.sub("", label.lower().replace("°", "deg").replace("\ufffd", "deg"))


@dataclass(frozen=True)
class ParameterSpec:
    name: str  # canonical column name
    type: str


@dataclass(frozen=True)
class ProcedureSpec:
    name: str
    columns: tuple[str, ...]  # canonical data columns, in the order they are written
    column_by_label: dict[str, str]  # normalized label or synonym -> canonical name
    parameter_by_key: dict[str, ParameterSpec]  # normalized header name -> spec

    def canonical_column(self, label: str) -> str | None:
        return self.column_by_label.get(normalize_label(label))

    def parameter(self, header_name: str) -> ParameterSpec | None:
        return self.parameter_by_key.get(normalize_label(header_name))


@dataclass(frozen=True)
class LabSchema:
    procedures: dict[str, ProcedureSpec]

    def procedure(self, name: str) -> ProcedureSpec | None:
        return self.procedures.get(name)


def _parameter_lookup(entries: dict[str, dict]) -> dict[str, ParameterSpec]:
    lookup: dict[str, ParameterSpec] = {}
    for header_name, entry in entries.items():
        if entry["type"] not in PARAMETER_TYPES:
            raise ValueError(f"parameter {header_name!r}: unknown type {entry['type']!r}")
        spec = ParameterSpec(entry["name"], entry["type"])
        for key in (header_name, *entry.get("aliases", ())):
            lookup[normalize_label(key)] = spec
    return lookup


def parse_schema(document: dict) -> LabSchema:
    """Build lookups from the YAML document; raises ValueError on an inconsistent schema."""
    vocabulary: dict[str, list[str]] = document["columns"]
    common = _parameter_lookup(document.get("common_parameters", {}))
    procedures = {}
    for name, entry in document["procedures"].items():
        columns = tuple(entry["columns"])
        unknown = [c for c in columns if c not in vocabulary]
        if unknown:
            raise ValueError(f"procedure {name}: columns {unknown} are not in the column vocabulary")
        by_label = {normalize_label(c): c for c in columns}
        for column in columns:
            by_label.update({normalize_label(label): column for label in vocabulary[column]})
        parameters = dict(common) if entry.get("common_parameters", True) else {}
        parameters.update(_parameter_lookup(entry.get("parameters", {})))
        procedures[name] = ProcedureSpec(name, columns, by_label, parameters)
    return LabSchema(procedures)


def read_yaml(path: str | Path) -> object:
    """libyaml's parser where PyYAML was built with it: the config schema loads in 1.4 ms instead of 13 ms
    (every snakemake start). Same safe types."""
    import yaml  # ~15 ms: not in the jobs, which read the procedure schema's JSON copy (`load_schema`)

    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_schema(path: str | Path) -> LabSchema:
    """From procedures.yaml, or from the JSON copy of it the workflow gives its batch jobs (`schema_copy`)."""
    if Path(path).suffix == ".json":
        with open(path, encoding="utf-8") as handle:
            return parse_schema(json.load(handle))
    return parse_schema(read_yaml(path))


def schema_copy(document: dict, folder: Path) -> Path:
    """The parsed procedure schema as JSON in `folder`, named by its content (written once): a batch job
    reads it without importing PyYAML (~15 ms CPU a job), and a changed schema is a new input file."""
    text = json.dumps(document)  # in the YAML's order: the parsed schema's repr is part of every staging reuse key
    return write_once(folder / f"procedures_{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}.json", text)
