"""The laser power on a V_max group's sample (lab-analysis-2.md §2, §4), chosen by rule, never by listing order.

A run is dark when its laser toggle is off or its laser voltage is 0 (or missing): zero power. A lit run's
calibration is the latest LaserCalibration run of the same wavelength that started before it (the same
day's nearest one before it when there is one, else the latest earlier one); none otherwise. Incident
power is the calibration interpolated at the laser voltage, clamped at its ends; effective power is
incident / beam-to-sample ratio, 0 when incident ≤ 0. A group whose runs differ in laser settings gets no
power at all and says so: its hysteresis pools them (the tables cannot be split after the fact).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .io import read_parquet

RUN_COLUMNS = ["run_id", "proc", "status", "date", "start_dt", "laser_toggle", "laser_voltage_V", "wavelength_nm", "output", "output_bytes"]


@dataclass(frozen=True)
class Calibration:
    run_id: str
    date: str
    start: datetime
    wavelength_nm: float
    output: str
    output_bytes: int


@dataclass(frozen=True)
class Setting:
    """What decides a run's power: dark, or lit at a voltage and wavelength."""

    lit: bool
    laser_voltage_V: float
    wavelength_nm: float | None

    def __str__(self) -> str:
        return f"{self.laser_voltage_V:g} V at {nanometres(self.wavelength_nm)}" if self.lit else "dark"


def nanometres(wavelength_nm: float | None) -> str:
    """A wavelength for a note; a lit run's header may lack it (null when missing or damaged)."""
    return "an unknown wavelength" if wavelength_nm is None else f"{wavelength_nm:g} nm"


def run_setting(row: dict) -> Setting:
    voltage = row.get("laser_voltage_V")
    if row.get("laser_toggle") is False or not voltage:  # toggle off, 0 V or no voltage: dark
        return Setting(False, 0.0, None)
    return Setting(True, float(voltage), row.get("wavelength_nm"))


def calibrations_of(manifest: pa.Table) -> list[Calibration]:
    """The staged LaserCalibration runs with a start time and a wavelength, oldest first."""
    rows = manifest.filter(pc.and_(pc.equal(manifest["proc"], "LaserCalibration"), pc.equal(manifest["status"], "ok"))).to_pylist()
    found = [
        Calibration(r["run_id"], r["date"], r["start_dt"], float(r["wavelength_nm"]), r["output"], r["output_bytes"])
        for r in rows
        if r["start_dt"] is not None and r["wavelength_nm"] is not None and r["output"]
    ]
    return sorted(found, key=lambda c: (c.start, c.run_id))


def choose(calibrations: list[Calibration], wavelength_nm: float | None, start: datetime | None) -> Calibration | None:
    """The latest calibration of this wavelength started before `start` (ties: the larger run_id)."""
    if wavelength_nm is None or start is None:
        return None
    earlier = [c for c in calibrations if c.wavelength_nm == wavelength_nm and c.start <= start]
    return earlier[-1] if earlier else None


