"""Split an IV voltage sweep into segments exactly as the lab's previous pipeline did.

The rules (docs: lab-analysis.md §1), with dV[i] = V[i] - V[i-1] and a step significant when
|dV[i]| >= dv_threshold:

* The current direction is the sign of the last significant step so far. It persists across
  segment boundaries; steps below the threshold never change it.
* Row i starts a new segment on a reversal (a significant step whose sign differs from the current
  direction, once one is set) or on a zero crossing ((V[i-1] < 0 and V[i] >= 0) or (V[i-1] > 0 and
  V[i] <= 0)). So a turning point (+Vmax) ends the segment that reached it, and the 0 V row after a
  non-zero row opens the next segment.
* A segment spans [start, i-1] and is kept only with >= min_points rows; kept segments are numbered
  from 0. Its direction is the current direction when it was closed: at row i the lab's loop first
  sets an unset direction from a significant dV[i], then closes the segment, so a segment closed by
  the very step that first sets the direction gets that step's direction. "unknown" if none is set.
* Type from (v_start, v_end, direction), checked in this order: both <= 0 -> forward_negative if
  decreasing else return_negative; both >= 0 -> forward_positive if increasing else return_positive;
  otherwise forward_negative if decreasing else forward_positive.

NaN voltages follow the rules literally with IEEE semantics, as the lab's row loop did: every
comparison with NaN is false, so neither a NaN row nor the row after it is a significant step or a
zero crossing; NaN rows belong to whichever segment they fall in and count toward min_points, and a
NaN v_start/v_end makes the sign checks fail (the "otherwise" branch).

Everything is vectorised over rows; the only Python loop is over the segments found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEGMENT_TYPES: tuple[str, ...] = ("forward_positive", "return_positive", "forward_negative", "return_negative")
DIRECTIONS: dict[int, str] = {1: "increasing", -1: "decreasing", 0: "unknown"}


@dataclass(frozen=True)
class Segment:
    segment_id: int  # 0..n-1 over the kept segments, in sweep order
    segment_type: str  # one of SEGMENT_TYPES
    start: int  # first row index into the input array (inclusive)
    stop: int  # last row index + 1 (exclusive): rows voltage[start:stop]
    v_start: float  # voltage at row start
    v_end: float  # voltage at row stop - 1
    direction: str  # "increasing", "decreasing" or "unknown"


def forward_fill(signs: np.ndarray) -> np.ndarray:
    """Each position's last non-zero value up to and including it; 0 before the first non-zero."""
    positions = np.maximum.accumulate(np.where(signs != 0, np.arange(signs.size), -1))
    return np.where(positions >= 0, signs[np.maximum(positions, 0)], 0).astype(np.int8)


def segment_type(v_start: float, v_end: float, direction: int) -> str:
    """The lab's type rule; NaN voltages fail both sign checks."""
    if v_start <= 0 and v_end <= 0:
        return "forward_negative" if direction < 0 else "return_negative"
    if v_start >= 0 and v_end >= 0:
        return "forward_positive" if direction > 0 else "return_positive"
    return "forward_negative" if direction < 0 else "forward_positive"


def find_segments(voltage: np.ndarray, dv_threshold: float = 1e-3, min_points: int = 5) -> list[Segment]:
    """Segments of an IV sweep in sweep order, by the lab's rules (module docstring)."""
    voltage = np.asarray(voltage, dtype=np.float64)
    if voltage.ndim != 1:
        raise ValueError(f"voltage must be one-dimensional, got shape {voltage.shape}")
    if not dv_threshold > 0:
        raise ValueError(f"dv_threshold must be > 0, got {dv_threshold}")  # else a 0 V step would have a direction
    n = voltage.size
    if n == 0:
        return []
    previous, current = voltage[:-1], voltage[1:]  # step k is row k+1
    with np.errstate(invalid="ignore"):
        dv = current - previous
        step = np.where(np.abs(dv) >= dv_threshold, np.sign(dv), 0).astype(np.int8)  # NaN: 0
        crossing = ((previous < 0) & (current >= 0)) | ((previous > 0) & (current <= 0))
    after = forward_fill(step)  # current direction once step k is processed
    before = np.concatenate(([0], after[:-1])).astype(np.int8)  # ... before it
    reversal = (step != 0) & (before != 0) & (step != before)
    boundary = np.flatnonzero(reversal | crossing)  # step indices; row = step + 1
    # Closing direction: the direction before the step, or the one the step itself sets when none was set.
    closing = np.where(before[boundary] != 0, before[boundary], step[boundary])
    last_direction = after[-1] if after.size else 0
    starts = np.concatenate(([0], boundary + 1))
    stops = np.concatenate((boundary + 1, [n]))
    directions = np.concatenate((closing, [last_direction]))
    keep = np.flatnonzero(stops - starts >= min_points)

    segments = []
    for segment_id, k in enumerate(keep):
        start, stop, direction = int(starts[k]), int(stops[k]), int(directions[k])
        v_start, v_end = float(voltage[start]), float(voltage[stop - 1])
        segments.append(
            Segment(
                segment_id=segment_id,
                segment_type=segment_type(v_start, v_end, direction),
                start=start,
                stop=stop,
                v_start=v_start,
                v_end=v_end,
                direction=DIRECTIONS[direction],
            )
        )
    return segments
