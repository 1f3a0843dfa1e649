"""Each chip's history: per day, chip and V_max group one row of the numbers the lab compares across days
(lab-analysis-2.md §5), from that day's fits, hysteresis summary, peaks and coercive field. A day's rows
depend on that day's tables only, so an edited raw file changes only its day's rows; any number of days
and groups.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .subtraction import key_columns

VALUE_COLUMNS = [
    ("n_runs", pa.int64()),
    ("resistance_ohm", pa.float64()),
    ("resistance_MOhm", pa.float64()),
    ("r_squared", pa.float64()),
    ("hysteresis_order", pa.int64()),
    ("hysteresis_n_points", pa.int64()),
    ("hysteresis_mean_nA", pa.float64()),
    ("hysteresis_std_nA", pa.float64()),
    ("hysteresis_max_nA", pa.float64()),
    ("hysteresis_min_nA", pa.float64()),
    ("peak_v_V", pa.float64()),
    ("peak_i_nA", pa.float64()),
    ("e_coercive_pos_V_cm", pa.float64()),
    ("e_coercive_neg_V_cm", pa.float64()),
    ("laser_voltage_V", pa.float64()),
    ("effective_power_W", pa.float64()),
    ("note", pa.string()),
]


def _by_key(table: pa.Table, keys: list[str], **equal: object) -> dict[tuple, dict]:
    for name, value in equal.items():
        table = table.filter(pc.equal(table[name], value)) if name in table.column_names else table.slice(0, 0)
    return {tuple(row[k] for k in keys): row for row in table.to_pylist()}


def _nano(value: float | None) -> float | None:
    return None if value is None else value * 1e9


def history_rows(day: str, fits: pa.Table, summary: pa.Table, peaks: pa.Table, coercive: pa.Table, order: int) -> pa.Table:
    """One row per group of the day's fits: resistance, R², n_runs, the order-`order` hysteresis statistics
    and absolute peak (nA), and E_c with the laser power when the coercive table has them."""
    keys = key_columns(fits)
    method = f"poly{order}"
    summaries, peak_rows = _by_key(summary, keys, method=method), _by_key(peaks, keys, method=method)
    coercive_rows = _by_key(coercive, keys, poly_order=order)
    rows = []
    for fit in fits.select(keys + ["n_runs", "resistance_ohm", "r_squared"]).to_pylist():
        key = tuple(fit[k] for k in keys)
        s, p, c = summaries.get(key, {}), peak_rows.get(key, {}), coercive_rows.get(key, {})
        resistance = fit["resistance_ohm"]
        notes = [] if s else [f"no order-{order} hysteresis (not among the analysis' poly_orders, or no fit)"]
        notes += [c["reason"]] if c.get("reason") else []
        notes += [c["power_note"]] if c.get("power_note") and c.get("effective_power_W") is None else []
        rows.append(
            {"date": day}
            | {k: fit[k] for k in keys}
            | {"n_runs": fit["n_runs"], "resistance_ohm": resistance, "resistance_MOhm": None if resistance is None else resistance / 1e6}
            | {"r_squared": fit["r_squared"], "hysteresis_order": order, "hysteresis_n_points": s.get("n_points")}
            | {f"hysteresis_{stat}_nA": _nano(s.get(f"{stat}_A")) for stat in ("mean", "std", "max", "min")}
            | {"peak_v_V": p.get("v_max_absolute_V"), "peak_i_nA": _nano(p.get("i_max_absolute_A"))}
            | {name: c.get(name) for name in ("e_coercive_pos_V_cm", "e_coercive_neg_V_cm", "laser_voltage_V", "effective_power_W")}
            | {"note": "; ".join(dict.fromkeys(notes)) or None}
        )
    schema = pa.schema([pa.field("date", pa.string()), *(fits.schema.field(k) for k in keys), *(pa.field(n, t) for n, t in VALUE_COLUMNS)])
    return pa.Table.from_pylist(rows, schema=schema)
