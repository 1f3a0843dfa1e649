"""Benchmark the workflow at the lab's scale against the in-process baseline.

    python bench/run.py              # lab scale: 7,636 IV + 2,000 IVg/It runs over 60 days, ~750 MB
    python bench/run.py --scale 3    # 3x the days (and files)
    python bench/run.py --small      # 10 days, 1,200 files
    python bench/run.py --cores 2

Prints a table (wall, CPU of everything, CPU per raw file, CPU and peak RSS of the snakemake process itself,
jobs), the full run's split between work (the in-process baseline's CPU on the same data) and orchestration
(the rest), and writes it as JSON to bench/results/. Machines are noisy: each figure is the median of --repeat
runs; CPU seconds are less sensitive to other load than wall time. Each round runs `bench/floor.py` on the same
tree right after its full run; each of the performance issue's budgets is a ratio of two figures of one round,
and the median of that ratio over the rounds is printed beside its target (and each round's in brackets).

Trees of earlier runs are moved aside and deleted only after the last measurement: on ext4 without a
journal (this machine's disk), creating a file or folder near tens of thousands of just-deleted ones scans
them (`recently_deleted`) for ~10 s, measured 0.05 -> ~1 ms per mkdir or create. That cost would be the
harness's `rm -r`, not the workflow's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from nanolab.synthetic import write_lab_tree

REPO = Path(__file__).resolve().parents[1]
JOB_LINE = re.compile(r"^(?:local)?rule (\w+):", re.M)
NO_OP_RUNS = 5  # a no-op is ~2 s: the median of a few says more than one


@dataclass
class Measurement:
    case: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float | None
    own_cpu_s: float | None  # the snakemake process itself: scheduling and bookkeeping
    jobs: int | None


def tool_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def watch_process(pid: int, stop: threading.Event, result: list[float]) -> None:
    """Poll the top process's own peak RSS (VmHWM) and own CPU time (not its jobs') until it exits."""
    status, stat = Path(f"/proc/{pid}/status"), Path(f"/proc/{pid}/stat")
    ticks = os.sysconf("SC_CLK_TCK")
    while not stop.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    result[0] = max(result[0], int(line.split()[1]) / 1024)
            fields = stat.read_text().rsplit(")", 1)[1].split()
            result[1] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        except (OSError, ValueError, IndexError):
            pass
        stop.wait(0.05)


def timed(case: str, command: list[str], cwd: Path, watch_rss: bool = True) -> Measurement:
    """Wall and CPU time (process + all its children), peak RSS of the top process, jobs it ran."""
    os.sync()  # the previous case's writes (2 GB for a full run at 3x) are flushed now, not during this one
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop, seen = threading.Event(), [0.0, 0.0]
    watcher = threading.Thread(target=watch_process, args=(process.pid, stop, seen))
    if watch_rss:
        watcher.start()
    output, _ = process.communicate()
    wall = time.perf_counter() - started
    stop.set()
    if watch_rss:
        watcher.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{case} failed:\n{output[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    jobs = len(JOB_LINE.findall(output)) if "snakemake" in " ".join(command) else None
    return Measurement(case, wall, cpu, seen[0] if watch_rss else None, seen[1] if watch_rss else None, jobs)


def median_of(case: str, command: list[str], cwd: Path, times: int) -> Measurement:
    """A short case run `times` times in a row, each figure the median: one no-op varies by ±20 % here."""
    runs = [timed(case, command, cwd) for _ in range(times)]
    walls = sorted(m.wall_s for m in runs)
    print(f"{case}: {times} runs, wall {walls[0]:.2f}-{walls[-1]:.2f} s", flush=True)
    return Measurement(
        case,
        statistics.median(m.wall_s for m in runs),
        statistics.median(m.cpu_s for m in runs),
        statistics.median(m.peak_rss_mb or 0 for m in runs),
        statistics.median(m.own_cpu_s or 0 for m in runs),
        runs[0].jobs,
    )


TRIVIAL_SNAKEFILE = 'rule all:\n    input: "done.txt"\n\n\nrule done:\n    output: "done.txt"\n    shell: "touch {output}"\n'


def trivial_workdir(work: Path) -> Path:
    """A one-rule workflow, run once: its no-op is what any snakemake invocation costs here."""
    folder = work / "trivial"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text(TRIVIAL_SNAKEFILE)
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--quiet"], cwd=folder, env=tool_env(), check=True, capture_output=True)
    return folder


def generate(raw: Path, scale: float, small: bool, seed: int) -> tuple[int, int]:
    """Write the raw tree once per scale and seed (deterministic), reuse it afterwards; (files, bytes)."""
    marker = raw / ".generated.json"
    wanted = {"generator": "lab-v1", "scale": scale, "small": small, "seed": seed}
    if not (marker.exists() and json.loads(marker.read_text()) == wanted):
        shutil.rmtree(raw, ignore_errors=True)
        size = ["--small"] if small else ["--scale", str(scale)]
        subprocess.run([sys.executable, "-m", "nanolab.synthetic", "lab", str(raw), *size, "--seed", str(seed)], check=True)
        marker.write_text(json.dumps(wanted))
    files = list(raw.rglob("*.csv"))
    return len(files), sum(f.stat().st_size for f in files)


def write_config(work: Path, raw: Path, figures: bool) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["raw_root"] = str(raw)
    config["figures"] = figures  # off like the baseline: stage and segment only (figures are extra work)
    (work / "config.yaml").write_text(yaml.safe_dump(config))


def set_aside(path: Path) -> None:
    """Move an old tree into the trash folder (a rename): deleted by `empty_trash` after measuring."""
    if path.exists():
        trash = trash_folder(path.parent)
        trash.mkdir(exist_ok=True)
        path.rename(trash / f"{path.name}-{time.time_ns()}")


def trash_folder(work: Path) -> Path:
    return work / ".trash"


def empty_trash(work: Path, settle_s: float = 0.0) -> None:
    """Delete the set-aside trees, then let the file system settle before anything is timed."""
    if trash_folder(work).exists():
        shutil.rmtree(trash_folder(work))
        time.sleep(settle_s)


def fresh_workdir(work: Path, raw: Path) -> Path:
    set_aside(work)
    work.mkdir(parents=True)
    write_config(work, raw, figures=False)
    return work


def snakemake(cores: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", str(cores), *args]


def baseline(cores: int, raw: Path, out: Path) -> list[str]:
    """One plain Python process per core, each running the workflow jobs' one pass on its share of the files."""
    script = (
        "import sys, yaml; from pathlib import Path; from nanolab.pipeline import run_in_process;"
        "config = yaml.safe_load(open(sys.argv[3]));"
        "run_in_process(Path(sys.argv[1]), Path(sys.argv[2]), config, Path(sys.argv[4]), (int(sys.argv[5]), int(sys.argv[6])), fused=True)"
    )
    schema = REPO / config_value("procedure_schema")
    shards = [f"{sys.executable} -c '{script}' {raw} {out} {REPO / 'config.yaml'} {schema} {k} {cores}" for k in range(cores)]
    return ["bash", "-c", " & ".join(shards) + " & wait"]


