"""The lab's IV statistics, fits and hysteresis of one measurement day (lab-analysis.md §2), without §3's defects.

analyse_day takes one day's IV segment rows and returns one table per kind in KINDS, each with a fixed
schema (output_schema) whatever the data: an empty input, a single run, one or many V_max groups, a day
without return segments or a fit that cannot be made give rows with nulls (or no rows), never an exception.

Conventions (§2): forward rows are segment types containing "forward", return rows those containing
"return"; per run v_max = max |V| over its forward rows, group key round(v_max, v_max_decimals) per chip
(or per day); a group needs forward and return rows; n_runs = distinct runs among its forward rows.
Per group and branch, rows are grouped by exact voltage (-0.0 == 0.0): mean, sample std (ddof=1, null
for one sample) and counts skip null currents. Fits use the return statistics only. Rounding is numpy's
(half to even). Rows whose voltage is null/NaN have no voltage to group by and are left out, as are rows
of runs without forward rows (no v_max) and rows whose segment type is neither forward nor return.
Return voltages whose currents are all null keep their statistics row (mean null, n_samples 0) but take
no part in the fits. Hysteresis joins forward and return on round(V, hysteresis_decimals); voltages of
one branch sharing a key are pooled (pool_by_key), so the join stays one row per key.

Group-bys are vectorised (one sort, then bincount); only the fits loop, over the few groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .chips import chip_label

KINDS = ("iv_stats", "iv_fits", "hysteresis", "hysteresis_summary", "hysteresis_peaks")
# Which runs make up each group (one row per group and run): what the laser settings of a group are read from.
GROUP_RUNS = "iv_group_runs"
DAY_KINDS = (*KINDS, GROUP_RUNS)
BRANCHES = ("forward", "return")
# `chip` names the group's chip for people (chips.chip_label): "Alisson67", "no chip number" for runs
# without one, "all chips, pooled" with group_by: day, where chip_group and chip_number are null.
KEY_FIELDS = [
    pa.field("chip_group", pa.string()),
    pa.field("chip_number", pa.int64()),
    pa.field("v_max_V", pa.float64()),
    pa.field("chip", pa.string()),
]
F64, I64, STR = pa.float64(), pa.int64(), pa.string()


@dataclass(frozen=True)
class AnalysisSettings:
    poly_orders: tuple[int, ...] = (1, 3, 5, 7)
    v_max_decimals: int = 0  # V_max group key = round(v_max, v_max_decimals)
    hysteresis_decimals: int = 2  # forward/return statistics joined on round(V, hysteresis_decimals)
    group_by: str = "chip"  # "chip": groups per (chip_group, chip_number) within the day; "day": pool all chips of the day

    def __post_init__(self) -> None:
        orders = list(self.poly_orders)
        if any(not isinstance(n, int) or n < 0 for n in orders) or len(set(orders)) != len(orders):
            raise ValueError(f"poly_orders must be distinct non-negative integers, got {self.poly_orders}")
        if self.group_by not in ("chip", "day"):
            raise ValueError(f"group_by must be 'chip' or 'day', got {self.group_by!r}")


def hysteresis_methods(settings: AnalysisSettings) -> list[str]:
    return ["raw", "std"] + [f"poly{n}" for n in settings.poly_orders]


def output_schema(kind: str, settings: AnalysisSettings) -> pa.Schema:
    """The fixed schema of one output kind (it depends only on the polynomial orders)."""
    orders = settings.poly_orders
    if kind == "iv_stats":
        fields = [("branch", STR), ("vsd_V", F64), ("i_mean_A", F64), ("i_std_A", F64), ("n_samples", I64), ("n_runs", I64)]
        fields += [("i_fit_linear_A", F64)] + [(f"i_fit_poly{n}_A", F64) for n in orders]
    elif kind == "iv_fits":
        fields = [("n_runs", I64), ("n_points", I64), ("slope_S", F64), ("slope_err_S", F64), ("intercept_A", F64)]
        fields += [("intercept_err_A", F64), ("r_squared", F64), ("resistance_ohm", F64)]
        for n in orders:
            fields += [(f"r2_poly{n}", F64)] + [(f"poly{n}_c{k}", F64) for k in range(n + 1)]
    elif kind == "hysteresis":
        fields = [("vsd_V", F64), ("i_forward_A", F64), ("i_return_A", F64), ("i_forward_std_A", F64), ("i_return_std_A", F64)]
        fields += [("i_hysteresis_raw_A", F64), ("i_hysteresis_std_A", F64)] + [(f"i_hysteresis_poly{n}_A", F64) for n in orders]
    elif kind == "hysteresis_summary":
        fields = [("method", STR), ("n_points", I64), ("mean_A", F64), ("std_A", F64), ("max_A", F64), ("min_A", F64)]
    elif kind == "hysteresis_peaks":
        fields = [("method", STR)] + [
            (f"{c}_max_{side}_{u}", F64) for side in ("positive", "negative", "absolute") for c, u in (("v", "V"), ("i", "A"))
        ]
    elif kind == GROUP_RUNS:
        fields = [("run_id", STR)]
    else:
        raise ValueError(f"unknown analysis kind {kind!r}; expected one of {DAY_KINDS}")
    return pa.schema(KEY_FIELDS + [pa.field(name, type_) for name, type_ in fields])


# --- input -------------------------------------------------------------------------------------------


def _column(table: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    """One input column as a single array of `type_`; all null when the column is missing."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, type_)
    chunks = table[name]
    column = chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()  # no copy for one chunk
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if column.type == type_:
        return column
    try:
        return pc.cast(column, type_)  # safe: a chip number 67.0 becomes 67, 67.5 fails
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(table.num_rows, type_)  # a column of the wrong kind carries no usable key or value


