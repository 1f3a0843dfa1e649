"""One IVg run (a transfer curve: I against Vg at a fixed VDS) as the lab reads it, pure functions of arrays.

The rules are `../shared/lab-analysis-3.md` §1 (the lab's own code, with the corrections marked "Do" there):
legs (§1.1), the charge-neutrality point per leg and the current there (§1.2), its hysteresis, the on/off
ratio per leg (§1.3), the transconductance and its peaks on the hole and electron branches (§1.4) and the
run-level quality flags (§1.6) with CURRENT_JUMP and CNP_NEAR_SWEEP_END (§1.2). A value that does not exist is None with a
reason code (`field:CODE`), never 0 or NaN; warnings that keep a value are flags. Not yet in the workflow:
the IVg day analysis job and its registry entry build on these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FULL_LEG = 0.95  # a leg counts when it spans this share of the sweep's range
FLAT_STEP = 1e-9  # a step this small (× the range) neither starts nor ends a leg
HIGH_HYSTERESIS_V = 1.0
NEAR_END = 0.05  # a CNP this close to a sweep end (share of the swept range) is flagged
DEAD_CURRENT_A = 1e-12
DEAD_FLAT = 0.15
STUCK = 0.95
SATURATED = 0.10


@dataclass(frozen=True)
class Leg:
    start: int  # first sample (the turning sample of the leg before it belongs to both)
    stop: int  # one past the last sample
    forward: bool  # Vg increases along it
    full: bool  # spans FULL_LEG of the sweep's range


@dataclass
class Result:
    """Values by name (None where they do not exist), the reasons of the nulls and the warnings."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    def null(self, name: str, code: str) -> None:
        self.values[name] = None
        self.reasons.append(f"{name}:{code}")

    def flag(self, code: str) -> None:
        if code not in self.flags:
            self.flags.append(code)


def sweep_range(vg: np.ndarray, vg_start: float | None, vg_end: float | None) -> float:
    """max(the data's range, |VG end − VG start|) (§1.1 Do: a run stopped in its first leg has no full leg)."""
    span = float(np.max(vg) - np.min(vg)) if vg.size else 0.0
    programmed = abs(vg_end - vg_start) if vg_start is not None and vg_end is not None else 0.0
    return max(span, programmed)


def legs(vg: np.ndarray, full_range: float) -> list[Leg]:
    """The sweep cut where ΔVg changes sign; flat steps (|ΔVg| ≤ 1e-9 × range) neither start nor end a leg,
    the turning sample belongs to both legs, legs of fewer than 3 samples are dropped."""
    steps = np.diff(vg)
    signs = np.sign(steps) * (np.abs(steps) > FLAT_STEP * full_range)
    found, start, direction = [], 0, 0
    for k, sign in enumerate(signs):
        if sign == 0:
            continue
        if direction == 0:
            direction = sign
        elif sign != direction:
            found.append((start, k + 1, direction))  # sample k is the turn: the last of this leg …
            start, direction = k, sign  # … and the first of the next
    if direction != 0:
        found.append((start, len(vg), direction))
    result = []
    for begin, end, sign in found:
        if end - begin < 3:
            continue
        span = float(np.max(vg[begin:end]) - np.min(vg[begin:end]))
        result.append(Leg(begin, end, bool(sign > 0), bool(full_range > 0 and span >= FULL_LEG * full_range)))
    return result


def first_full(found: list[Leg], forward: bool) -> Leg | None:
    return next((leg for leg in found if leg.full and leg.forward is forward), None)


