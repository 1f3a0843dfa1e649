"""analyse_day against lab-analysis.md §2, computed independently in the test.

Small days are worked out by hand; realistic days (built with find_segments on synthetic sweeps) are
checked against `reference`, a plain row-by-row version of §2 written from the text with dicts,
numpy.mean/std, numpy.polyfit and an OLS covariance from numpy.linalg.lstsq.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest
from nanolab.analysis import KINDS, AnalysisSettings, analyse_day, output_schema
from nanolab.segment import find_segments
from nanolab.synthetic import iv_voltages

INPUT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("chip_group", pa.string()),
        ("chip_number", pa.int64()),
        ("segment_type", pa.string()),
        ("vsd_V", pa.float64()),
        ("i_A", pa.float64()),
    ]
)
RTOL = 1e-9


def table(rows: list[tuple]) -> pa.Table:
    """Segment rows (run_id, chip_group, chip_number, segment_type, vsd_V, i_A)."""
    return pa.Table.from_pylist([dict(zip(INPUT_SCHEMA.names, r)) for r in rows], schema=INPUT_SCHEMA)


def sweep_rows(run_id: str, chip: tuple[str | None, int | None], v: np.ndarray, current) -> list[tuple]:
    """Rows of one run segmented by find_segments; current(v, segment_type, rng-free) gives its currents."""
    rows = []
    for s in find_segments(v):
        vv = v[s.start : s.stop]
        for x, i in zip(vv.tolist(), current(vv, s.segment_type).tolist()):
            rows.append((run_id, chip[0], chip[1], s.segment_type, x, i))
    return rows


# --- the reference: §2 row by row -------------------------------------------------------------------


def polyfit_or_none(x: list[float], y: list[float], order: int) -> list[float] | None:
    if len(x) < order + 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.RankWarning)
        try:
            return list(np.polyfit(x, y, order)[::-1])
        except (np.exceptions.RankWarning, np.linalg.LinAlgError, ValueError):
            return None


def r2(y: np.ndarray, fitted: np.ndarray) -> float:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return 0.0 if ss_tot == 0 else 1.0 - float(((y - fitted) ** 2).sum()) / ss_tot


def ols(x: list[float], y: list[float]) -> dict:
    """Slope, intercept and their standard errors: lstsq, then the covariance (X'X)^-1 SS_res / (N - 2)."""
    out = dict.fromkeys(("slope_S", "slope_err_S", "intercept_A", "intercept_err_A", "r_squared", "resistance_ohm"))
    if len(x) < 2 or len(set(x)) < 2:
        return out
    design = np.column_stack([x, np.ones(len(x))])
    (slope, intercept), *_ = np.linalg.lstsq(design, np.array(y), rcond=None)
    fitted = design @ np.array([slope, intercept])
    out.update(slope_S=slope, intercept_A=intercept, r_squared=r2(np.array(y), fitted), resistance_ohm=math.inf if slope == 0 else 1 / slope)
    if len(x) > 2:
        covariance = np.linalg.inv(design.T @ design) * float(((np.array(y) - fitted) ** 2).sum()) / (len(x) - 2)
        out["slope_err_S"], out["intercept_err_A"] = np.sqrt(np.diag(covariance))
    return out


def describe(values: list[float]) -> dict:
    return {
        "n_points": len(values),
        "mean_A": float(np.mean(values)) if values else None,
        "std_A": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "max_A": max(values) if values else None,
        "min_A": min(values) if values else None,
    }


def reference(rows: list[tuple], settings: AnalysisSettings) -> dict[str, list[dict]]:
    orders = settings.poly_orders
    branch_of = {}
    vmax: dict[str, float] = {}
    for run, _, _, kind, v, _ in rows:
        if v is None or math.isnan(v):
            continue
        if kind and "forward" in kind:
            vmax[run] = max(vmax.get(run, 0.0), abs(v))
    groups: dict[tuple, dict[str, list]] = defaultdict(lambda: {"forward": [], "return": []})
    for run, chip_group, chip_number, kind, v, i in rows:
        branch = "forward" if kind and "forward" in kind else "return" if kind and "return" in kind else None
        if branch is None or v is None or math.isnan(v) or run not in vmax:
            continue
        chip = (chip_group, chip_number) if settings.group_by == "chip" else (None, None)
        key = chip + (float(np.round(vmax[run], settings.v_max_decimals)) + 0.0,)
        groups[key][branch].append((v + 0.0, None if i is None or math.isnan(i) else i, run))
        branch_of[run] = branch
    out: dict[str, list[dict]] = {kind: [] for kind in KINDS}

    def reference_chip_name(group: str | None, number: int | None, settings: AnalysisSettings) -> str:
        if settings.group_by == "day":
            return "all chips, pooled"
        name = {(True, True): f"{group}{number}", (True, False): f"{group}, no chip number", (False, True): f"chip {number}"}
        return name.get((group is not None, number is not None), "no chip number")

    def sort_key(key: tuple) -> tuple:
        return (key[0] is None, key[0] or "", key[1] is None, key[1] or 0, key[2])

    for key in sorted((k for k, g in groups.items() if g["forward"] and g["return"]), key=sort_key):
        keys = dict(zip(("chip_group", "chip_number", "v_max_V"), key)) | {"chip": reference_chip_name(key[0], key[1], settings)}
        n_runs = len({run for _, _, run in groups[key]["forward"]})
        stats = {}
        for branch in ("forward", "return"):
            by_v: dict[float, list] = defaultdict(list)
            for v, i, _ in groups[key][branch]:
                by_v[v].append(i)
            stats[branch] = []
            for v in sorted(by_v):
                currents = [i for i in by_v[v] if i is not None]
                mean = float(np.mean(currents)) if currents else None
                std = float(np.std(currents, ddof=1)) if len(currents) > 1 else None
                stats[branch].append((v, mean, std, len(currents)))
        x = [v for v, m, _, _ in stats["return"] if m is not None]
        y = [m for _, m, _, _ in stats["return"] if m is not None]
        line = ols(x, y)
        polys = {n: polyfit_or_none(x, y, n) for n in orders}
        fit_row = keys | {"n_runs": n_runs, "n_points": len(x)} | line
        for n in orders:
            c = polys[n]
            fit_row[f"r2_poly{n}"] = None if c is None else r2(np.array(y), np.polyval(c[::-1], np.array(x)))
            fit_row |= {f"poly{n}_c{k}": None if c is None else c[k] for k in range(n + 1)}
        out["iv_fits"].append(fit_row)

        def fitted(name: str, v: float, line: dict = line, polys: dict = polys) -> float | None:
            if name == "linear":
                return None if line["slope_S"] is None else line["slope_S"] * v + line["intercept_A"]
            c = polys[int(name[4:])]
            return None if c is None else float(np.polyval(c[::-1], v))

        for branch in ("forward", "return"):
            for v, mean, std, n in stats[branch]:
                row = keys | {"branch": branch, "vsd_V": v, "i_mean_A": mean, "i_std_A": std, "n_samples": n, "n_runs": n_runs}
                row["i_fit_linear_A"] = fitted("linear", v) if branch == "return" else None
                row |= {f"i_fit_poly{n}_A": fitted(f"poly{n}", v) if branch == "return" else None for n in orders}
                out["iv_stats"].append(row)

        # Hysteresis: each branch's raw samples grouped by the rounded voltage (with set-point voltages
        # that is the per-voltage statistics); the return fit averaged over the key's return voltages.
        binned: dict[str, dict[float, dict]] = {}
        for branch in ("forward", "return"):
            binned[branch] = defaultdict(lambda: {"currents": [], "voltages": set()})
            for v, i, _ in groups[key][branch]:
                b = binned[branch][float(np.round(v, settings.hysteresis_decimals)) + 0.0]
                b["voltages"].add(v)
                if i is not None:
                    b["currents"].append(i)
        h_rows = []
        for k in sorted(set(binned["forward"]) & set(binned["return"])):
            f, r = binned["forward"][k], binned["return"][k]
            fmean, rmean = (float(np.mean(b["currents"])) if b["currents"] else None for b in (f, r))
            fstd, rstd = (float(np.std(b["currents"], ddof=1)) if len(b["currents"]) > 1 else None for b in (f, r))
            row = keys | {"vsd_V": k, "i_forward_A": fmean, "i_return_A": rmean, "i_forward_std_A": fstd, "i_return_std_A": rstd}
            row["i_hysteresis_raw_A"] = None if fmean is None or rmean is None else fmean - rmean
            row["i_hysteresis_std_A"] = None if fstd is None or rstd is None else math.sqrt(fstd**2 + rstd**2)
            for n in orders:
                fits = [fitted(f"poly{n}", v) for v in sorted(r["voltages"])]
                fit = None if None in fits else float(np.mean(fits))
                row[f"i_hysteresis_poly{n}_A"] = None if fmean is None or fit is None else fmean - fit
            h_rows.append(row)
        values: dict[str, list] = {"raw": [], "std": []} | {f"poly{n}": [] for n in orders}
        out["hysteresis"] += h_rows
        for method in values:
            points = [(r["vsd_V"], r[f"i_hysteresis_{method}_A"]) for r in h_rows if r[f"i_hysteresis_{method}_A"] is not None]
            out["hysteresis_summary"].append(keys | {"method": method} | describe([i for _, i in points]))
            if method == "std":
                continue
            peak = keys | {"method": method}
            for side, score in (("positive", lambda p: p[1]), ("negative", lambda p: -p[1]), ("absolute", lambda p: abs(p[1]))):
                best = max(points, key=score) if points else (None, None)  # max returns the first of equal scores
                peak[f"v_max_{side}_V"], peak[f"i_max_{side}_A"] = best
            out["hysteresis_peaks"].append(peak)
    return out


def assert_rows_match(got: list[dict], expected: list[dict], rtol: float = RTOL, current_scale: float = 0.0) -> None:
    """Equal keys, strings and counts; floats within rtol relative.

    Except the linear intercept: it is a difference of currents of size `current_scale`, so its rounding
    error is ~eps * current_scale whatever its own size. When the data lie exactly on a line through 0
    the true intercept is 0: closed-form OLS gives 0.0, lstsq -7e-16 A on currents of 1.5 A (5e-16 of
    the currents). So the intercept is compared within rtol of its value or rtol * current_scale,
    whichever is larger. (Its standard error matched within 1e-9 relative on every noisy day here.)
    """
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert list(g) == list(e), k
        for name, value in e.items():
            actual = g[name]
            if name == "intercept_A" and value is not None and actual is not None:
                assert abs(actual - value) <= rtol * max(abs(value), current_scale), (k, name, actual, value)
                continue
            if value is None or actual is None:
                assert actual is None and value is None, (k, name, actual, value)
            elif isinstance(value, str) or isinstance(value, int) and not isinstance(value, bool) and name != "v_max_V":
                assert actual == value, (k, name, actual, value)
            elif math.isinf(value):
                assert actual == value, (k, name, actual, value)
            else:
                assert actual == pytest.approx(value, rel=rtol, abs=0), (k, name, actual, value)


def check_against_reference(rows: list[tuple], settings: AnalysisSettings) -> dict[str, pa.Table]:
    result = analyse_day(table(rows), settings)
    expected = reference(rows, settings)
    scale = max((abs(r[5]) for r in rows if r[5] is not None and not math.isnan(r[5])), default=0.0)
    for kind in KINDS:
        assert result[kind].schema == output_schema(kind, settings), kind
        assert_rows_match(result[kind].to_pylist(), expected[kind], current_scale=scale)
    return result


# --- realistic days -----------------------------------------------------------------------------------


def device(rng: np.random.Generator, conductance: float, offset: float = 0.0, noise: float = 2e-11):
    """Currents of a slightly non-linear device, forward and return branches apart (hysteresis)."""

    def current(v: np.ndarray, segment_type: str) -> np.ndarray:
        shift = 3e-10 * np.sign(v) if "forward" in segment_type else 0.0
        return conductance * v + 2e-10 * v**3 + offset + shift + rng.normal(0.0, noise, v.size)

    return current


def realistic_day(seed: int, chips=(("Alisson", 67), ("Alisson", 68)), vmaxes=(1.0, 2.0, 3.0), runs_per=3) -> list[tuple]:
    rng = np.random.default_rng(seed)
    rows = []
    for c, chip in enumerate(chips):
        for vmax in vmaxes:
            for r in range(runs_per):
                v = iv_voltages(vmax, 0.05, start_negative=bool(r % 2))
                rows += sweep_rows(f"{chip[0]}-{chip[1]}-{vmax}-{r}", chip, v, device(rng, 1e-7 * (c + 1), offset=1e-11 * r))
    return rows


@pytest.mark.parametrize("seed", range(4))
def test_realistic_day_matches_the_reference(seed: int) -> None:
    rows = realistic_day(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))  # row order must not matter, beyond which segment rows come from
    result = check_against_reference([rows[k] for k in order], AnalysisSettings())
    fits = result["iv_fits"].to_pylist()
    assert [(f["chip_number"], f["v_max_V"], f["n_runs"]) for f in fits] == [(n, v, 3) for n in (67, 68) for v in (1.0, 2.0, 3.0)]
    assert all(f["r2_poly7"] > 0.999 for f in fits)