def _floats(array: pa.Array) -> np.ndarray:
    """float64 values with NaN for null; -0.0 becomes 0.0 so both are one key."""
    if array.null_count:
        array = pc.fill_null(array, np.nan)
    return array.to_numpy(zero_copy_only=False) + 0.0


def _blocks(*columns: pa.Array) -> np.ndarray:
    """First row of every stretch of consecutive rows equal in all `columns` (rows of one segment file)."""
    n = len(columns[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = pc.or_(*[pc.not_equal(c[1:], c[:-1]) for c in columns]) if len(columns) > 1 else pc.not_equal(columns[0][1:], columns[0][:-1])
    return np.concatenate(([0], np.flatnonzero(change.to_numpy(zero_copy_only=False)) + 1))


def _ranked(values: list) -> tuple[np.ndarray, list]:
    """Rank of each value in sorted order (None last) and the distinct values in rank order."""
    distinct = sorted({value for value in values if value is not None}) + [None]
    rank = {value: k for k, value in enumerate(distinct)}
    return np.array([rank[value] for value in values], dtype=np.int64), distinct


@dataclass(frozen=True)
class Groups:
    """The analysed groups in output order and, per kept input row, its group and branch, voltage and current."""

    chip_group: list  # per group
    chip_number: list
    v_max: np.ndarray
    n_runs: np.ndarray
    runs: list  # per group: its run ids (those with forward rows), sorted
    key: np.ndarray  # per row: 2 * group + branch (0 forward, 1 return)
    v: np.ndarray
    i: np.ndarray


def group_rows(segments: pa.Table, settings: AnalysisSettings) -> Groups:
    """Assign rows to (chip_group, chip_number, V_max) groups; drop rows and groups §2 does not analyse.

    Rows come in stretches of one run and segment type (one segment file each), so the bookkeeping is
    done per stretch ("block"), not per row. chip_group and chip_number are header parameters, constant
    within a run: a run's chip is read from its first row.
    """
    n = segments.num_rows
    run_id = pc.fill_null(_column(segments, "run_id", STR), "")
    types = pc.fill_null(_column(segments, "segment_type", STR), "")
    starts = _blocks(run_id, types)
    take = pa.array(starts, pa.int64())
    block_types = pc.dictionary_encode(types.take(take))
    type_branch = np.array([0 if "forward" in t else 1 if "return" in t else -1 for t in block_types.dictionary.to_pylist()] + [-1])
    branch = type_branch[block_types.indices.to_numpy(zero_copy_only=False)]  # per block; -1: neither
    run_codes = pc.dictionary_encode(run_id.take(take))
    run = run_codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    n_run = int(run.max()) + 1 if starts.size else 0
    v = _floats(_column(segments, "vsd_V", F64))
    finite = np.isfinite(v)
    abs_v = np.where(finite, np.abs(v), np.nan)
    block_abs = np.fmax.reduceat(abs_v, starts) if n else abs_v  # NaN when the block has no voltage
    block_finite = np.logical_or.reduceat(finite, starts) if n else np.zeros(0, bool)  # any voltage at all

    # Per run: chip and V_max over its forward rows (none when it has no forward voltage: not analysed).
    first_block = np.full(n_run, starts.size)
    np.minimum.at(first_block, run, np.arange(starts.size))
    if settings.group_by == "chip":
        first_row = pa.array(starts[first_block], pa.int64())
        group_rank, group_values = _ranked(_column(segments, "chip_group", STR).take(first_row).to_pylist())
        number_rank, number_values = _ranked(_column(segments, "chip_number", I64).take(first_row).to_pylist())
    else:
        group_rank = number_rank = np.zeros(n_run, dtype=np.int64)
        group_values = number_values = [None]
    run_vmax = np.full(n_run, np.nan)
    np.fmax.at(run_vmax, run[branch == 0], block_abs[branch == 0])
    run_key = np.round(run_vmax, settings.v_max_decimals) + 0.0
    vmax_values = np.unique(run_key[~np.isnan(run_key)])
    n_vmax = max(vmax_values.size, 1)
    # Candidate group code per run: (chip_group, chip_number, V_max) ranks, small integers in key order; -1 = none.
    run_code = (group_rank * len(number_values) + number_rank) * n_vmax + np.searchsorted(vmax_values, run_key)
    run_code[np.isnan(run_key)] = -1
    n_codes = len(group_values) * len(number_values) * n_vmax

    code = np.where(branch >= 0, run_code[run], -1)  # per block
    counted = (code >= 0) & (block_finite)
    has = np.bincount(code[counted] * 2 + branch[counted], minlength=2 * n_codes).reshape(-1, 2) > 0
    analysed = np.append(has.all(axis=1), False)  # a group needs forward and return rows; code -1 indexes the False
    candidate = np.flatnonzero(analysed[:-1])
    group = np.where(analysed[code], np.cumsum(analysed)[code] - 1, -1)
    chip_of, vmax_of = np.divmod(candidate, n_vmax)
    group_of, number_of = np.divmod(chip_of, len(number_values))

    # n_runs: distinct runs among each group's forward rows.
    forward = (group >= 0) & (branch == 0) & (block_finite)
    seen = np.bincount(group[forward] * n_run + run[forward], minlength=candidate.size * n_run).reshape(candidate.size, n_run)
    run_names = np.array(run_codes.dictionary.to_pylist(), dtype=object)

    key = np.repeat(np.where(group >= 0, 2 * group + branch, -1), np.diff(np.append(starts, n)))
    rows = (key >= 0) & finite
    return Groups(
        chip_group=[group_values[k] for k in group_of],
        chip_number=[number_values[k] for k in number_of],
        v_max=vmax_values[vmax_of],
        n_runs=(seen > 0).sum(axis=1),
        runs=[sorted(run_names[np.flatnonzero(row)].tolist()) for row in seen > 0],
        key=key[rows],
        v=v[rows],
        i=_floats(_column(segments, "i_A", F64))[rows],
    )


# --- statistics per voltage --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cells:
    """Statistics per (group, branch, exact voltage), sorted by group, branch (forward first), voltage."""

    group: np.ndarray
    branch: np.ndarray
    v: np.ndarray
    mean: np.ndarray  # NaN when every current is null
    std: np.ndarray  # NaN for fewer than two currents
    n: np.ndarray


def cell_statistics(groups: Groups) -> Cells:
    """Group rows by (group, branch, exact voltage) without sorting the rows: voltages are hashed, their
    few distinct values ranked, and each cell is an integer key counted with bincount."""
    encoded = pc.dictionary_encode(pa.array(groups.v, F64))
    voltages = encoded.dictionary.to_numpy(zero_copy_only=False)
    rank = np.empty(voltages.size, dtype=np.int64)
    rank[np.argsort(voltages)] = np.arange(voltages.size)
    n_v = max(voltages.size, 1)
    row_key = groups.key * n_v + rank[encoded.indices.to_numpy(zero_copy_only=False)]
    n_keys = 2 * groups.v_max.size * n_v
    if n_keys <= 8 * row_key.size + 4096:  # set-point voltages: a dense key range
        rows_per_key = np.bincount(row_key, minlength=n_keys)
        keys = np.flatnonzero(rows_per_key)
        cell = (np.cumsum(rows_per_key > 0) - 1)[row_key]
    else:  # many distinct (read-back) voltages: sort the keys instead
        keys, cell = np.unique(row_key, return_inverse=True)
    i = groups.i
    valid = ~np.isnan(i)
    n = np.bincount(cell, weights=valid, minlength=keys.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(cell, weights=np.where(valid, i, 0.0), minlength=keys.size) / n
        deviation = np.where(valid, i - mean[cell], 0.0)  # two passes: no cancellation for nA currents on large offsets
        std = np.sqrt(np.bincount(cell, weights=deviation * deviation, minlength=keys.size) / (n - 1))
    std[n < 2] = np.nan
    group_branch, v_rank = np.divmod(keys, n_v)
    return Cells(group=group_branch // 2, branch=group_branch % 2, v=np.sort(voltages)[v_rank], mean=mean, std=std, n=n.astype(np.int64))


# --- fits on the return statistics ---------------------------------------------------------------------


def polyfit(x: np.ndarray, y: np.ndarray, order: int, powers: np.ndarray | None = None) -> np.ndarray | None:
    """Coefficients c0..cn (c_k multiplies x^k) by numpy.polyfit's own algorithm, or None when the fit cannot be made.

    `powers` may be np.vander(x, m) for any m > order: its last order + 1 columns are np.vander(x, order + 1) exactly.
    """
    if x.size < order + 1:
        return None
    lhs = np.vander(x, order + 1) if powers is None else powers[:, powers.shape[1] - order - 1 :]
    scale = np.sqrt((lhs * lhs).sum(axis=0))
    if not np.all(np.isfinite(scale) & (scale > 0)):
        return None
    coefficients, _, rank, _ = np.linalg.lstsq(lhs / scale, y, rcond=x.size * np.finfo(x.dtype).eps)
    if rank < order + 1:
        return None  # singular: numpy.polyfit would warn and return an arbitrary solution
    return (coefficients / scale)[::-1]


def r_squared(y: np.ndarray, fitted: np.ndarray) -> float:
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 0.0 if ss_tot == 0 else 1.0 - float(np.sum((y - fitted) ** 2)) / ss_tot


def linear_fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """OLS I = slope V + intercept with standard errors (covariance scaled by SS_res / (N - 2)); NaN where undefined."""
    fit = dict.fromkeys(("slope_S", "slope_err_S", "intercept_A", "intercept_err_A", "r_squared", "resistance_ohm"), np.nan)
    if x.size < 2:
        return fit
    x_mean, y_mean = x.mean(), y.mean()
    dx = x - x_mean
    sxx = float(dx @ dx)
    if sxx == 0:
        return fit
    slope = float(dx @ (y - y_mean)) / sxx
    intercept = float(y_mean - slope * x_mean)
    fitted = slope * x + intercept
    fit.update(slope_S=slope, intercept_A=intercept, r_squared=r_squared(y, fitted))
    fit["resistance_ohm"] = np.inf if slope == 0 else 1.0 / slope
    if x.size > 2:
        s2 = float(np.sum((y - fitted) ** 2)) / (x.size - 2)
        fit["slope_err_S"] = np.sqrt(s2 / sxx)
        fit["intercept_err_A"] = np.sqrt(s2 * (1.0 / x.size + x_mean * x_mean / sxx))
    return fit


@dataclass(frozen=True)
class Fits:
    per_group: dict[str, np.ndarray]  # iv_fits columns after the keys and n_runs
    fitted: dict[str, np.ndarray]  # per cell: "linear" and "poly{n}" values at return voltages, NaN elsewhere


def fit_groups(cells: Cells, n_groups: int, orders: tuple[int, ...]) -> Fits:
    per_group: dict[str, np.ndarray] = {"n_points": np.zeros(n_groups, dtype=np.int64)}
    for name in ("slope_S", "slope_err_S", "intercept_A", "intercept_err_A", "r_squared", "resistance_ohm"):
        per_group[name] = np.full(n_groups, np.nan)
    for n in orders:
        per_group[f"r2_poly{n}"] = np.full(n_groups, np.nan)
        for k in range(n + 1):
            per_group[f"poly{n}_c{k}"] = np.full(n_groups, np.nan)
    fitted = {name: np.full(cells.v.size, np.nan) for name in ["linear"] + [f"poly{n}" for n in orders]}

    # Cells are sorted by (group, branch): group g's return cells are the run of key 2g + 1.
    cell_key, return_keys = cells.group * 2 + cells.branch, np.arange(n_groups) * 2 + 1
    starts, stops = np.searchsorted(cell_key, return_keys, "left"), np.searchsorted(cell_key, return_keys, "right")
    for g, (lo, hi) in enumerate(zip(starts, stops)):
        x_all = cells.v[lo:hi]
        used = ~np.isnan(cells.mean[lo:hi])
        x, y = x_all[used], cells.mean[lo:hi][used]
        per_group["n_points"][g] = x.size
        line = linear_fit(x, y)
        for name, value in line.items():
            per_group[name][g] = value
        if not np.isnan(line["slope_S"]):
            fitted["linear"][lo:hi] = line["slope_S"] * x_all + line["intercept_A"]
        powers = np.vander(x, max(orders) + 1) if orders else None
        for n in orders:
            coefficients = polyfit(x, y, n, powers)
            if coefficients is None:
                continue
            at_all = np.polyval(coefficients[::-1], x_all)
            per_group[f"r2_poly{n}"][g] = r_squared(y, at_all[used])
            for k, c in enumerate(coefficients):
                per_group[f"poly{n}_c{k}"][g] = c
            fitted[f"poly{n}"][lo:hi] = at_all
    return Fits(per_group=per_group, fitted=fitted)


# --- hysteresis ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hysteresis:
    """Forward and return statistics joined per (group, rounded voltage), in output order."""

    group: np.ndarray
    v: np.ndarray  # the rounded join key
    forward_mean: np.ndarray
    forward_std: np.ndarray
    return_mean: np.ndarray
    return_std: np.ndarray
    return_fit: dict[str, np.ndarray]  # poly{n} -> the return fit at the matched return voltage(s)


def pool_by_key(cells: Cells, key: np.ndarray, fitted: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Merge cells of one (group, branch) whose voltages share a rounded key.

    Mean and sample std are those of all the merged samples (as if the raw rows had been grouped by
    the rounded voltage); a fit value is the mean of the fit over the merged voltages. With set-point
    voltages every key holds one voltage per branch and nothing changes. Pooling keeps the join 1:1:
    pairing every forward with every return voltage of a key would grow quadratically on noisy
    read-back voltages. Returns the first cell of every pooled bin and the pooled values.
    """
    first = np.ones(cells.v.size, dtype=bool)
    first[1:] = (cells.group[1:] != cells.group[:-1]) | (cells.branch[1:] != cells.branch[:-1]) | (key[1:] != key[:-1])
    bin_ = np.cumsum(first) - 1
    n_bins = int(bin_[-1]) + 1 if bin_.size else 0
    n = cells.n.astype(np.float64)
    total = np.bincount(bin_, weights=n, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(bin_, weights=np.where(n > 0, n * cells.mean, 0.0), minlength=n_bins) / total
        spread = np.where(n > 1, (n - 1) * cells.std**2, 0.0) + np.where(n > 0, n * (cells.mean - mean[bin_]) ** 2, 0.0)
        std = np.sqrt(np.bincount(bin_, weights=spread, minlength=n_bins) / (total - 1))
        voltages = np.bincount(bin_, minlength=n_bins)
        pooled = {name: np.bincount(bin_, weights=values, minlength=n_bins) / voltages for name, values in fitted.items()}
    std[total < 2] = np.nan
    single = voltages == 1  # the common case: keep the cell's own values exactly
    at = np.flatnonzero(first)
    mean[single], std[single] = cells.mean[at][single], cells.std[at][single]
    for name, values in pooled.items():
        values[single] = fitted[name][at][single]
    return at, {"mean": mean, "std": std} | pooled


def join_branches(cells: Cells, decimals: int, fitted: dict[str, np.ndarray]) -> Hysteresis:
    """Forward and return statistics on (group, round(V, decimals)); keys found on one branch only are dropped."""
    key = np.round(cells.v, decimals) + 0.0
    # Cells are sorted by (group, branch, v) and rounding keeps the order, so equal keys are adjacent.
    at, pooled = pool_by_key(cells, key, fitted)
    group, branch, key = cells.group[at], cells.branch[at], key[at]
    _, key_rank = np.unique(key, return_inverse=True)
    joint = group * (int(key_rank.max()) + 1 if key_rank.size else 1) + key_rank
    forward, backward = np.flatnonzero(branch == 0), np.flatnonzero(branch == 1)
    _, f_at, r_at = np.intersect1d(joint[forward], joint[backward], assume_unique=True, return_indices=True)
    f, r = forward[f_at], backward[r_at]
    return Hysteresis(
        group=group[f],
        v=key[f],
        forward_mean=pooled["mean"][f],
        forward_std=pooled["std"][f],
        return_mean=pooled["mean"][r],
        return_std=pooled["std"][r],
        return_fit={name: pooled[name][r] for name in fitted},
    )


def _null_nan(values: np.ndarray) -> pa.Array:
    """float64 with null where NaN (the only missing marker inside this module); inf stays a value."""
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, F64, mask=np.isnan(values))


def group_stats(values: np.ndarray, group: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """n_points, mean, sample std, max, min of the non-NaN values per group, and first argmax / argmin / argmax |v| rows."""
    ok = ~np.isnan(values)
    g, x, row = group[ok], values[ok], np.flatnonzero(ok)
    n = np.bincount(g, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=x, minlength=n_groups) / n
        deviation = x - mean[g]
        std = np.sqrt(np.bincount(g, weights=deviation * deviation, minlength=n_groups) / (n - 1))
    std[n < 2] = np.nan
    out = {"n_points": n, "mean": mean, "std": std}
    for name, transformed in (("max", x), ("min", -x), ("abs", np.abs(x))):
        best = np.full(n_groups, -np.inf)
        np.maximum.at(best, g, transformed)
        # First row attaining the best value: rows are in output order, so the smallest row index wins.
        first = np.full(n_groups, -1)
        hit = transformed == best[g]
        hit_groups, at = np.unique(g[hit], return_index=True)
        first[hit_groups] = row[hit][at]
        out[f"arg{name}"] = first
    out["max"] = np.where(n > 0, values[np.maximum(out["argmax"], 0)] if values.size else np.nan, np.nan)
    out["min"] = np.where(n > 0, values[np.maximum(out["argmin"], 0)] if values.size else np.nan, np.nan)
    return out


# --- tables --------------------------------------------------------------------------------------------


def _keyed_table(kind: str, settings: AnalysisSettings, groups: Groups, group_index: np.ndarray, columns: dict[str, pa.Array]) -> pa.Table:
    """Key columns taken per row from the groups, then `columns`, in the kind's schema."""
    take = pa.array(group_index, pa.int64())
    pooled = settings.group_by == "day"
    keys = {
        "chip_group": pa.array(groups.chip_group, STR).take(take),
        "chip_number": pa.array(groups.chip_number, I64).take(take),
        "v_max_V": pa.array(groups.v_max, F64).take(take),
        "chip": pa.array([chip_label(g, n, pooled) for g, n in zip(groups.chip_group, groups.chip_number)], STR).take(take),
    }
    schema = output_schema(kind, settings)
    data = keys | columns
    return pa.table(
        [data[name] if name in data else pa.nulls(len(group_index), field.type) for name, field in zip(schema.names, schema)], schema=schema
    )


def analyse_day(segments: pa.Table, settings: AnalysisSettings) -> dict[str, pa.Table]:
    """Every output kind for one day's IV segment rows (run_id, chip_group, chip_number, segment_type, vsd_V, i_A)."""
    groups = group_rows(segments, settings)
    n_groups = groups.v_max.size
    cells = cell_statistics(groups)
    fits = fit_groups(cells, n_groups, settings.poly_orders)
    orders = settings.poly_orders
    out: dict[str, pa.Table] = {}

    stats = {
        "branch": pa.array(BRANCHES, STR).take(pa.array(cells.branch, pa.int64())),
        "vsd_V": _null_nan(cells.v),
        "i_mean_A": _null_nan(cells.mean),
        "i_std_A": _null_nan(cells.std),
        "n_samples": pa.array(cells.n, I64),
        "n_runs": pa.array(groups.n_runs[cells.group], I64),
        "i_fit_linear_A": _null_nan(fits.fitted["linear"]),
    } | {f"i_fit_poly{n}_A": _null_nan(fits.fitted[f"poly{n}"]) for n in orders}
    out["iv_stats"] = _keyed_table("iv_stats", settings, groups, cells.group, stats)

    per_group = {"n_runs": pa.array(groups.n_runs, I64), "n_points": pa.array(fits.per_group["n_points"], I64)}
    per_group |= {name: _null_nan(values) for name, values in fits.per_group.items() if name != "n_points"}
    out["iv_fits"] = _keyed_table("iv_fits", settings, groups, np.arange(n_groups), per_group)
    run_group = np.repeat(np.arange(n_groups), [len(runs) for runs in groups.runs]).astype(np.int64)
    run_ids = pa.array([run for runs in groups.runs for run in runs], STR)
    out[GROUP_RUNS] = _keyed_table(GROUP_RUNS, settings, groups, run_group, {"run_id": run_ids})

    joined = join_branches(cells, settings.hysteresis_decimals, {f"poly{n}": fits.fitted[f"poly{n}"] for n in orders})
    key, hysteresis_group = joined.v, joined.group
    with np.errstate(invalid="ignore"):
        methods = {"raw": joined.forward_mean - joined.return_mean, "std": np.sqrt(joined.forward_std**2 + joined.return_std**2)}
        methods |= {f"poly{n}": joined.forward_mean - joined.return_fit[f"poly{n}"] for n in orders}
    hysteresis = {
        "vsd_V": _null_nan(key),
        "i_forward_A": _null_nan(joined.forward_mean),
        "i_return_A": _null_nan(joined.return_mean),
        "i_forward_std_A": _null_nan(joined.forward_std),
        "i_return_std_A": _null_nan(joined.return_std),
    } | {f"i_hysteresis_{name}_A": _null_nan(values) for name, values in methods.items()}
    out["hysteresis"] = _keyed_table("hysteresis", settings, groups, hysteresis_group, hysteresis)

    summaries, peaks = [], []
    for name in hysteresis_methods(settings):
        s = group_stats(methods[name], hysteresis_group, n_groups)
        summaries.append(
            {"method": [name] * n_groups, "n_points": s["n_points"], "mean_A": s["mean"], "std_A": s["std"], "max_A": s["max"], "min_A": s["min"]}
        )
        if name != "std":
            peak = {"method": [name] * n_groups}
            for side, arg in (("positive", "argmax"), ("negative", "argmin"), ("absolute", "argabs")):
                at = s[arg]
                found = at >= 0
                peak[f"v_max_{side}_V"] = np.where(found, key[np.maximum(at, 0)] if key.size else np.nan, np.nan)
                peak[f"i_max_{side}_A"] = np.where(found, methods[name][np.maximum(at, 0)] if key.size else np.nan, np.nan)
            peaks.append(peak)
    out["hysteresis_summary"] = _method_table("hysteresis_summary", settings, groups, summaries)
    out["hysteresis_peaks"] = _method_table("hysteresis_peaks", settings, groups, peaks)
    return out


def _method_table(kind: str, settings: AnalysisSettings, groups: Groups, per_method: list[dict]) -> pa.Table:
    """Rows per (group, method), groups in key order and methods in settings order within each group."""
    n_groups = groups.v_max.size
    n_methods = len(per_method)
    order = np.arange(n_groups * n_methods).reshape(n_methods, n_groups).T.ravel()  # method-major -> group-major
    columns = {}
    for name in per_method[0]:
        stacked = np.concatenate([np.asarray(m[name]) for m in per_method]) if n_groups else np.array([])
        values = stacked[order] if n_groups else stacked
        if name == "method":
            columns[name] = pa.array(values.tolist(), STR)
        elif name == "n_points":
            columns[name] = pa.array(values.astype(np.int64), I64)
        else:
            columns[name] = _null_nan(values)
    return _keyed_table(kind, settings, groups, np.repeat(np.arange(n_groups), n_methods), columns)
