"""Stress test: many short-lived job processes, counting abnormal exits.

pyarrow 26 was seen to abort at interpreter exit under load ("terminate called without an active
exception", 10 of 1,200 short-lived processes). This starts N real `python -m nanolab` staging and
segmentation processes on a tiny batch, two at a time (like `--cores 2`), and reports how many
died abnormally. Not part of the test suite: it takes minutes.

    python bench/stress_exit.py --processes 1200
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from nanolab.synthetic import write_tree

REPO = Path(__file__).resolve().parents[1]


def commands(work: Path, raw: Path, files: list[Path], k: int) -> list[str]:
    out = work / f"out{k % 4}"
    manifest = out / f"batch{k}.parquet"
    stage = [sys.executable, "-m", "nanolab", "stage", "--raw-root", str(raw), "--out-root", str(out / "02"),
             "--schema", str(REPO / "workflow/schemas/procedures.yaml"), "--timezone", "America/Santiago",
             "--output", str(manifest), "--", *map(str, files)]  # fmt: skip
    segment = [sys.executable, "-m", "nanolab", "segment", "--stage-manifest", str(manifest), "--out-root",
               str(out / "03"), "--voltage-column", "vsd_V", "--dv-threshold", "0.001", "--min-segment-points", "5",
               "--output", str(out / f"segments{k}.parquet")]  # fmt: skip
    return [stage, segment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=1200)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw = work / "raw"
        files = write_tree(raw, start_date="2025-09-01", days=1, iv_per_day=4, ivg_per_day=1, it_per_day=1, seed=3)
        outcomes: Counter[str] = Counter()
        aborts: list[str] = []
        started = time.perf_counter()
        running: list[subprocess.Popen] = []
        queue = [c for k in range(args.processes // 2) for c in commands(work, raw, files, k)]
        # a stage and its segmentation must run in order: pairs go through one slot after another
        pairs = [queue[i : i + 2] for i in range(0, len(queue), 2)]
        while pairs or running:
            while pairs and len(running) < args.parallel:
                stage, segment = pairs.pop()
                running.append(subprocess.Popen(["bash", "-c", f"{shlex.join(stage)} && {shlex.join(segment)}"],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))  # fmt: skip
            for process in list(running):
                if process.poll() is not None:
                    running.remove(process)
                    stderr = process.stderr.read()
                    outcomes["ok" if process.returncode == 0 else f"exit {process.returncode}"] += 1
                    if "terminate called" in stderr:
                        aborts.append(stderr[-300:])
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
    print(f"{args.processes} job processes in {elapsed:.0f} s: {dict(outcomes)} (pairs); pyarrow aborts seen: {len(aborts)}")
    for text in aborts[:3]:
        print(text)


if __name__ == "__main__":
    main()