def test_realistic_day_with_null_currents_and_other_settings() -> None:
    rows = realistic_day(7, vmaxes=(1.0, 1.4, 2.6))  # v_max 1.4 -> key 1, 2.6 -> key 3
    rng = np.random.default_rng(1)
    rows = [r[:5] + (None,) if rng.random() < 0.05 else r for r in rows]
    for settings in (
        AnalysisSettings(poly_orders=(2, 4), hysteresis_decimals=1),
        AnalysisSettings(group_by="day"),
        AnalysisSettings(v_max_decimals=1, poly_orders=(0, 1, 9)),
    ):
        result = check_against_reference(rows, settings)
        assert result["iv_fits"].num_rows > 0


def test_noisy_read_back_voltages_match_the_reference() -> None:
    # Read-back voltages: every row its own exact voltage, each hysteresis key shared by several voltages.
    rng = np.random.default_rng(5)
    rows = []
    for r in range(2):
        v = iv_voltages(1.0, 0.05)
        segments = find_segments(v)
        noisy = v + rng.normal(0.0, 2e-3, v.size)
        for s in segments:
            for k in range(s.start, s.stop):
                rows.append((f"run{r}", "A", 1, s.segment_type, float(noisy[k]), float(1e-7 * noisy[k] + rng.normal(0, 1e-10))))
    result = check_against_reference(rows, AnalysisSettings(hysteresis_decimals=1, poly_orders=(1, 3)))
    # 160 exact voltages, at most 21 keys of 0.1 V in [-1, 1]: several read-back voltages pooled per key.
    assert result["iv_stats"].num_rows == 160 and 0 < result["hysteresis"].num_rows <= 21


