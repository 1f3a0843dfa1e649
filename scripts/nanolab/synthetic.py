"""Deterministic synthetic raw files in the lab's real format (PyMeasure `Results` layout).

For the bundled example data, tests and benchmarks at the lab's scale:

    python -m nanolab.synthetic example data/example_raw
    python -m nanolab.synthetic lab /tmp/raw               # like the lab's archive: 7,636 IV + 2,000 IVg/It, 60 days, ~750 MB
    python -m nanolab.synthetic lab /tmp/raw --scale 3     # 3x the days and runs
    python -m nanolab.synthetic lab /tmp/raw --small       # 10 days, 1,200 files
    python -m nanolab.synthetic tree /tmp/raw              # evenly spread short sweeps (tests)
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

LABELS = {
    "IV": ["Vsd (V)", "I (A)", "Plate T (degC)", "Ambient T (degC)", "Clock (ms)"],
    "IVg": ["Vg (V)", "I (A)"],
    "It": ["t (s)", "I (A)", "VL (V)"],
}
MODULE = "laser_setup.procedures"


def iv_voltages(
    vmax: float,
    step: float,
    *,
    start_negative: bool = False,
    fine_step: float | None = None,
    fine_window: float = 0.0,
    abort_after: int | None = None,
) -> np.ndarray:
    """0 → +Vmax → −Vmax → 0 (mirrored when start_negative), optionally finer within ±fine_window of 0,
    optionally cut after `abort_after` points like a sweep the operator stopped."""
    if fine_step:
        fine = np.arange(0.0, fine_window, fine_step)
        coarse = np.arange(fine_window, vmax, step) if fine_window < vmax else np.array([])
        up = np.concatenate([fine, coarse, [vmax]])
    else:
        up = np.linspace(0.0, vmax, int(round(vmax / step)) + 1)
    down = up[::-1]
    sweep = np.concatenate([up, down[1:], -up[1:], -down[1:]])
    sweep = np.round(-sweep if start_negative else sweep, 9) + 0.0  # no -0.0
    return sweep[:abort_after] if abort_after is not None else sweep


def render_raw(procedure: str, parameters: dict[str, str], start_time: float | None, columns: list[str], data: np.ndarray) -> str:
    """The text PyMeasure's `Results` writes: header, label row, one line per row."""
    lines = [f"#Procedure: <{MODULE}.{procedure}.{procedure}>", "#Parameters:"]
    lines += [f"#\t{name}: {value}" for name, value in sorted(parameters.items(), key=lambda item: item[0].lower())]
    if start_time is not None:
        lines += ["#Metadata:", f"#\tStart time: {float(start_time)!r}"]
    lines += ["#Data:", ",".join(columns)]
    lines += [",".join(map(repr, row)) for row in data.tolist()]
    return "\n".join(lines) + "\n"


def _common(rng: np.random.Generator, chip_number: int, laser_voltage: float, wavelength: int) -> dict[str, str]:
    return {
        "Chip group name": "Alisson",
        "Chip number": str(chip_number),
        "Information": "None",
        "Irange": "0.001 A",
        "Laser voltage": f"{laser_voltage:g} V",
        "Laser wavelength": f"{wavelength} nm",
        "N_avg": "2",
        "NPLC": "1",
        "Procedure version": "1.0.0",
        "Sample": str(rng.choice(["A", "B", "C"])),
        "Show more": "False",
    }


def make_run(
    procedure: str,
    rng: np.random.Generator,
    start_time: float,
    *,
    chip_number: int = 67,
    vmax: float = 1.0,
    step: float = 0.01,
    voltages: np.ndarray | None = None,
    light: bool | None = None,
    vg_step: float = 0.5,
    duration_s: float = 120.0,
) -> tuple[dict[str, str], list[str], np.ndarray]:
    """Parameters, column labels and data of one plausible run of IV, IVg or It."""
    light = bool(rng.random() < 0.3) if light is None else light
    laser_voltage = float(rng.choice([1.5, 2.5, 3.0])) if light else 0.0
    wavelength = int(rng.choice([365, 455, 565]))
    parameters = _common(rng, chip_number, laser_voltage, wavelength)
    parameters["Laser toggle"] = str(light)
    if procedure == "IV":
        v = iv_voltages(vmax, step) if voltages is None else np.asarray(voltages, dtype=float)
        resistance = rng.uniform(1e6, 1e8) / (1 + 2 * light)
        n = v.size
        data = np.column_stack([
            v,
            v / resistance + rng.normal(0, 1e-12, n),
            25 + rng.normal(0, 0.05, n),
            22 + rng.normal(0, 0.05, n),
            np.cumsum(rng.uniform(9, 12, n)),
        ])  # fmt: skip
        parameters.update({"Burn-in time": "60 s", "Chained execution": "False", "Step time": "0.01 s", "VG": "0 V",
                           "VSD start": f"{vmax:g} V", "VSD end": f"{-vmax:g} V", "VSD step": f"{step:g} V"})  # fmt: skip
    elif procedure == "IVg":
        vg = np.round(np.arange(35.0, -35.0 - 1e-9, -vg_step), 6)
        current = 1e-6 / (1 + np.exp(-(vg - rng.uniform(-5, 5)) / 4)) + rng.normal(0, 1e-10, vg.size)
        data = np.column_stack([vg, current])
        parameters.update({"Burn-in time": "60 s", "Step time": "0.01 s", "VDS": "0.1 V",
                           "VG start": "35 V", "VG end": "-35 V", "VG step": f"{vg_step:g} V"})  # fmt: skip
    elif procedure == "It":
        t = np.arange(0.0, duration_s, 0.5)
        laser_on = (t % 60) >= 30
        current = 1e-6 * (1 + 0.2 * laser_on * light) + rng.normal(0, 1e-9, t.size)
        data = np.column_stack([t, current, np.where(laser_on, laser_voltage, 0.0)])
        parameters.update({"Laser ON+OFF period": "60 s", "Sampling time (excluding Keithley)": "0.5 s",
                           "VDS": "0.1 V", "VG": "0 V"})  # fmt: skip
    else:
        raise ValueError(f"no synthetic generator for procedure {procedure!r}")
    return parameters, LABELS[procedure], data


