"""Job arguments from a file: what the workflow writes is what the job parses."""

from __future__ import annotations

import pytest
from nanolab.cli import parser
from nanolab.jobargs import args_text


def test_an_arguments_file_gives_the_same_namespace_as_the_command_line(tmp_path):
    args = ["--raw-root", "/data/raw with space", "--timezone", "America/Santiago", "--voltage-column", "vsd_V",
            "--dv-threshold", "0.001", "--min-segment-points", "5", "--raw-files-from", "lists/a b.json"]  # fmt: skip
    path = tmp_path / "job.args"
    path.write_text(args_text("stage_batch 2025-09-10_1-of-1; code of nanolab batch: 0123", args))
    tail = ["--schema", "s.yaml", "--stage-root", "st", "--segment-root", "se",
            "--stage-output", "a", "--segment-output", "b", "--points-output", "c"]  # fmt: skip
    from_file = parser().parse_args(["batch", f"@{path}", *tail])
    assert vars(from_file) == vars(parser().parse_args(["batch", *args, *tail]))
    assert str(from_file.raw_root) == "/data/raw with space" and from_file.dv_threshold == 0.001


def test_a_line_break_in_an_argument_is_refused_not_split():
    with pytest.raises(ValueError, match="line break"):
        args_text("x", ["--raw-root", "/data/two\nlines"])