def config_value(key: str) -> str:
    return yaml.safe_load((REPO / "config.yaml").read_text())[key]


def edit_one_file(raw: Path) -> None:
    """Change one IV file's content (a trailing blank line: new checksum, same data)."""
    paths = sorted(raw.rglob("IV*.csv"))
    path = paths[len(paths) // 2]
    path.write_text(path.read_text() + "\n")


def edit_one_value(raw: Path) -> None:
    """Change one current value mid-sweep in another IV file: its day's analysis and figure must be redone
    (a sweep's last row, the final 0 V, is in no segment: changing it changes nothing downstream)."""
    paths = sorted(raw.rglob("IV*.csv"))
    path = paths[len(paths) // 4]
    lines = path.read_text().splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines) if "," in line and not line.startswith("#")]  # the label row, then data
    middle = rows[len(rows) // 2]
    voltage, current, *rest = lines[middle].split(",")
    lines[middle] = ",".join([voltage, repr(2 * float(current) + 1e-9), *rest])
    path.write_text("".join(lines))


def add_new_day(raw: Path, seed: int) -> None:
    """A day of 50 files (40 IV + 5 IVg + 5 It) on 1-3 chips, like the lab's."""
    paths = write_lab_tree(raw, start_date="2099-01-01", days=1, runs={"IV": 40, "IVg": 5, "It": 5}, seed=seed + 1)
    assert len(paths) == 50 and (raw / "2099-01-01").is_dir()


SEGMENTATION_CHANGED = ["--config", "segmentation={dv_threshold: 0.002}"]  # the performance issue's case
ANALYSIS_CHANGED = ["--config", "analysis={poly_orders: [1, 3, 5]}"]


def run_once(cores: int, raw: Path, work: Path, seed: int) -> tuple[list[Measurement], dict]:
    """One round: every case, and the floor right after the full run (this machine's speed drifts by
    ~25 % within an hour: a ratio of two figures taken minutes apart in one round cancels most of it)."""
    measurements = []
    set_aside(work / "baseline")
    measurements.append(timed("in-process baseline", baseline(cores, raw, work / "baseline"), work, watch_rss=False))
    wd = fresh_workdir(work / "snakemake", raw)
    measurements.append(timed("dag build (-n, empty results)", snakemake(cores, "-n"), wd))
    measurements.append(timed("full run", snakemake(cores), wd))
    floor = floor_of(raw, work, measurements[-1].own_cpu_s or 0)
    for case, override in (("segmentation setting changed", SEGMENTATION_CHANGED), ("analysis setting changed", ANALYSIS_CHANGED)):
        measurements.append(timed(case, snakemake(cores, *override), wd))
        timed("back to config.yaml (not reported)", snakemake(cores), wd)
    measurements.append(median_of("no-op rerun", snakemake(cores), wd, NO_OP_RUNS))
    trivial = trivial_workdir(work)
    measurements.append(median_of("no-op, one-rule Snakefile", [sys.executable, "-m", "snakemake", "--cores", str(cores)], trivial, NO_OP_RUNS))
    edit_one_file(raw)
    measurements.append(timed("one raw file edited", snakemake(cores), wd))
    add_new_day(raw, seed)
    measurements.append(timed("new day of 50 files", snakemake(cores), wd))
    write_config(wd, raw, figures=True)
    measurements.append(timed("figures switched on (all days)", snakemake(cores), wd))
    edit_one_value(raw)
    measurements.append(timed("one value edited, figures on", snakemake(cores), wd))
    shutil.rmtree(raw / "2099-01-01")
    return measurements, floor


def floor_of(raw: Path, work: Path, snakemake_own_cpu_s: float) -> dict:
    """bench/floor.py on the same tree, in the same bench run: the budgets' reference."""
    out, figures = work / "floor", work / "floor.json"
    set_aside(out)
    command = [sys.executable, str(REPO / "bench" / "floor.py"), "--raw", str(raw), "--out", str(out), "--json", str(figures)]
    subprocess.run([*command, "--snakemake-own-cpu-s", f"{snakemake_own_cpu_s:.2f}"], env=tool_env(), check=True)
    set_aside(out)
    return json.loads(figures.read_text())


def budgets(by_case: dict[str, Measurement], floor: dict) -> list[tuple[str, float, float]]:
    """The performance issue's ratios, each (what, measured, target); all from this one bench run."""
    full, one_rule = by_case["full run"], by_case["no-op, one-rule Snakefile"].wall_s
    ratios = [
        ("full run CPU / floor CPU", full.cpu_s / floor["cpu_s"], 1.4),
        ("full run wall / floor wall bound", full.wall_s / floor["wall_bound_s"], 1.5),
        ("segmentation setting changed / full run (wall)", by_case["segmentation setting changed"].wall_s / full.wall_s, 0.5),
        ("all figures / full run (wall)", by_case["figures switched on (all days)"].wall_s / full.wall_s, 0.15),
        ("analysis setting changed / full run (wall)", by_case["analysis setting changed"].wall_s / full.wall_s, 0.1),
        ("no-op / one-rule no-op", by_case["no-op rerun"].wall_s / one_rule, 1.6),
        ("one raw file edited / one-rule no-op", by_case["one raw file edited"].wall_s / one_rule, 4),
        ("new day of 50 files / one-rule no-op", by_case["new day of 50 files"].wall_s / one_rule, 4),
        ("-n on empty results / one-rule no-op", by_case["dag build (-n, empty results)"].wall_s / one_rule, 3),
    ]
    peak = max(m.peak_rss_mb or 0 for m in by_case.values())
    return [*ratios, ("snakemake peak RSS, MB", peak, 300)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="10 days, 1,200 files instead of the lab's 60 days, 9,636")
    parser.add_argument("--scale", type=float, default=1.0, help="x the lab's days and files (3 = 180 days)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=1, help="report medians over this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    args = parser.parse_args()

    name = "small" if args.small else f"lab-x{args.scale:g}"
    raw = args.work / f"raw-{name}"
    files, raw_bytes = generate(raw, args.scale, args.small, args.seed)
    empty_trash(args.work, settle_s=15)  # left by an interrupted bench
    rounds = [run_once(args.cores, raw, args.work, args.seed) for _ in range(args.repeat)]
    runs, floors = [measurements for measurements, _ in rounds], [floor for _, floor in rounds]
    floor = {key: statistics.median(f[key] for f in floors) for key in ("cpu_s", "wall_bound_s", "work_cpu_s", "orchestration_cpu_s")}
    table = [
        Measurement(
            case=runs[0][i].case,
            wall_s=statistics.median(r[i].wall_s for r in runs),
            cpu_s=statistics.median(r[i].cpu_s for r in runs),
            peak_rss_mb=runs[0][i].peak_rss_mb and statistics.median(r[i].peak_rss_mb for r in runs),
            own_cpu_s=runs[0][i].own_cpu_s and statistics.median(r[i].own_cpu_s for r in runs),
            jobs=runs[0][i].jobs,
        )
        for i in range(len(runs[0]))
    ]
    by_case = {m.case: m for m in table}
    full, base = by_case["full run"], by_case["in-process baseline"]
    ratio = full.wall_s / base.wall_s
    print(f"\n{files} raw files ({raw_bytes / 1e6:.0f} MB), --cores {args.cores}, median of {args.repeat}")
    print(f"{'case':32} {'wall s':>8} {'CPU s':>8} {'CPU ms/file':>12} {'snakemake CPU s':>16} {'peak RSS MB':>12} {'jobs':>6}")
    for m in table:
        rss = f"{m.peak_rss_mb:.0f}" if m.peak_rss_mb else "-"
        own = f"{m.own_cpu_s:.2f}" if m.own_cpu_s else "-"
        per_file = f"{1000 * m.cpu_s / files:.2f}"
        print(f"{m.case:32} {m.wall_s:8.2f} {m.cpu_s:8.2f} {per_file:>12} {own:>16} {rss:>12} {m.jobs if m.jobs is not None else '-':>6}")
    orchestration = full.cpu_s - base.cpu_s
    print(f"full run / in-process baseline (wall): {ratio:.2f}")
    print(f"full run CPU {full.cpu_s:.1f} s = work {base.cpu_s:.1f} s (in-process baseline, {1000 * base.cpu_s / files:.2f} ms/file)"
          f" + orchestration {orchestration:.1f} s ({100 * orchestration / full.cpu_s:.0f} %: job start-ups, snakemake's own"
          f" {full.own_cpu_s or 0:.1f} s)")  # fmt: skip
    print(f"\nbudgets (performance issue), the floor {floor['cpu_s']:.1f} CPU-s, >= {floor['wall_bound_s']:.1f} s wall (median);")
    print(f"each the median of its ratio in each of the {args.repeat} rounds, in brackets:")
    per_round = [budgets({m.case: m for m in r}, f) for r, f in zip(runs, floors)]
    table_of_budgets = [(what, statistics.median(b[i][1] for b in per_round), target) for i, (what, _, target) in enumerate(per_round[0])]
    for i, (what, measured, target) in enumerate(table_of_budgets):
        each = ", ".join(f"{b[i][1]:.2f}" for b in per_round)
        print(f"  {what:50} {measured:7.2f} [{each}]  target <= {target:g}  {'ok' if measured <= target else 'NOT MET'}")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    report = {"files": files, "raw_bytes": raw_bytes, "cores": args.cores, "repeat": args.repeat, "small": args.small, "scale": args.scale,
              "ratio_full_over_baseline": ratio, "work_cpu_s": base.cpu_s, "orchestration_cpu_s": orchestration,
              "measurements": [asdict(m) for m in table], "floor": floor,
              "floors": floors, "budgets": [{"what": w, "measured": m, "target": t, "rounds": [b[i][1] for b in per_round]}
                                            for i, (w, m, t) in enumerate(table_of_budgets)]}  # fmt: skip
    path = out / f"bench-{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written {path}")
    empty_trash(args.work)


if __name__ == "__main__":
    main()
