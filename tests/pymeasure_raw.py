"""Test-only producer of raw files written by PyMeasure's own `Results` writer, the way the lab's
acquisition software writes them: header on creation, metadata inserted at start-up, then rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, Metadata, Parameter, Procedure, Results


class IV(Procedure):
    """The lab's IV procedure: parameters as in the format reference (names, units, types)."""

    burn_in_time = FloatParameter("Burn-in time", units="s", default=60)
    chained_execution = BooleanParameter("Chained execution", default=False)
    chip_group = Parameter("Chip group name", default="Alisson")
    chip_number = IntegerParameter("Chip number", default=67)
    information = Parameter("Information", default="None")
    irange = FloatParameter("Irange", units="A", default=0.001)
    laser_toggle = BooleanParameter("Laser toggle", default=False)
    laser_voltage = FloatParameter("Laser voltage", units="V", default=0.0)
    laser_wavelength = FloatParameter("Laser wavelength", units="nm", default=455)
    n_avg = IntegerParameter("N_avg", default=2)
    nplc = IntegerParameter("NPLC", default=1)
    procedure_version = Parameter("Procedure version", default="1.0.0")
    sample = Parameter("Sample", default="A")
    show_more = BooleanParameter("Show more", default=False)
    step_time = FloatParameter("Step time", units="s", default=0.01)
    vg = FloatParameter("VG", units="V", default=0.0)
    vsd_end = FloatParameter("VSD end", units="V", default=-1.0)
    vsd_start = FloatParameter("VSD start", units="V", default=1.0)
    vsd_step = FloatParameter("VSD step", units="V", default=0.05)
    start_time = Metadata("Start time", default=0.0)

    DATA_COLUMNS = ["Vsd (V)", "I (A)", "Plate T (degC)", "Ambient T (degC)", "Clock (ms)"]


def started_results(procedure: Procedure, path: Path, start_time: float, parameters: dict) -> Results:
    """`Results` with the header written and the metadata inserted, as at a procedure's start-up."""
    procedure.set_parameters(parameters)
    procedure.start_time = start_time
    procedure.evaluate_metadata()
    results = Results(procedure, str(path))
    results.store_metadata()
    return results


def write_iv_with_pymeasure(path: Path, voltages: np.ndarray, start_time: float, currents: np.ndarray | None = None, **parameters: object) -> Path:
    """An IV run through PyMeasure: `Results` writes the header, start-up inserts the metadata,
    then each data point is appended with `Results.format` as PyMeasure's recorder does.
    `currents` replaces the default (a noisy straight line) when given."""
    results = started_results(IV(), path, start_time, parameters)
    rng = np.random.default_rng(int(start_time) % 2**32)
    with open(path, "a", encoding=Results.ENCODING) as handle:
        for n, voltage in enumerate(np.asarray(voltages, dtype=float).tolist()):
            current = voltage * 1e-7 + float(rng.normal(0, 1e-12)) if currents is None else float(currents[n])
            point = {"Vsd (V)": voltage, "I (A)": current,
                     "Plate T (degC)": 25.0, "Ambient T (degC)": 22.0, "Clock (ms)": 10.0 * n}  # fmt: skip
            handle.write(results.format(point) + Results.LINE_BREAK)
    return path


class LaserCalibration(Procedure):
    """The lab's laser calibration: laser supply voltage ramp against the power meter's reading."""

    chained_execution = BooleanParameter("Chained execution", default=False)
    optical_fiber = Parameter("Optical fiber", default="F1 (M92L02)")
    laser_wavelength = FloatParameter("Laser wavelength", units="nm", default=455)
    n_avg = IntegerParameter("N_avg", default=2)
    procedure_version = Parameter("Procedure version", default="1.1.1")
    step_time = FloatParameter("Step time", units="s", default=2)
    laser_voltage_end = FloatParameter("Laser voltage end", units="V", default=5)
    laser_voltage_start = FloatParameter("Laser voltage start", units="V", default=0)
    laser_voltage_step = FloatParameter("Laser voltage step", units="V", default=0.1)
    sensor_model = Metadata("Sensor model", default="S120VC")
    start_time = Metadata("Start time", default=0.0)

    DATA_COLUMNS = ["VL (V)", "Power (W)"]


def write_calibration_with_pymeasure(path: Path, voltages: np.ndarray, powers: np.ndarray, start_time: float, **parameters: object) -> Path:
    """A laser-calibration run through PyMeasure's `Results`, as write_iv_with_pymeasure."""
    results = started_results(LaserCalibration(), path, start_time, parameters)
    with open(path, "a", encoding=Results.ENCODING) as handle:
        for voltage, power in zip(np.asarray(voltages, dtype=float).tolist(), np.asarray(powers, dtype=float).tolist()):
            handle.write(results.format({"VL (V)": voltage, "Power (W)": power}) + Results.LINE_BREAK)
    return path