# --- hand-worked days -----------------------------------------------------------------------------------


def two_run_day(chip=("X", 1)) -> list[tuple]:
    """0 -> +2 -> 0 -> -2 -> 0 in 0.5 V steps, two runs; forward I = 2V (+2 on run b), return I = V (+2 on run b).

    Statistics: forward mean 2V + 1, return mean V + 1, every std sqrt(2) (two values 2 apart).
    """
    rows = []
    for run, offset in (("a", 0.0), ("b", 2.0)):
        for kind, volts, slope in (
            ("forward_positive", [0.0, 0.5, 1.0, 1.5, 2.0], 2.0),
            ("return_positive", [1.5, 1.0, 0.5], 1.0),
            ("forward_negative", [0.0, -0.5, -1.0, -1.5, -2.0], 2.0),
            ("return_negative", [-1.5, -1.0, -0.5], 1.0),
        ):
            rows += [(run, chip[0], chip[1], kind, v, slope * v + offset) for v in volts]
    return rows


def test_two_run_day_by_hand() -> None:
    result = analyse_day(table(two_run_day()), AnalysisSettings(poly_orders=(1, 3)))
    stats = result["iv_stats"].to_pylist()
    forward = [r for r in stats if r["branch"] == "forward"]
    back = [r for r in stats if r["branch"] == "return"]
    # Forward: V = 0 appears in both forward segments of both runs: 4 samples, mean 1, std of (0, 0, 2, 2).
    assert [r["vsd_V"] for r in forward] == [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert [r["i_mean_A"] for r in forward] == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r["n_samples"] for r in forward] == [2, 2, 2, 2, 4, 2, 2, 2, 2]
    assert forward[4]["i_std_A"] == pytest.approx(math.sqrt(4 / 3))  # (0,0,2,2): squares 4 x 1, / 3
    assert all(r["i_std_A"] == pytest.approx(math.sqrt(2)) for k, r in enumerate(forward) if k != 4)
    assert all(r["n_runs"] == 2 and r["i_fit_linear_A"] is None for r in forward)
    assert [r["vsd_V"] for r in back] == [-1.5, -1.0, -0.5, 0.5, 1.0, 1.5]
    assert [r["i_mean_A"] for r in back] == [-0.5, 0.0, 0.5, 1.5, 2.0, 2.5]
    assert [r["i_fit_linear_A"] for r in back] == pytest.approx([-0.5, 0.0, 0.5, 1.5, 2.0, 2.5])
    assert [r["i_fit_poly3_A"] for r in back] == pytest.approx([-0.5, 0.0, 0.5, 1.5, 2.0, 2.5])

    (fit,) = result["iv_fits"].to_pylist()
    assert (fit["chip_group"], fit["chip_number"], fit["v_max_V"], fit["n_runs"], fit["n_points"]) == ("X", 1, 2.0, 2, 6)
    assert fit["slope_S"] == pytest.approx(1.0) and fit["intercept_A"] == pytest.approx(1.0)
    assert fit["slope_err_S"] == pytest.approx(0.0, abs=1e-12) and fit["intercept_err_A"] == pytest.approx(0.0, abs=1e-12)
    assert fit["r_squared"] == pytest.approx(1.0) and fit["resistance_ohm"] == pytest.approx(1.0)
    assert (fit["poly1_c0"], fit["poly1_c1"], fit["r2_poly1"]) == pytest.approx((1.0, 1.0, 1.0))
    assert [fit[f"poly3_c{k}"] for k in range(4)] == pytest.approx([1.0, 1.0, 0.0, 0.0], abs=1e-12)

    # Hysteresis on the six matched voltages (0 and +-2 V exist only forward): (2V + 1) - (V + 1) = V.
    hysteresis = result["hysteresis"].to_pylist()
    assert [h["vsd_V"] for h in hysteresis] == [-1.5, -1.0, -0.5, 0.5, 1.0, 1.5]
    assert [h["i_hysteresis_raw_A"] for h in hysteresis] == pytest.approx([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5])
    assert [h["i_hysteresis_poly1_A"] for h in hysteresis] == pytest.approx([-1.5, -1.0, -0.5, 0.5, 1.0, 1.5])
    assert all(h["i_hysteresis_std_A"] == pytest.approx(2.0) for h in hysteresis)  # sqrt(2 + 2)

    summary = {s["method"]: s for s in result["hysteresis_summary"].to_pylist()}
    assert list(summary) == ["raw", "std", "poly1", "poly3"]
    assert summary["raw"]["n_points"] == 6
    assert summary["raw"]["mean_A"] == pytest.approx(0.0, abs=1e-15)
    assert summary["raw"]["std_A"] == pytest.approx(math.sqrt(2 * (0.25 + 1 + 2.25) / 5))
    assert (summary["raw"]["max_A"], summary["raw"]["min_A"]) == (1.5, -1.5)
    assert summary["std"]["mean_A"] == pytest.approx(2.0) and summary["std"]["std_A"] == pytest.approx(0.0, abs=1e-12)

    peaks = {p["method"]: p for p in result["hysteresis_peaks"].to_pylist()}
    assert list(peaks) == ["raw", "poly1", "poly3"]
    raw = peaks["raw"]
    assert (raw["v_max_positive_V"], raw["i_max_positive_A"]) == (1.5, 1.5)
    assert (raw["v_max_negative_V"], raw["i_max_negative_A"]) == (-1.5, -1.5)
    assert (raw["v_max_absolute_V"], raw["i_max_absolute_A"]) == (-1.5, -1.5)  # |-1.5| = |1.5|: the first (lower V) wins


