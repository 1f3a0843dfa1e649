"""Backward-subtracted hysteresis and coercive fields of one day (lab-analysis-2.md §3, §4), from the day's
hysteresis table alone, without the old scripts' defects (§8).

Per chip, the reference group M (the largest V_max by default) gives the baseline of every order:
baseline_n(V) = I_forward − I_hysteresis_poly<n> of M, i.e. M's return fit at M's voltages. Voltages meet on
the hysteresis table's own key (Vsd rounded as the forward/return join rounds it), so a 0.01 V sweep and a
0.02 V reference meet wherever their keys coincide. A value that does not exist is null with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .analysis import KEY_FIELDS

F64, STR, I64 = pa.float64(), pa.string(), pa.int64()
POLY_COLUMN = re.compile(r"^i_hysteresis_poly(\d+)_A$")
SUBTRACTED = "hysteresis_subtracted"
NO_POINT = "has no point at this voltage"
COERCIVE = "coercive_field"


@dataclass(frozen=True)
class Geometry:
    """The channel (µm) and the beam-to-sample power ratio; `chips` overrides per chip label ("Alisson 67")."""

    channel_length_um: float = 100.0
    channel_width_um: float = 50.0
    beam_to_sample_ratio: float = 5.7
    chips: dict[str, dict[str, float]] = field(default_factory=dict)

    def channel(self, label: str) -> tuple[float, float]:
        """(length, width) in cm of a chip's channel."""
        own = self.chips.get(label, {})
        length = own.get("channel_length_um", self.channel_length_um)
        width = own.get("channel_width_um", self.channel_width_um)
        return length * 1e-4, width * 1e-4


def chip_label(values: dict) -> str:
    """A chip's name as the config's per-chip overrides spell it: chip group and number."""
    return " ".join(str(values[name]) for name in ("chip_group", "chip_number") if values.get(name) is not None)


def key_columns(table: pa.Table) -> list[str]:
    """The table's key columns: those before v_max_V and any other of analysis.KEY_FIELDS, in table order."""
    names = table.column_names
    leading = names[: names.index("v_max_V") + 1] if "v_max_V" in names else []
    known = {f.name for f in KEY_FIELDS}
    return [name for name in names if name in leading or name in known]


def poly_orders(hysteresis: pa.Table) -> list[int]:
    """The polynomial orders the hysteresis table carries (whatever the analysis settings were)."""
    return sorted(int(m[1]) for name in hysteresis.column_names if (m := POLY_COLUMN.match(name)))


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return table[name].to_numpy(zero_copy_only=False).astype(np.float64) if table.num_rows else np.zeros(0)


def _nulled(values: np.ndarray) -> pa.Array:
    return pa.array(values, F64, mask=np.isnan(values))


@dataclass(frozen=True)
class Group:
    """One V_max group's rows of the hysteresis table."""

    keys: dict  # key column -> value (v_max_V included)
    rows: np.ndarray  # row indices, ascending V


def key_runs(table: pa.Table, keys: list[str]) -> np.ndarray:
    """Start rows of the runs of consecutive rows with equal keys, and the table's length last. Nulls
    equal nulls; a NaN key starts a run of its own (NaN != NaN): more runs, never a run of unequal keys.
    Compared by Arrow: string keys as Python objects cost ~1 ms a column and day."""
    n = table.num_rows
    if n == 0:
        return np.zeros(1, np.int64)
    changed = np.zeros(n - 1, dtype=bool)
    for name in keys:
        before, after = table[name].slice(0, n - 1), table[name].slice(1)
        differ = pc.or_(pc.fill_null(pc.not_equal(before, after), False), pc.not_equal(pc.is_null(before), pc.is_null(after)))
        changed |= differ.to_numpy(zero_copy_only=False)
    return np.concatenate([[0], np.flatnonzero(changed) + 1, [n]]).astype(np.int64)


def groups_by_chip(hysteresis: pa.Table, keys: list[str]) -> dict[tuple, list[Group]]:
    """{chip key (keys without v_max_V): its groups in order of first appearance, each group's rows
    ascending}. Loops over runs of equal keys, not rows (a row loop was ~0.5 s of a lab-scale job);
    a key that comes back after other keys joins its first run's group."""
    bounds = key_runs(hysteresis, keys)
    firsts = hysteresis.select(keys).take(pa.array(bounds[:-1])).to_pylist() if hysteresis.num_rows else []
    found: dict[tuple, list[np.ndarray]] = {}
    for first, start, stop in zip(firsts, bounds[:-1], bounds[1:]):
        found.setdefault(tuple(first[name] for name in keys), []).append(np.arange(start, stop, dtype=np.int64))
    chips: dict[tuple, list[Group]] = {}
    v_at = keys.index("v_max_V")
    for values, runs in found.items():
        chip = values[:v_at] + values[v_at + 1 :]
        chips.setdefault(chip, []).append(Group(dict(zip(keys, values)), np.concatenate(runs)))
    return chips


