"""The least CPU the lab's output layout can cost on this machine, whatever the workflow around it.

    python bench/floor.py                        # the bench's lab-scale tree (bench/work/raw-lab-x1)
    python bench/floor.py --raw <tree> --days 60

Writes the layout the lab asked for (one Parquet per raw file, one per IV segment, Hive folders) for
every raw file of a tree in one process, with none of the workflow's care: no manifests, no checks of
cells or damage, no reuse records, no temporary files, parameters taken as text or float, an IV run cut
into four equal quarters instead of being segmented, a segment file with only its data columns and
segment id. Each measured figure is therefore below what any correct pipeline pays for the same files.
Then adds the least orchestration a day-granular Snakemake design needs: one job per measurement day
(raw changes re-run only their day), each paying a Python start with pyarrow and numpy imported.

Prints CPU (user + system) per raw file, split into reading, the staged write and the segment writes.
Last, the figures' floor: one matplotlib Figure of the day figure's size and 2 x 2 panels (titles,
axis labels, ticks) saved as PNG once per day with nothing drawn in it, reused across days (a new
Figure per day costs more), plus matplotlib's import in each of 2 jobs (one per core).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
WRITE_OPTIONS = {"use_dictionary": False, "write_statistics": False}  # the workflow's cheapest measured options
STARTS = 7  # job start-ups timed; the median is used


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def header_and_table(data: bytes) -> tuple[str, dict[str, str], pa.Table]:
    """Procedure, `Name: value` header lines as text, and the data table typed float64 by the CSV reader."""
    head, _, body = data.partition(b"#Data:\n")
    labels, _, rows = body.partition(b"\n")
    lines = head.decode("utf-8").splitlines()
    procedure = next(line.split(".")[-1] for line in lines if line.startswith("#Procedure:"))
    parameters = dict(line.lstrip("#\t").split(": ", 1) for line in lines if line.startswith("#\t") and ": " in line)
    names = labels.decode("utf-8").split(",")
    table = pacsv.read_csv(
        pa.py_buffer(rows),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64())),
    )
    return procedure.strip(">' "), parameters, table


def constant(text: str, rows: int) -> pa.Array:
    """A header value repeated: as float64 when it reads as a number (numpy fill), else as text."""
    try:
        return pa.array(np.full(rows, float(text.split(" ")[0])))
    except ValueError:
        return pa.repeat(pa.array([text])[0], rows)


def write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **WRITE_OPTIONS)
    path.write_bytes(sink.getvalue().to_pybytes())


def stage_and_cut(raw: Path, out: Path, index: int, clock: dict[str, float]) -> None:
    t0 = cpu_s()
    procedure, parameters, table = header_and_table(raw.read_bytes())
    t1 = cpu_s()
    rows = table.num_rows
    staged = pa.table(table.columns + [constant(v, rows) for v in parameters.values()], names=table.column_names + list(parameters))
    t_constants = cpu_s()
    run = out / "raw_measurements" / f"proc={procedure}" / f"date={raw.parent.name}" / f"run_id={index}"
    write(staged, run / "part-000.parquet")
    t2 = cpu_s()
    if procedure == "IV":
        quarters = np.linspace(0, rows, 5).astype(int)
        for k, (start, stop) in enumerate(zip(quarters[:-1], quarters[1:])):
            segment = table.slice(start, stop - start)
            segment = segment.append_column("segment_id", pa.array(np.full(segment.num_rows, k)))
            write(segment, out / "iv_segments" / f"run_id={index}" / f"segment={k}" / "part-000.parquet")
    t3 = cpu_s()
    clock["read"] += t1 - t0
    clock["constants"] += t_constants - t1
    clock["staged write"] += t2 - t_constants
    clock["segment writes"] += t3 - t2


def job_start_cpu_s() -> float:
    """CPU of a Python start that imports what the floor itself uses (median of a few); real jobs import more."""
    command = [sys.executable, "-c", "import numpy, pyarrow, pyarrow.parquet, pyarrow.csv"]
    samples = []
    for _ in range(STARTS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(command, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(samples)


def empty_figures_cpu_s(days: int, out: Path) -> tuple[float, float]:
    """CPU of importing matplotlib, and the median CPU of saving one empty four-panel day figure."""
    before = cpu_s()
    import matplotlib  # imported here, not at the top: its import is one of the figures measured

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    imported = cpu_s() - before
    figure = Figure(figsize=(12, 8.5), dpi=72)  # the day figure's size (plots.py)
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(2, 2).flat)
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for day in range(days):
        start = cpu_s()
        figure.suptitle(f"IV sweeps on day {day}")
        for panel, ax in enumerate(axes):
            ax.set(title=f"panel {panel}", xlabel="Vsd (V)", ylabel="I (A)")
        figure.savefig(out / f"day-{day}.png")
        samples.append(cpu_s() - start)
    return imported, statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", type=Path, default=REPO / "bench" / "work" / "raw-lab-x1")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "work" / f"floor-{time.strftime('%Y%m%dT%H%M%S')}")
    parser.add_argument("--snakemake-own-cpu-s", type=float, default=2.9, help="snakemake's own CPU for a full run (make bench prints it)")
    parser.add_argument("--json", type=Path, help="also write the floor's figures here (bench/run.py reads them)")
    args = parser.parse_args()
    files = sorted(args.raw.rglob("*.csv"))
    days = len({path.parent for path in files})
    clock = dict.fromkeys(["read", "constants", "staged write", "segment writes"], 0.0)
    wall = time.perf_counter()
    for index, path in enumerate(files):
        stage_and_cut(path, args.out, index, clock)
    wall = time.perf_counter() - wall
    work = sum(clock.values())
    start = job_start_cpu_s()
    orchestration = days * start + args.snakemake_own_cpu_s
    per_file = {name: 1000 * seconds / len(files) for name, seconds in clock.items()}
    print(f"{len(files)} raw files over {days} days, {args.raw}")
    print(f"layout floor, work: {work:.1f} CPU-s = {1000 * work / len(files):.2f} ms/file (one process, {wall:.1f} s wall)")
    for name, ms in per_file.items():
        print(f"  {name:15s} {ms:.2f} ms/file")
    own = args.snakemake_own_cpu_s
    print(f"orchestration floor: {days} day jobs x {start:.2f} CPU-s start-up + snakemake {own:.1f} s = {orchestration:.1f} CPU-s")
    total = work + orchestration
    print(f"floor, total: {total:.1f} CPU-s = {1000 * total / len(files):.2f} ms/file; wall on 2 cores >= {total / 2:.1f} s")
    imported, per_day = empty_figures_cpu_s(days, args.out / "figures")
    figures = 2 * imported + days * per_day
    print(f"figures floor: 2 jobs x {imported:.2f} CPU-s matplotlib import + {days} empty four-panel PNGs x {per_day:.3f} CPU-s"
          f" = {figures:.1f} CPU-s; wall on 2 cores >= {figures / 2:.1f} s")  # fmt: skip
    if args.json:
        figures_of = {"work_cpu_s": work, "orchestration_cpu_s": orchestration, "cpu_s": total, "wall_bound_s": total / 2, "figures_cpu_s": figures}
        args.json.write_text(json.dumps(figures_of | {"files": len(files), "days": days, "ms_per_file": per_file}))
    print(f"(written to {args.out}; delete it when done, not right before timing anything)")


if __name__ == "__main__":
    main()