def test_minus_zero_and_zero_are_one_voltage_and_null_currents_are_skipped() -> None:
    rows = [
        ("r", "X", 1, "forward_positive", 0.0, 1.0),
        ("r", "X", 1, "forward_positive", 1.0, 2.0),
        ("r", "X", 1, "forward_negative", -0.0, 3.0),
        ("r", "X", 1, "forward_negative", -1.0, None),
        ("r", "X", 1, "return_negative", -0.5, None),
        ("r", "X", 1, "return_negative", -0.5, float("nan")),  # NaN current counts as null too
        ("r", "X", 1, "return_positive", 0.5, 4.0),
        ("r", "X", 1, "return_positive", float("nan"), 9.0),  # no voltage: left out
    ]
    stats = analyse_day(table(rows), AnalysisSettings(poly_orders=(1,)))["iv_stats"].to_pylist()
    got = [(r["branch"], r["vsd_V"], r["i_mean_A"], r["n_samples"]) for r in stats]
    assert got == [("forward", -1.0, None, 0), ("forward", 0.0, 2.0, 2), ("forward", 1.0, 2.0, 1), ("return", -0.5, None, 0), ("return", 0.5, 4.0, 1)]
    assert math.copysign(1.0, stats[1]["vsd_V"]) == 1.0  # the key is +0.0
    assert stats[1]["i_std_A"] == pytest.approx(math.sqrt(2.0)) and stats[2]["i_std_A"] is None
    # Only one return voltage has a current: n_points 1, no linear fit; the fits are null, not an error.
    (fit,) = analyse_day(table(rows), AnalysisSettings(poly_orders=(1,)))["iv_fits"].to_pylist()
    assert fit["n_points"] == 1 and fit["slope_S"] is None and fit["poly1_c0"] is None and fit["r2_poly1"] is None


