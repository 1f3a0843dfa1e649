"""Benchmark the workflow at the lab's scale against the in-process baseline.

    python bench/run.py              # lab scale: 7,636 IV + 2,000 IVg/It runs over 60 days
    python bench/run.py --small      # ~1,200 files
    python bench/run.py --cores 2

Prints a table (wall, CPU of everything, CPU and peak RSS of the snakemake process itself, jobs) and writes it as JSON to
bench/results/. Machines are noisy: each figure is the median of --repeat runs.
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

REPO = Path(__file__).resolve().parents[1]
LAB_SCALE = {"days": 60, "iv_per_day": 127, "ivg_per_day": 17, "it_per_day": 17}  # 7,620 IV + 2,040 others
SMALL_SCALE = {"days": 10, "iv_per_day": 100, "ivg_per_day": 10, "it_per_day": 10}  # 1,200 files
JOB_LINE = re.compile(r"^(?:local)?rule (\w+):", re.M)


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


def generate(raw: Path, scale: dict, seed: int) -> int:
    """Write the raw tree once per scale and seed (deterministic), reuse it afterwards."""
    marker = raw / ".generated.json"
    wanted = {**scale, "seed": seed}
    if not (marker.exists() and json.loads(marker.read_text()) == wanted):
        shutil.rmtree(raw, ignore_errors=True)
        args = ["--days", scale["days"], "--iv-per-day", scale["iv_per_day"], "--ivg-per-day", scale["ivg_per_day"],
                "--it-per-day", scale["it_per_day"], "--seed", seed, "--start-date", "2025-08-01"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "nanolab.synthetic", "tree", str(raw), *map(str, args)], check=True)
        marker.write_text(json.dumps(wanted))
    return sum(1 for _ in raw.rglob("*.csv"))


def fresh_workdir(work: Path, raw: Path) -> Path:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["raw_root"] = str(raw)
    config["figures"] = False  # like the baseline: stage and segment only (figures are extra work)
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def snakemake(cores: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", str(cores), *args]


def baseline(cores: int, raw: Path, out: Path) -> list[str]:
    """One plain Python process per core, each running the core functions on its share of the files."""
    script = (
        "import sys, yaml; from pathlib import Path; from nanolab.pipeline import run_in_process;"
        "config = yaml.safe_load(open(sys.argv[3]));"
        "run_in_process(Path(sys.argv[1]), Path(sys.argv[2]), config, Path(sys.argv[4]), (int(sys.argv[5]), int(sys.argv[6])))"
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


def add_new_day(raw: Path, seed: int) -> None:
    day = raw / "2099-01-01"
    subprocess.run([sys.executable, "-m", "nanolab.synthetic", "tree", str(raw), "--days", "1", "--iv-per-day", "40",
                    "--ivg-per-day", "5", "--it-per-day", "5", "--seed", str(seed + 1), "--start-date", "2099-01-01"],
                   check=True)  # fmt: skip
    assert day.is_dir()


def run_once(cores: int, raw: Path, work: Path, seed: int) -> list[Measurement]:
    measurements = []
    shutil.rmtree(work / "baseline", ignore_errors=True)
    measurements.append(timed("in-process baseline", baseline(cores, raw, work / "baseline"), work, watch_rss=False))
    wd = fresh_workdir(work / "snakemake", raw)
    measurements.append(timed("dag build (-n, empty results)", snakemake(cores, "-n"), wd))
    measurements.append(timed("full run", snakemake(cores), wd))
    measurements.append(timed("no-op rerun", snakemake(cores), wd))
    edit_one_file(raw)
    measurements.append(timed("one raw file edited", snakemake(cores), wd))
    add_new_day(raw, seed)
    measurements.append(timed("new day of 50 files", snakemake(cores), wd))
    shutil.rmtree(raw / "2099-01-01")
    return measurements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="~1,200 files instead of the lab's ~9,700")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=1, help="report medians over this many runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    args = parser.parse_args()

    scale = SMALL_SCALE if args.small else LAB_SCALE
    raw = args.work / ("raw-small" if args.small else "raw-lab")
    files = generate(raw, scale, args.seed)
    runs = [run_once(args.cores, raw, args.work, args.seed) for _ in range(args.repeat)]
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
    ratio = by_case["full run"].wall_s / by_case["in-process baseline"].wall_s
    print(f"\n{files} raw files, --cores {args.cores}, median of {args.repeat}")
    print(f"{'case':32} {'wall s':>8} {'CPU s':>8} {'snakemake CPU s':>16} {'peak RSS MB':>12} {'jobs':>6}")
    for m in table:
        rss = f"{m.peak_rss_mb:.0f}" if m.peak_rss_mb else "-"
        own = f"{m.own_cpu_s:.2f}" if m.own_cpu_s else "-"
        print(f"{m.case:32} {m.wall_s:8.2f} {m.cpu_s:8.2f} {own:>16} {rss:>12} {m.jobs if m.jobs is not None else '-':>6}")
    print(f"full run / in-process baseline (wall): {ratio:.2f}")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    report = {"files": files, "cores": args.cores, "repeat": args.repeat, "small": args.small,
              "ratio_full_over_baseline": ratio, "measurements": [asdict(m) for m in table]}  # fmt: skip
    path = out / f"bench-{'small' if args.small else 'lab'}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