def cnp(vg: np.ndarray, i: np.ndarray) -> tuple[float, float] | str:
    """(CNP in V, I at the CNP in A) of one leg, or the reason code there is none (§1.2): a parabola fitted by
    least squares to the signed I of max(3, round(1 % of the leg)) samples around the smallest |I|."""
    n = len(i)
    k = int(np.argmin(np.abs(i)))
    window = max(3, round(0.01 * n))  # Python's round: half to even, as the lab's
    h = max(1, window // 2)
    if k - h < 0 or k + h >= n:
        return "MIN_AT_LEG_EDGE"
    x, y = vg[k - h : k + h + 1], i[k - h : k + h + 1]
    a, b, c = np.polyfit(x, y, 2)
    if not np.isfinite(a) or abs(a) < 1e-30:
        return "DEGENERATE_PARABOLA"
    vertex = -b / (2 * a)
    if not (np.min(x) <= vertex <= np.max(x)):
        return "VERTEX_OUTSIDE_WINDOW"
    if a * np.sign(i[k]) <= 0:
        return "PARABOLA_NOT_A_MINIMUM_OF_ABS_I"
    return float(vertex), float(c - b * b / (4 * a))


def on_off(i: np.ndarray) -> float | str:
    """max|I| / min|I| over a leg (§1.3 Do), or the reason there is none."""
    smallest = float(np.min(np.abs(i)))
    return "ZERO_CURRENT_IN_LEG" if smallest == 0 else float(np.max(np.abs(i)) / smallest)


GM_WINDOW, GM_ORDER, BRANCH_POINTS = 9, 3, 5
JUMP_SHARE, JUMP_FACTOR, JUMP_NEIGHBOURS = 0.05, 4.0, 3  # a step > 5 % of the leg's |I| range and 4x the median of 3+3 neighbours


def has_current_jump(i: np.ndarray) -> bool:
    """§1.2: one step of the leg exceeds 5 % of its |I| range and 4× the median of its six neighbouring steps."""
    steps = np.abs(np.diff(i))
    magnitude = np.abs(i)
    span = float(np.max(magnitude) - np.min(magnitude)) if i.size else 0.0
    for k in np.flatnonzero(steps > JUMP_SHARE * span):
        neighbours = np.concatenate([steps[max(0, k - JUMP_NEIGHBOURS) : k], steps[k + 1 : k + 1 + JUMP_NEIGHBOURS]])
        if neighbours.size and steps[k] > JUMP_FACTOR * float(np.median(neighbours)):
            return True
    return False


def transconductance(vg: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(Vg sorted, g_m = dI/dVg there) of one leg (§1.4): at each sample the derivative of a least-squares
    cubic over the 9 samples centred on it (the first or last 9 at the ends), as the lab's Savitzky–Golay
    filter (window 9, order 3, mode "interp") gives on evenly spaced Vg, with its clamps for short legs;
    None below 3 samples."""
    order = np.argsort(vg, kind="stable")
    x, y, n = vg[order], i[order], len(vg)
    if n < 3:
        return None
    window = min(GM_WINDOW, n if n % 2 else n - 1)
    window = max(window, GM_ORDER + 2)
    window += 1 - window % 2  # odd
    if window > n:
        window = n if n % 2 else n - 1
    degree = min(GM_ORDER, window - 1)
    half, gm = window // 2, np.empty(n)
    for k in range(n):
        first = min(max(k - half, 0), n - window)
        xs = x[first : first + window]
        coefficients = np.polyfit(xs - x[k], y[first : first + window], degree)  # centred: the slope is the x¹ term
        gm[k] = coefficients[-2]
    return x, gm


def gm_peaks(vg: np.ndarray, i: np.ndarray, vds: float | None, result: Result, prefix: str = "gm_max") -> None:
    """|g_m| at the largest |g_m| on the hole (Vg below the coarse CNP, argmin |I|) and electron branches of a
    leg, into `result` as `<prefix>_hole_S`, `<prefix>_electron_S`; a branch of fewer than 5 samples has none;
    a peak whose sign is not −sign(VDS) on holes, +sign(VDS) on electrons is flagged (a current jump)."""
    found = transconductance(vg, i)
    for branch, expected in (("hole", -1.0), ("electron", 1.0)):
        name = f"{prefix}_{branch}_S"
        if found is None:
            result.null(name, "BRANCH_HAS_FEWER_THAN_5_POINTS")
            continue
        x, gm = found
        coarse = x[int(np.argmin(np.abs(i[np.argsort(vg, kind="stable")])))]
        on_branch = x < coarse if branch == "hole" else x > coarse
        if int(np.sum(on_branch)) < BRANCH_POINTS:
            result.null(name, "BRANCH_HAS_FEWER_THAN_5_POINTS")
            continue
        values = gm[on_branch]
        peak = float(values[int(np.argmax(np.abs(values)))])
        result.values[name] = abs(peak)
        if vds and np.sign(peak) != expected * np.sign(vds):
            result.flag("GM_SIGN_UNEXPECTED")


def dead_flags(i: np.ndarray) -> list[str]:
    """§1.6: DEAD_OPEN_CIRCUIT (max|I| < 1 pA; no other check then), DEAD_FLAT_IVG (modulation < 0.15),
    DEAD_STUCK_SATURATED (more than 95 % of samples within 1 % of max|I|); SATURATED above 10 %."""
    magnitude = np.abs(i)
    largest = float(np.max(magnitude))
    if largest < DEAD_CURRENT_A:
        return ["DEAD_OPEN_CIRCUIT"]
    flags = []
    if (largest - float(np.min(magnitude))) / largest < DEAD_FLAT:
        flags.append("DEAD_FLAT_IVG")
    saturated = float(np.mean(np.abs(magnitude - largest) < 0.01 * largest))
    if saturated > STUCK:
        flags.append("DEAD_STUCK_SATURATED")
    elif saturated > SATURATED:
        flags.append("SATURATED")
    return flags


def analyse_run(vg: np.ndarray, i: np.ndarray, vg_start: float | None = None, vg_end: float | None = None, vds: float | None = None) -> Result:
    """The per-run values of §1.2–1.4 and §1.6: CNP and I at the CNP per full leg, hysteresis, on/off per leg,
    the g_m peaks of the forward leg, with the flags and null reasons. Rows whose Vg or I is not finite are
    dropped first."""
    result = Result()
    finite = np.isfinite(vg) & np.isfinite(i)
    if not finite.all():
        result.flag("NONFINITE_ROWS_DROPPED")
        vg, i = vg[finite], i[finite]
    names = ("cnp_forward_V", "cnp_backward_V", "i_cnp_forward_A", "i_cnp_backward_A", "cnp_hysteresis_V", "on_off_forward", "on_off_backward")
    names += ("gm_max_hole_S", "gm_max_electron_S")
    if len(i) < 3:
        for name in names:
            result.null(name, "FEWER_THAN_3_SAMPLES")
        return result
    quality = dead_flags(i)
    dead = [flag for flag in quality if flag.startswith("DEAD_")]
    for flag in quality:
        result.flag(flag)
    if dead:
        for name in names:
            result.null(name, dead[0])
        return result
    full_range = sweep_range(vg, vg_start, vg_end)
    found = legs(vg, full_range)
    chosen = {"forward": first_full(found, True), "backward": first_full(found, False)}
    if sum(leg is not None for leg in chosen.values()) == 1:
        result.flag("ONE_FULL_LEG_ONLY")
    programmed = vg_start is not None and vg_end is not None
    low, high = (min(vg_start, vg_end), max(vg_start, vg_end)) if programmed else (float(np.min(vg)), float(np.max(vg)))
    for direction, leg in chosen.items():
        if leg is None:
            gm = ("gm_max_hole_S", "gm_max_electron_S") if direction == "forward" else ()
            for name in (f"cnp_{direction}_V", f"i_cnp_{direction}_A", f"on_off_{direction}", *gm):
                result.null(name, "NO_FULL_RANGE_LEG")
            continue
        x, y = vg[leg.start : leg.stop], i[leg.start : leg.stop]
        point = cnp(x, y)
        if isinstance(point, str):
            result.null(f"cnp_{direction}_V", point)
            result.null(f"i_cnp_{direction}_A", point)
        else:
            result.values[f"cnp_{direction}_V"], result.values[f"i_cnp_{direction}_A"] = point
            if min(point[0] - low, high - point[0]) <= NEAR_END * (high - low):
                result.flag("CNP_NEAR_SWEEP_END")
        if has_current_jump(y):
            result.flag("CURRENT_JUMP")
        ratio = on_off(y)
        if isinstance(ratio, str):
            result.null(f"on_off_{direction}", ratio)
        else:
            result.values[f"on_off_{direction}"] = ratio
        if direction == "forward":
            gm_peaks(x, y, vds, result)
    forward, backward = result.values.get("cnp_forward_V"), result.values.get("cnp_backward_V")
    if forward is None or backward is None:
        result.null("cnp_hysteresis_V", "NEEDS_BOTH_CNPS")
    else:
        result.values["cnp_hysteresis_V"] = backward - forward
        if abs(backward - forward) > HIGH_HYSTERESIS_V:
            result.flag("HIGH_HYSTERESIS")
    return result