def test_v_max_key_rounds_half_to_even_and_sorts_numerically() -> None:
    rows = []
    for k, vmax in enumerate([2.5, 3.5, 10.0, 9.0, 1.0]):
        rows += [(f"r{k}", "X", 1, "forward_positive", v, v) for v in (0.0, vmax)]
        rows += [(f"r{k}", "X", 1, "return_positive", 0.5, 0.5)]
    fits = analyse_day(table(rows), AnalysisSettings())["iv_fits"].to_pylist()
    # round(2.5) = 2, round(3.5) = 4 (half to even); 10 after 9 (numbers, not text).
    assert [f["v_max_V"] for f in fits] == [1.0, 2.0, 4.0, 9.0, 10.0]


def test_groups_sort_by_chip_group_then_chip_number_numerically_nulls_last() -> None:
    rows = []
    for k, chip in enumerate([("B", 10), ("A", 10), ("B", 9), (None, 1), ("A", None), ("A", 2)]):
        rows += [(f"r{k}", chip[0], chip[1], "forward_positive", v, v) for v in (0.0, 1.0)]
        rows += [(f"r{k}", chip[0], chip[1], "return_positive", 0.5, 0.5)]
    fits = analyse_day(table(rows), AnalysisSettings())["iv_fits"].to_pylist()
    assert [(f["chip_group"], f["chip_number"]) for f in fits] == [("A", 2), ("A", 10), ("A", None), ("B", 9), ("B", 10), (None, 1)]
    # runs without a chip number are their own group, named for what they are, never "all chips"
    assert [f["chip"] for f in fits] == ["A2", "A10", "A, no chip number", "B9", "B10", "chip 1"]
    pooled = analyse_day(table(rows), AnalysisSettings(group_by="day"))["iv_fits"].to_pylist()
    assert [(f["chip_group"], f["chip_number"], f["chip"], f["n_runs"]) for f in pooled] == [(None, None, "all chips, pooled", 6)]


