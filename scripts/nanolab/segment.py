"""Split an IV voltage sweep (0 -> +Vmax -> -Vmax -> 0, or its mirror) into its monotonic segments.

A segment is a maximal run of measurement steps with the same polarity (sign of V) and the same
direction (|V| moving away from 0 or back toward it). Segment boundaries are therefore exactly the
direction reversals and the zero crossings. Everything is vectorised: there is no Python loop over
rows, only over the handful of segments found.

Conventions:

* Step i is the move from row i-1 to row i. Row 0 belongs to the first step's segment, row i >= 1
  to the segment of step i. So a turning point (+Vmax) closes the segment that reached it, and the
  0 V row that ends return_positive belongs to return_positive.
* Steps with |dV| < dv_threshold are noise: they take the direction of the previous significant
  step (or of the next one when no significant step comes before).
* Non-finite voltages (NaN, +-inf) are measurement gaps. Segmentation runs on the finite rows only
  and the indices are mapped back to the input array, so a gap never splits a segment. A segment's
  `start`/`stop` still mean "rows voltage[start:stop]": a gap row lying *inside* a segment is part
  of that slice, while gap rows before the first, after the last or between two segments belong
  to none. min_points counts finite rows, so every kept slice has at least min_points real values.
* A sweep without any significant step (a constant or noise-only array) has no direction and
  yields no segments, as do inputs with fewer than two finite rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENT_TYPES: tuple[str, ...] = ("forward_positive", "return_positive", "forward_negative", "return_negative")
DIRECTIONS: dict[int, str] = {1: "increasing", -1: "decreasing"}


@dataclass(frozen=True)
class Segment:
    segment_id: int  # 0..n-1 over the kept segments, in sweep order
    segment_type: str  # one of SEGMENT_TYPES
    start: int  # first row index into the input array (inclusive)
    stop: int  # last row index + 1 (exclusive): rows voltage[start:stop]
    v_start: float  # voltage at row start
    v_end: float  # voltage at row stop - 1
    direction: str  # "increasing" or "decreasing"


def fill_zeros(signs: np.ndarray) -> np.ndarray:
    """Replace zeros by the previous non-zero value, leading zeros by the first non-zero one.

    Returns all zeros when `signs` has no non-zero value.
    """
    nonzero = signs != 0
    if not nonzero.any():
        return np.zeros_like(signs)
    positions = np.where(nonzero, np.arange(signs.size), -1)
    positions = np.maximum.accumulate(positions)
    positions[positions < 0] = np.argmax(nonzero)
    return signs[positions]


def step_directions(v: np.ndarray, dv_threshold: float) -> np.ndarray:
    """+1 / -1 per step (v[i-1] -> v[i]); noise steps inherit a neighbour's direction, 0 if none has one."""
    dv = np.diff(v)
    significant = (np.abs(dv) >= dv_threshold) & (dv != 0)
    return fill_zeros(np.where(significant, np.sign(dv), 0.0).astype(np.int8))


def step_polarities(v: np.ndarray) -> np.ndarray:
    """+1 / -1 per step: sign of the step's midpoint, falling back to its end, then its start, then a neighbour."""
    previous, current = v[:-1], v[1:]
    polarity = np.sign(previous + current)
    polarity = np.where(polarity == 0, np.sign(current), polarity)
    polarity = np.where(polarity == 0, np.sign(previous), polarity)
    # Only 0 -> 0 steps are left undecided; they continue whichever segment they sit in.
    return fill_zeros(polarity.astype(np.int8))


def step_types(direction: np.ndarray, polarity: np.ndarray) -> np.ndarray:
    """Index into SEGMENT_TYPES per step: negative polarity adds 2, moving toward 0 adds 1."""
    returning = direction * polarity < 0
    return (2 * (polarity < 0) + returning).astype(np.int8)


def run_bounds(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index (inclusive) of every run of equal values in a non-empty array."""
    changes = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    firsts = np.concatenate(([0], changes))
    lasts = np.concatenate((changes - 1, [codes.size - 1]))
    return firsts, lasts


def find_segments(voltage: np.ndarray, dv_threshold: float = 1e-3, min_points: int = 5) -> list[Segment]:
    """Segments of an IV sweep in sweep order; those with fewer than `min_points` finite rows are dropped.

    See the module docstring for how rows, noise steps and NaN rows are assigned.
    """
    voltage = np.asarray(voltage, dtype=np.float64)
    if voltage.ndim != 1:
        raise ValueError(f"voltage must be one-dimensional, got shape {voltage.shape}")
    rows = np.flatnonzero(np.isfinite(voltage))  # original index of every finite row
    if rows.size < 2:
        return []
    v = voltage[rows]
    direction = step_directions(v, dv_threshold)
    if direction[0] == 0:  # no significant step anywhere: not a sweep
        return []
    codes = step_types(direction, step_polarities(v))
    first_step, last_step = run_bounds(codes)
    # Step k joins finite rows k and k+1; the run's first row is k+1 except for the very first run.
    first_row = np.where(first_step == 0, 0, first_step + 1)
    last_row = last_step + 1
    keep = np.flatnonzero(last_row - first_row + 1 >= min_points)

    segments = []
    for segment_id, run in enumerate(keep):
        start, last = int(rows[first_row[run]]), int(rows[last_row[run]])
        segments.append(
            Segment(
                segment_id=segment_id,
                segment_type=SEGMENT_TYPES[codes[first_step[run]]],
                start=start,
                stop=last + 1,
                v_start=float(voltage[start]),
                v_end=float(voltage[last]),
                direction=DIRECTIONS[int(direction[first_step[run]])],
            )
        )
    return segments