def day_start_times(day: date, count: int, rng: np.random.Generator, timezone: str) -> list[float]:
    """Sorted epoch start times between 09:00 and 20:00 local time on `day`."""
    opening = datetime.combine(day, time(9), ZoneInfo(timezone)).timestamp()
    return sorted(opening + float(s) for s in rng.uniform(0, 11 * 3600, count).round(3))


def write_tree(
    root: Path,
    *,
    start_date: str,
    days: int,
    iv_per_day: int,
    ivg_per_day: int,
    it_per_day: int,
    seed: int,
    iv_step: float = 0.01,
    timezone: str = "America/Santiago",
) -> list[Path]:
    """`<root>/<YYYY-MM-DD>/<P><YYYY-MM-DD>_<n>.csv` for each day, as the acquisition PCs name files."""
    rng = np.random.default_rng(seed)
    paths = []
    first = date.fromisoformat(start_date)
    for offset in range(days):
        day = first + timedelta(days=offset)
        folder = root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for procedure, count in (("IV", iv_per_day), ("IVg", ivg_per_day), ("It", it_per_day)):
            for n, start in enumerate(day_start_times(day, count, rng, timezone), start=1):
                vmax = float(rng.choice([1.0, 2.0]))
                parameters, columns, data = make_run(procedure, rng, start, chip_number=int(rng.integers(60, 80)), vmax=vmax, step=iv_step)
                path = folder / f"{procedure}{day.isoformat()}_{n}.csv"
                path.write_text(render_raw(procedure, parameters, start, columns, data))
                paths.append(path)
    return paths


LAB_RUNS = {"IV": 7636, "IVg": 1000, "It": 1000}  # the lab's archive: 9,636 raw files over 60 days
LAB_DAYS = 60