def test_runs_without_any_chip_metadata_form_a_group_named_so() -> None:
    rows = []
    for k, chip in enumerate([("A", 1), (None, None), (None, None)]):
        rows += [(f"r{k}", chip[0], chip[1], "forward_positive", v, v) for v in (0.0, 0.5, 1.0)]
        rows += [(f"r{k}", chip[0], chip[1], "return_positive", v, 0.9 * v) for v in (1.0, 0.5, 0.0)]
    for kind, table_ in analyse_day(table(rows), AnalysisSettings()).items():
        assert set(table_["chip"].to_pylist()) == {"A1", "no chip number"}, kind
    fits = analyse_day(table(rows), AnalysisSettings())["iv_fits"].to_pylist()
    assert [(f["chip"], f["n_runs"]) for f in fits] == [("A1", 1), ("no chip number", 2)]


def test_voltages_sharing_a_hysteresis_key_are_pooled() -> None:
    rows = [
        ("r", "X", 1, "forward_positive", 0.0, 0.0),
        ("r", "X", 1, "forward_positive", 0.101, 1.0),
        ("r", "X", 1, "forward_positive", 0.104, 2.0),
        ("s", "X", 1, "forward_positive", 0.104, 6.0),
        ("r", "X", 1, "forward_positive", 0.2, 3.0),
        ("r", "X", 1, "return_positive", 0.099, 10.0),
        ("r", "X", 1, "return_positive", 0.102, 20.0),
        ("r", "X", 1, "return_positive", 0.3, 30.0),
        ("s", "X", 1, "return_positive", 0.3, 50.0),
    ]
    result = analyse_day(table(rows), AnalysisSettings(poly_orders=(1,)))
    (h,) = result["hysteresis"].to_pylist()
    # Key 0.1: forward samples 1, 2, 6 (mean 3, std sqrt(7)), return 10, 20 (mean 15, std sqrt(50)).
    assert (h["vsd_V"], h["i_forward_A"], h["i_return_A"]) == (0.1, 3.0, 15.0)
    assert h["i_forward_std_A"] == pytest.approx(math.sqrt(7.0)) and h["i_return_std_A"] == pytest.approx(math.sqrt(50.0))
    assert h["i_hysteresis_raw_A"] == -12.0 and h["i_hysteresis_std_A"] == pytest.approx(math.sqrt(57.0))
    # The return line through (0.099, 10), (0.102, 20), (0.3, 40): its mean value at 0.099 and 0.102.
    (fit,) = result["iv_fits"].to_pylist()
    line = (fit["poly1_c0"] + fit["poly1_c1"] * 0.099 + fit["poly1_c0"] + fit["poly1_c1"] * 0.102) / 2
    assert h["i_hysteresis_poly1_A"] == pytest.approx(3.0 - line)
    assert result["iv_stats"].num_rows == 4 + 3  # iv_stats keeps every exact voltage


