"""A job's arguments from a file: `python -m nanolab batch @job.args --stage-output …`.

The workflow writes each job's settings, raw-file list and code fingerprint into one small file named
by its content and declares it as the job's input: new content is a new input file, so the job reruns.
Snakemake's own params would do the same, but comparing params makes it import pandas (~0.7 s on
every run, a no-op included), so the rules have none.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from .atomic import write_text_atomic


class JobArgumentParser(argparse.ArgumentParser):
    """`@file` arguments, one per line (spaces kept); lines starting with `#` are comments."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(fromfile_prefix_chars="@", **kwargs)  # type: ignore[arg-type]

    def convert_arg_line_to_args(self, arg_line: str) -> list[str]:
        return [] if arg_line.startswith("#") else [arg_line]


def args_text(comment: str, args: list[object]) -> str:
    """The file's content: a comment line saying what it is for, then one argument per line."""
    values = [str(arg) for arg in args]
    if any("\n" in value or "\r" in value for value in values):
        raise ValueError(f"an argument with a line break cannot go into an arguments file: {values!r}")
    return "".join(f"{line}\n" for line in [f"# {comment}", *values])


def args_file(folder: Path, rule_name: str, label: str, comment: str, args: list[object]) -> tuple[Path, str]:
    """(path, content) of a job's arguments file, named by its content: new content, new input file."""
    text = args_text(comment, args)
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return folder / rule_name / f"{label}_{digest}.args", text


def write_once(path: Path, text: str) -> Path:
    """A content-addressed file (its name says what it holds): written only when missing."""
    if not path.exists():
        write_text_atomic(path, text, private=True)
    return path


def content_name(count: int, text: str) -> str:
    """`<count>-files_<digest>.json`: a list named by what it holds."""
    return f"{count}-files_{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}.json"


def remove_others(folder: Path, patterns: dict[str, str], keep: set[str]) -> None:
    """Lists and arguments files no job of the current plan uses ({subfolder: glob pattern})."""
    for subfolder, pattern in patterns.items():
        for path in (folder / subfolder).glob(pattern):
            if str(path) not in keep:
                path.unlink(missing_ok=True)
