"""Every job's entry point, once: `python -m nanolab.<module> @job.args …` runs `job.main(...)`.

A job refuses pandas first (pyarrow would import it, ~0.45 s CPU a job), reads its arguments (one per
line from the arguments file the workflow wrote; a job that reuses work adds `--code` and `--check`),
logs to its log and runs its work; its reuse engine comes from `engine(args, kind)`.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from . import reuse
from .jobargs import JobArgumentParser
from .nopandas import without_pandas

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def main(
    prog: str,
    description: str | None,
    arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], object],
    argv: list[str] | None = None,
    reuses: bool = False,
) -> None:
    without_pandas()
    parser = JobArgumentParser(prog=prog, description=description)
    arguments(parser)
    if reuses:
        reuse.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    run(args)


def engine(args: argparse.Namespace, kind: str) -> reuse.Engine:
    """The job's reuse engine for one kind of output: its code's fingerprint, what a force covers."""
    return reuse.engine(args.code, kind, args.check)