def test_peaks_take_the_first_of_equal_values() -> None:
    # Forward 1 everywhere, return 0 except 2 at 0.4 V: raw hysteresis 1, 1, 1, -1 at 0.1 .. 0.4 V.
    rows = [("r", "X", 1, "forward_positive", v, 1.0) for v in (0.0, 0.1, 0.2, 0.3, 0.4)]
    rows += [("r", "X", 1, "return_positive", v, 2.0 if v == 0.4 else 0.0) for v in (0.1, 0.2, 0.3, 0.4)]
    peaks = analyse_day(table(rows), AnalysisSettings(poly_orders=()))["hysteresis_peaks"].to_pylist()
    (raw,) = peaks
    assert (raw["v_max_positive_V"], raw["i_max_positive_A"]) == (0.1, 1.0)
    assert (raw["v_max_negative_V"], raw["i_max_negative_A"]) == (0.4, -1.0)
    assert (raw["v_max_absolute_V"], raw["i_max_absolute_A"]) == (0.1, 1.0)


# --- §3: what crashed the old scripts -----------------------------------------------------------------------


def all_empty(result: dict[str, pa.Table], settings: AnalysisSettings) -> bool:
    return all(result[kind].num_rows == 0 and result[kind].schema == output_schema(kind, settings) for kind in KINDS)


def test_empty_input_gives_empty_tables_with_their_schema() -> None:
    settings = AnalysisSettings()
    assert all_empty(analyse_day(table([]), settings), settings)
    assert all_empty(analyse_day(pa.table({}), settings), settings)  # not even the columns


def test_day_without_return_segments_gives_empty_tables() -> None:
    rows = [r for r in two_run_day() if "forward" in r[3]]
    settings = AnalysisSettings()
    assert all_empty(analyse_day(table(rows), settings), settings)


def test_runs_without_forward_rows_have_no_v_max_and_are_left_out() -> None:
    rows = two_run_day() + [("c", "X", 1, "return_positive", 1.0, 100.0)]
    result = analyse_day(table(rows), AnalysisSettings(poly_orders=(1,)))
    assert [r["i_mean_A"] for r in result["iv_stats"].to_pylist() if r["branch"] == "return" and r["vsd_V"] == 1.0] == [2.0]


def test_single_run_group_has_null_stds_and_still_every_table() -> None:
    rows = [r for r in two_run_day() if r[0] == "a"]
    settings = AnalysisSettings()
    result = check_against_reference(rows, settings)
    # One sample per voltage, except V = 0 (in both forward segments, 0 A twice): std null everywhere else.
    assert [(r["branch"], r["vsd_V"]) for r in result["iv_stats"].to_pylist() if r["i_std_A"] is not None] == [("forward", 0.0)]
    hysteresis = result["hysteresis"].to_pylist()
    assert hysteresis and all(h["i_hysteresis_std_A"] is None for h in hysteresis)
    summary = {s["method"]: s for s in result["hysteresis_summary"].to_pylist()}
    assert summary["std"]["n_points"] == 0 and summary["std"]["mean_A"] is None and summary["raw"]["n_points"] == 6
    assert result["hysteresis_peaks"].num_rows == 1 + len(settings.poly_orders)


def test_one_group_and_twelve_groups() -> None:
    one = analyse_day(table(two_run_day()), AnalysisSettings())
    assert one["iv_fits"].num_rows == 1 and one["hysteresis_peaks"].num_rows == 5
    rows = realistic_day(3, chips=(("A", 1), ("A", 2), ("B", 1)), vmaxes=(1.0, 2.0, 3.0, 4.0), runs_per=1)
    twelve = check_against_reference(rows, AnalysisSettings())
    assert twelve["iv_fits"].num_rows == 12
    assert twelve["hysteresis_summary"].num_rows == 12 * 6 and twelve["hysteresis_peaks"].num_rows == 12 * 5
    keys = [(f["chip_group"], f["chip_number"], f["v_max_V"]) for f in twelve["iv_fits"].to_pylist()]
    assert keys == sorted(keys)