def reference_of(groups: list[Group], reference_v_max: float | None) -> tuple[Group | None, str | None]:
    """The chip's reference group, or None and why."""
    v_maxes = [g.keys["v_max_V"] for g in groups if g.keys["v_max_V"] is not None]
    if not v_maxes:
        return None, "no V_max group"
    wanted = max(v_maxes) if reference_v_max is None else reference_v_max
    for group in groups:
        if group.keys["v_max_V"] == wanted:
            return group, None
    return None, f"the reference group V_max = {wanted:g} V was not measured for this chip on this day"


def matches(reference_v: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `v`: its index in the ascending `reference_v` and whether that voltage is equal (the
    tables' voltages are already the rounded join key, so equality is the lab's rounded match)."""
    if reference_v.size == 0:
        return np.zeros(v.size, dtype=np.int64), np.zeros(v.size, dtype=bool)
    at = np.minimum(np.searchsorted(reference_v, v), reference_v.size - 1)
    return at, reference_v[at] == v


def subtract_day(hysteresis: pa.Table, reference_v_max: float | None, geometry: Geometry) -> pa.Table:
    """Per group row of the hysteresis table: E and, per order, the forward and return currents minus the
    reference's baseline in A and as J (A/cm², each term scaled before subtracting, as the lab did)."""
    keys, orders = key_columns(hysteresis), poly_orders(hysteresis)
    v, forward, backward = (_floats(hysteresis, name) for name in ("vsd_V", "i_forward_A", "i_return_A"))
    n = hysteresis.num_rows
    reference_v_max_V, e_field, j_scale = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    baseline = {order: np.full(n, np.nan) for order in orders}
    reasons = np.full(n, None, dtype=object)
    hysteresis_of = {order: _floats(hysteresis, f"i_hysteresis_poly{order}_A") for order in orders}
    for groups in groups_by_chip(hysteresis, keys).values():
        length_cm, width_cm = geometry.channel(chip_label(groups[0].keys))
        reference, missing = reference_of(groups, reference_v_max)
        for group in groups:
            rows = group.rows
            e_field[rows] = v[rows] * (1.0 / length_cm)
            if reference is None:
                reasons[rows] = missing
                continue
            reference_v_max_V[rows] = reference.keys["v_max_V"]
            j_scale[rows] = 1.0 / (length_cm * width_cm)
            at, shared = matches(v[reference.rows], v[rows])
            ref_at = reference.rows[at]
            no_fit = np.zeros(rows.size, dtype=np.int64)  # bit i: the reference has no fit of orders[i] here
            for bit, (order, hyst) in enumerate(hysteresis_of.items()):
                baseline[order][rows] = np.where(shared, forward[ref_at] - hyst[ref_at], np.nan)  # M's return fit, as the lab took it
                no_fit |= (shared & np.isnan(baseline[order][rows])).astype(np.int64) << bit
            reasons[rows[~shared]] = f"the reference group ({reference.keys['v_max_V']:g} V) {NO_POINT}"
            for bits in np.unique(no_fit[no_fit > 0]):
                named = [f"the reference has no order-{order} fit here" for i, order in enumerate(orders) if bits >> i & 1]
                reasons[rows[no_fit == bits]] = "; ".join(named)
    out = {"reference_v_max_V": reference_v_max_V, "e_field_V_cm": e_field}
    for order in orders:
        out[f"i_forward_sub_poly{order}"] = forward - baseline[order]
        out[f"i_backward_sub_poly{order}"] = backward - baseline[order]
        out[f"j_forward_sub_poly{order}"] = forward * j_scale - baseline[order] * j_scale
        out[f"j_backward_sub_poly{order}"] = backward * j_scale - baseline[order] * j_scale
    columns = {name: hysteresis[name] for name in keys} | {"vsd_V": hysteresis["vsd_V"]}
    for name, values in out.items():
        unit = "_A" if name.startswith("i_") else "_A_cm2" if name.startswith("j_") else ""
        columns[name + unit] = _nulled(values)
    columns["reason"] = pa.array(reasons, STR)
    return pa.table(columns)


def side_peaks(e: np.ndarray, j: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per order (a row of `j`, orders x points): E at the largest J on this side and that J, first on
    ties; NaN where the side has no value."""
    masked = np.where(side & ~np.isnan(j), j, -np.inf)  # |J| >= 0: -inf never wins over a value
    if masked.shape[1] == 0:
        return np.full(masked.shape[0], np.nan), np.full(masked.shape[0], np.nan)
    best = np.argmax(masked, axis=1)
    peak = masked[np.arange(masked.shape[0]), best]
    found = peak > -np.inf
    return np.where(found, e[best], np.nan), np.where(found, peak, np.nan)


def coercive_day(subtracted: pa.Table, geometry: Geometry) -> pa.Table:
    """Per group and order: E_c and J_max on each side (E ≥ 0, E < 0) of J_hyst = |J_forward_sub − J_backward_sub|.
    The baseline cancels, so every order gives the same E_c (the table keeps the order dimension the lab used)."""
    keys = key_columns(subtracted)
    orders = sorted(int(m[1]) for c in subtracted.column_names if (m := re.match(r"^j_forward_sub_poly(\d+)_A_cm2$", c)))
    e = _floats(subtracted, "e_field_V_cm")
    j_hyst = np.zeros((len(orders), subtracted.num_rows))  # orders x rows: one argmax per group and side
    for i, n in enumerate(orders):
        j_hyst[i] = np.abs(_floats(subtracted, f"j_forward_sub_poly{n}_A_cm2") - _floats(subtracted, f"j_backward_sub_poly{n}_A_cm2"))
    reason = subtracted["reason"]
    shared = ~pc.fill_null(pc.match_substring(reason, NO_POINT), False).to_numpy(zero_copy_only=False) if subtracted.num_rows else np.zeros(0, bool)
    rows: list[dict] = []
    for groups in groups_by_chip(subtracted, keys).values():
        for group in groups:
            at = group.rows
            v_max = group.keys["v_max_V"]
            reference = subtracted["reference_v_max_V"][int(at[0])].as_py() if at.size else None
            length_cm, _ = geometry.channel(chip_label(group.keys))
            e_max = None if v_max is None else v_max / length_cm
            sides = {"positive": e[at] >= 0, "negative": e[at] < 0}
            peaks = {side: side_peaks(e[at], j_hyst[:, at], where) for side, where in sides.items()}
            for i, order in enumerate(orders):
                why = []
                for side, where in sides.items():
                    if not np.isnan(peaks[side][0][i]):
                        continue
                    if reference is None:
                        why.append(reason[int(at[0])].as_py())
                    elif (where & shared[at]).any():
                        why.append(f"no order-{order} fit of the reference on the {side} side")
                    else:
                        why.append(f"no voltage shared with the reference on the {side} side")
                e_pos, e_neg = float(peaks["positive"][0][i]), float(peaks["negative"][0][i])
                j_pos, j_neg = float(peaks["positive"][1][i]), float(peaks["negative"][1][i])
                rows.append(
                    group.keys
                    | {"e_max_V_cm": e_max, "poly_order": order, "reference_v_max_V": reference}
                    | {"e_coercive_pos_V_cm": e_pos, "e_coercive_neg_V_cm": e_neg, "j_max_pos_A_cm2": j_pos, "j_max_neg_A_cm2": j_neg}
                    | {"reason": "; ".join(dict.fromkeys(why)) or None}
                )
    return _coercive_table(rows, [subtracted.schema.field(k) for k in keys])


def _coercive_table(rows: list[dict], keys: list[pa.Field]) -> pa.Table:
    fields = [*keys, pa.field("e_max_V_cm", F64), pa.field("poly_order", I64), pa.field("reference_v_max_V", F64)]
    fields += [pa.field(name, F64) for name in ("e_coercive_pos_V_cm", "e_coercive_neg_V_cm", "j_max_pos_A_cm2", "j_max_neg_A_cm2")]
    fields.append(pa.field("reason", STR))
    schema = pa.schema(fields)
    columns = {f.name: [r[f.name] for r in rows] for f in schema}
    for name in ("e_coercive_pos_V_cm", "e_coercive_neg_V_cm", "j_max_pos_A_cm2", "j_max_neg_A_cm2"):
        columns[name] = [None if x is None or x != x else x for x in columns[name]]
    return pa.table(columns, schema=schema)
