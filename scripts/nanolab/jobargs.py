"""A job's arguments from a file: `python -m nanolab batch @job.args --stage-output …`.

The workflow writes each job's settings, raw-file list and code fingerprint into one small file named
by its content and declares it as the job's input: new content is a new input file, so the job reruns.
Snakemake's own params would do the same, but comparing params makes it import pandas (~0.7 s on
every run, a no-op included), so the rules have none.
"""

from __future__ import annotations

import argparse


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