def calibration_curve(calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """(laser voltage, power) ascending in voltage, finite points only."""
    table = read_parquet(calibration.output)
    if not {"vl_V", "power_W"} <= set(table.column_names):
        return np.zeros(0), np.zeros(0)
    vl = table["vl_V"].to_numpy(zero_copy_only=False).astype(np.float64)
    power = table["power_W"].to_numpy(zero_copy_only=False).astype(np.float64)
    ok = np.isfinite(vl) & np.isfinite(power)
    order = np.argsort(vl[ok], kind="stable")
    return vl[ok][order], power[ok][order]


@dataclass(frozen=True)
class Power:
    laser_toggle: bool | None
    laser_voltage_V: float | None
    wavelength_nm: float | None
    calibration_run_id: str | None
    incident_power_W: float | None
    effective_power_W: float | None
    power_note: str | None  # why there is no calibration or no power, or where the calibration came from


class PowerFinder:
    """Incident and effective power of groups of runs; each calibration file is read once."""

    def __init__(self, calibrations: list[Calibration], ratio: float) -> None:
        self.calibrations, self.ratio = calibrations, ratio
        self.curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def curve(self, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
        if calibration.run_id not in self.curves:
            try:
                self.curves[calibration.run_id] = calibration_curve(calibration)
            except OSError:
                self.curves[calibration.run_id] = (np.zeros(0), np.zeros(0))
        return self.curves[calibration.run_id]

    def of_group(self, runs: list[dict], day: str) -> Power:
        if not runs:
            return Power(None, None, None, None, None, None, "no run of this group in the stage manifest")
        settings = Counter(run_setting(run) for run in runs)
        toggles = {run.get("laser_toggle") for run in runs}
        toggle = toggles.pop() if len(toggles) == 1 else None
        if len(settings) > 1:
            listed = ", ".join(f"{setting} ({n} runs)" for setting, n in sorted(settings.items(), key=str))
            return Power(toggle, None, None, None, None, None, f"runs differ in laser settings: {listed}")
        setting = next(iter(settings))
        if not setting.lit:
            return Power(toggle, 0.0, None, None, 0.0, 0.0, "dark")
        chosen = [choose(self.calibrations, setting.wavelength_nm, run.get("start_dt")) for run in runs]
        if any(c is None for c in chosen):
            note = f"no calibration at {nanometres(setting.wavelength_nm)} started before the run"
            return Power(toggle, setting.laser_voltage_V, setting.wavelength_nm, None, None, None, note)
        used = sorted({c.run_id: c for c in chosen}.values(), key=lambda c: c.start)
        powers = []
        for calibration in chosen:
            vl, power = self.curve(calibration)
            powers.append(float(np.interp(setting.laser_voltage_V, vl, power)) if vl.size else np.nan)
        if np.isnan(powers).any():
            note = "calibration run without readable points: " + ", ".join(c.run_id for c in used)
            return Power(toggle, setting.laser_voltage_V, setting.wavelength_nm, None, None, None, note)
        incident = float(np.mean(powers))  # one value when every run has the same calibration
        days = sorted({c.date for c in used})
        note = "calibrated the same day" if days == [day] else "calibrated on " + ", ".join(days)
        if len(used) > 1:
            note += f"; mean over {len(used)} calibrations of the group's runs"
        effective = incident / self.ratio if incident > 0 else 0.0
        if incident <= 0:
            note += "; calibrated power ≤ 0 at this voltage (below the sensor's threshold)"
        ids = ",".join(c.run_id for c in used)
        return Power(toggle, setting.laser_voltage_V, setting.wavelength_nm, ids, incident, effective, note)


def read_runs(manifest_path: Path) -> pa.Table:
    """The stage manifest's columns that say when and how each run was lit."""
    table = read_parquet(manifest_path)
    present = [name for name in RUN_COLUMNS if name in table.column_names]
    table = table.select(present)
    for name in RUN_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.bool_() if name == "laser_toggle" else pa.string()))
    return table


POWER_FIELDS = [
    pa.field("laser_toggle", pa.bool_()),
    pa.field("laser_voltage_V", pa.float64()),
    pa.field("wavelength_nm", pa.float64()),
    pa.field("calibration_run_id", pa.string()),
    pa.field("incident_power_W", pa.float64()),
    pa.field("effective_power_W", pa.float64()),
    pa.field("power_note", pa.string()),
]


def with_power(coercive: pa.Table, group_runs: pa.Table, runs: dict[str, dict], finder: PowerFinder, day: str) -> pa.Table:
    """The coercive table with each group's laser settings and power (POWER_FIELDS) appended."""
    keys = [name for name in group_runs.column_names if name != "run_id"]
    members: dict[tuple, list[dict]] = {}
    for row in group_runs.to_pylist():
        members.setdefault(tuple(row[k] for k in keys), []).append(runs.get(row["run_id"]))
    found: dict[tuple, Power] = {}
    values: dict[str, list] = {f.name: [] for f in POWER_FIELDS}
    for row in coercive.select(keys).to_pylist():
        key = tuple(row[k] for k in keys)
        if key not in found:
            listed = members.get(key, [])
            missing = [run for run in listed if run is None]
            found[key] = (
                Power(None, None, None, None, None, None, "a run of this group is not in the stage manifest")
                if missing
                else finder.of_group(listed, day)
            )
        for name in values:
            values[name].append(getattr(found[key], name))
    for f in POWER_FIELDS:
        coercive = coercive.append_column(f, pa.array(values[f.name], f.type))
    return coercive