def lab_iv_sweep(rng: np.random.Generator) -> tuple[float, float, np.ndarray]:
    """Vmax, step and voltages of a sweep as the lab runs them: 200-1,600 rows (median ~1,000),
    steps of 5-20 mV, a few aborted by the operator."""
    rows = int(np.clip(rng.normal(1060, 300), 201, 1600))
    step = float(rng.choice([0.005, 0.01, 0.02]))
    vmax = round(step * ((rows - 1) // 4), 9)
    sweep = iv_voltages(vmax, step)
    aborted = rng.random() < 0.03 and sweep.size > 300
    return vmax, step, sweep[: int(rng.integers(200, sweep.size))] if aborted else sweep


def write_lab_tree(root: Path, *, start_date: str, days: int, runs: dict[str, int], seed: int, timezone: str = "America/Santiago") -> list[Path]:
    """A tree shaped like the lab's archive: `runs` per procedure spread unevenly over `days`, each day
    measuring 1-3 chips (every run of the day is on one of them), IV sweeps of realistic length."""
    rng = np.random.default_rng(seed)
    first = date.fromisoformat(start_date)
    per_day = {procedure: rng.multinomial(count, np.full(days, 1 / days)) for procedure, count in runs.items()}
    paths = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        folder = root / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        chips = rng.choice(np.arange(60, 80), size=int(rng.integers(1, 4)), replace=False)
        for procedure, counts in per_day.items():
            for n, start in enumerate(day_start_times(day, int(counts[offset]), rng, timezone), start=1):
                vmax, step, voltages = lab_iv_sweep(rng) if procedure == "IV" else (1.0, 0.01, None)
                chip = int(rng.choice(chips))
                parameters, columns, data = make_run(
                    procedure, rng, start, chip_number=chip, vmax=vmax, step=step, voltages=voltages, vg_step=0.2, duration_s=260.0
                )
                path = folder / f"{procedure}{day.isoformat()}_{n}.csv"
                path.write_text(render_raw(procedure, parameters, start, columns, data))
                paths.append(path)
    return paths


def write_example_tree(root: Path) -> list[Path]:
    """The small tree bundled with the workflow: 4 days of IV, IVg and It plus the special cases."""
    paths = write_tree(root, start_date="2025-09-09", days=3, iv_per_day=4, ivg_per_day=2, it_per_day=2, seed=7, iv_step=0.05)
    rng = np.random.default_rng(8)
    zone = ZoneInfo("America/Santiago")
    noon = datetime(2025, 9, 12, 12, tzinfo=zone).timestamp()

    def write(relative: str, text: str | bytes) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        paths.append(path)

    def iv(start: float, voltages: np.ndarray, light: bool = False) -> tuple[dict[str, str], list[str], np.ndarray]:
        return make_run("IV", rng, start, voltages=voltages, light=light, vmax=1.0, step=0.05)

    sweep = iv_voltages(1.0, 0.05)
    write("2025-09-12/IV2025-09-12_1.csv", render_raw("IV", *_with_start(iv(noon, sweep, light=True), noon)))
    aborted = iv_voltages(1.0, 0.05, abort_after=50)  # stopped inside forward_negative
    write("2025-09-12/IV2025-09-12_2.csv", render_raw("IV", *_with_start(iv(noon + 900, aborted), noon + 900)))
    negative_first = iv_voltages(1.0, 0.05, start_negative=True)
    write("2025-09-12/IV2025-09-12_3.csv", render_raw("IV", *_with_start(iv(noon + 1800, negative_first), noon + 1800)))
    crlf = render_raw("IV", *_with_start(iv(noon + 2700, sweep), noon + 2700)).replace("\n", "\r\n")
    write("2025-09-12/IV2025-09-12_4.csv", crlf)
    parameters, columns, data = make_run("It", rng, noon + 3600)
    write("2025-09-12/It2025-09-12_1.csv", render_raw("It", parameters, None, columns, data))  # no metadata block
    old_start = datetime(2025, 9, 15, 16, tzinfo=zone).timestamp()
    write("Alisson_15_sept/Alisson67_015.csv", render_raw("IV", *_with_start(iv(old_start, sweep), old_start)))
    write("2025-09-12/broken_no_header.csv", "operator notes: sample A cracked, measurement repeated\nsee IV2025-09-12_4\n")
    return paths


def _with_start(run: tuple[dict[str, str], list[str], np.ndarray], start: float) -> tuple:
    parameters, columns, data = run
    return parameters, start, columns, data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nanolab.synthetic", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    example = commands.add_parser("example", help="the small bundled example tree")
    example.add_argument("root", type=Path)
    tree = commands.add_parser("tree", help="a tree at the lab's scale (default) or --small")
    tree.add_argument("root", type=Path)
    tree.add_argument("--small", action="store_true", help="10 days x (100 IV + 10 IVg + 10 It) = 1,200 files")
    tree.add_argument("--days", type=int, default=60)
    tree.add_argument("--iv-per-day", type=int, default=127)
    tree.add_argument("--ivg-per-day", type=int, default=17)
    tree.add_argument("--it-per-day", type=int, default=17)
    tree.add_argument("--seed", type=int, default=0)
    tree.add_argument("--start-date", default="2025-08-01")
    lab = commands.add_parser("lab", help="a tree shaped like the lab's archive (x --scale: more days, same days' shape)")
    lab.add_argument("root", type=Path)
    lab.add_argument("--scale", type=float, default=1.0, help="days and runs x this factor (3 = 180 days)")
    lab.add_argument("--small", action="store_true", help="10 days, 1,200 files (1,000 IV)")
    lab.add_argument("--seed", type=int, default=0)
    lab.add_argument("--start-date", default="2025-08-01")
    args = parser.parse_args(argv)
    if args.command == "lab":
        runs = {procedure: round(count * args.scale) for procedure, count in LAB_RUNS.items()}
        days = max(1, round(LAB_DAYS * args.scale))
        if args.small:
            runs, days = {"IV": 1000, "IVg": 100, "It": 100}, 10
        paths = write_lab_tree(args.root, start_date=args.start_date, days=days, runs=runs, seed=args.seed)
    elif args.command == "example":
        paths = write_example_tree(args.root)
    elif args.small:
        paths = write_tree(args.root, start_date=args.start_date, days=10, iv_per_day=100, ivg_per_day=10, it_per_day=10, seed=args.seed)
    else:
        paths = write_tree(args.root, start_date=args.start_date, days=args.days, iv_per_day=args.iv_per_day,
                           ivg_per_day=args.ivg_per_day, it_per_day=args.it_per_day, seed=args.seed)  # fmt: skip
    print(f"wrote {len(paths)} raw files under {args.root}")


if __name__ == "__main__":
    main()