def test_fits_that_cannot_be_made_are_null() -> None:
    # Two return voltages: linear fit without errors, poly1 exact, poly3 impossible.
    rows = [("r", "X", 1, "forward_positive", v, v) for v in (0.0, 0.5, 1.0)]
    rows += [("r", "X", 1, "return_positive", v, 3 * v) for v in (0.5, 0.25)]
    (fit,) = check_against_reference(rows, AnalysisSettings(poly_orders=(1, 3)))["iv_fits"].to_pylist()
    assert fit["slope_S"] == pytest.approx(3.0) and fit["slope_err_S"] is None and fit["intercept_err_A"] is None
    assert fit["poly1_c1"] == pytest.approx(3.0) and fit["poly3_c0"] is None and fit["r2_poly3"] is None
    # One return voltage measured three times: one point, too few for a line.
    rows = [("r", "X", 1, "forward_positive", v, v) for v in (0.0, 0.5, 1.0)] + [("r", "X", 1, "return_positive", 0.5, 1.0)] * 3
    (fit,) = check_against_reference(rows, AnalysisSettings(poly_orders=(0, 1)))["iv_fits"].to_pylist()
    assert fit["slope_S"] is None and fit["r_squared"] is None and fit["poly1_c1"] is None
    assert fit["poly0_c0"] == 1.0 and fit["r2_poly0"] == 0.0  # a constant fits a constant; SS_tot = 0 -> R^2 0
    # Five return voltages 1 pV apart: a cubic is numerically singular (numpy.polyfit warns); a line is not.
    rows = [("r", "X", 1, "forward_positive", v, v) for v in (0.0, 0.5, 1.0)]
    rows += [("r", "X", 1, "return_positive", 0.5 + k * 1e-12, float(k)) for k in range(5)]
    (fit,) = analyse_day(table(rows), AnalysisSettings(poly_orders=(1, 3)))["iv_fits"].to_pylist()
    assert fit["n_points"] == 5 and fit["poly1_c1"] is not None and fit["slope_S"] is not None
    assert all(fit[f"poly3_c{k}"] is None for k in range(4)) and fit["r2_poly3"] is None
    with pytest.warns(np.exceptions.RankWarning):
        np.polyfit([0.5 + k * 1e-12 for k in range(5)], list(range(5)), 3)


def test_zero_slope_has_infinite_resistance() -> None:
    rows = [("r", "X", 1, "forward_positive", v, 1.0) for v in (0.0, 0.5, 1.0)]
    rows += [("r", "X", 1, "return_positive", v, 2.0) for v in (0.75, 0.5, 0.25)]
    (fit,) = analyse_day(table(rows), AnalysisSettings())["iv_fits"].to_pylist()
    assert fit["slope_S"] == 0.0 and fit["resistance_ohm"] == math.inf and fit["r_squared"] == 0.0


def test_polynomial_orders_are_configurable_columns() -> None:
    settings = AnalysisSettings(poly_orders=(2, 4))
    result = analyse_day(table(two_run_day()), settings)
    assert "poly4_c4" in result["iv_fits"].column_names and "poly3_c0" not in result["iv_fits"].column_names
    assert [p["method"] for p in result["hysteresis_peaks"].to_pylist()] == ["raw", "poly2", "poly4"]
    assert "i_hysteresis_poly4_A" in result["hysteresis"].column_names


def test_input_types_are_tolerated() -> None:
    # Dictionary-typed run_id (a Hive partition read), chip_number as float64, a missing chip_group column.
    rows = two_run_day()
    t = table(rows).drop_columns(["chip_group"])
    t = t.set_column(0, "run_id", t["run_id"].dictionary_encode()).set_column(1, "chip_number", t["chip_number"].cast(pa.float64()))
    (fit,) = analyse_day(t, AnalysisSettings())["iv_fits"].to_pylist()
    assert (fit["chip_group"], fit["chip_number"], fit["n_runs"]) == (None, 1, 2)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AnalysisSettings(group_by="week")
    with pytest.raises(ValueError):
        AnalysisSettings(poly_orders=(1, 1))
    with pytest.raises(ValueError):
        output_schema("nope", AnalysisSettings())


def test_every_table_starts_with_the_keys() -> None:
    for kind in KINDS:
        assert output_schema(kind, AnalysisSettings()).names[:4] == ["chip_group", "chip_number", "v_max_V", "chip"]
