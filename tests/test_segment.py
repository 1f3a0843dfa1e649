"""find_segments against the lab's previous convention (lab-analysis.md §1).

Expected boundaries are worked out by hand in each test from the §1 rules; a row-by-row reference
loop written from the same text checks the vectorised function on many random sweeps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from nanolab.segment import SEGMENT_TYPES, Segment, find_segments

FP, RP, FN, RN = SEGMENT_TYPES


def centivolts(*counts: np.ndarray) -> np.ndarray:
    """Voltages k / 100 from integer counts: exact set-points, steps of 0.01 V."""
    return np.concatenate(counts) / 100.0


# 0 -> +3 -> 0 -> -3 -> 0 in 0.01 V steps, 1,201 rows:
# rows 0..300 = 0.00..3.00, 301..600 = 2.99..0.00, 601..900 = -0.01..-3.00, 901..1200 = -2.99..0.00.
LAB_SWEEP = centivolts(np.arange(0, 301), np.arange(299, -1, -1), np.arange(-1, -301, -1), np.arange(-299, 1))


def summary(segments: list[Segment]) -> list[tuple[str, int, int, str]]:
    return [(s.segment_type, s.start, s.stop, s.direction) for s in segments]


def test_lab_worked_example() -> None:
    assert LAB_SWEEP.size == 1201
    segments = find_segments(LAB_SWEEP)
    # +3.00 (row 300) ends forward_positive: row 301 (2.99) is the reversal. Row 600 (0.00 after 0.01)
    # is a zero crossing and opens forward_negative; row 901 (-2.99) reverses; row 1200 (0.00 after
    # -0.01) crosses zero and opens a 1-row segment, dropped.
    assert summary(segments) == [
        (FP, 0, 301, "increasing"),
        (RP, 301, 600, "decreasing"),
        (FN, 600, 901, "decreasing"),
        (RN, 901, 1200, "increasing"),
    ]
    assert [s.stop - s.start for s in segments] == [301, 299, 301, 299]
    assert [s.segment_id for s in segments] == [0, 1, 2, 3]
    assert [(s.v_start, s.v_end) for s in segments] == [(0.0, 3.0), (2.99, 0.01), (0.0, -3.0), (-2.99, -0.01)]


def test_v_start_and_v_end_are_the_rows_at_start_and_stop_minus_one() -> None:
    for s in find_segments(LAB_SWEEP):
        assert s.v_start == LAB_SWEEP[s.start]
        assert s.v_end == LAB_SWEEP[s.stop - 1]


def test_negative_first_sweep_is_the_mirror() -> None:
    segments = find_segments(-LAB_SWEEP)
    assert summary(segments) == [
        (FN, 0, 301, "decreasing"),
        (RN, 301, 600, "increasing"),
        (FP, 600, 901, "increasing"),
        (RP, 901, 1200, "decreasing"),
    ]
    assert [(s.v_start, s.v_end) for s in segments] == [(0.0, -3.0), (-2.99, -0.01), (0.0, 3.0), (2.99, 0.01)]


def test_sweep_aborted_in_forward_negative() -> None:
    segments = find_segments(LAB_SWEEP[:750])  # last row 749 = -1.49 V on the way down
    assert summary(segments) == [(FP, 0, 301, "increasing"), (RP, 301, 600, "decreasing"), (FN, 600, 750, "decreasing")]
    assert segments[-1].v_end == -1.49


def test_sweep_aborted_in_forward_positive() -> None:
    segments = find_segments(LAB_SWEEP[:60])
    assert summary(segments) == [(FP, 0, 60, "increasing")]
    assert segments[0].v_end == 0.59


def test_single_polarity_sweep() -> None:
    v = centivolts(np.arange(0, 101), np.arange(99, -1, -1))  # 0 -> +1 -> 0, rows 0..200
    # Row 101 (0.99) reverses; row 200 (0.00) crosses zero and is a dropped 1-row segment.
    assert summary(find_segments(v)) == [(FP, 0, 101, "increasing"), (RP, 101, 200, "decreasing")]


def test_steps_below_threshold_neither_reverse_nor_set_the_direction() -> None:
    v = np.concatenate(
        (
            np.arange(0, 11) / 100,  # rows 0..10: 0.00 .. 0.10
            [0.1004, 0.0998, 0.1003, 0.0999],  # rows 11..14: dwell, steps of 0.4-0.6 mV
            np.arange(9, -1, -1) / 100,  # rows 15..24: 0.09 .. 0.00
            -np.arange(1, 6) / 100,  # rows 25..29: -0.01 .. -0.05
        )
    )
    segments = find_segments(v, dv_threshold=1e-3)
    # The dwell's downward steps are noise; row 15 (0.0999 -> 0.09) is the reversal; row 24 (0.01 -> 0.00) crosses zero.
    assert summary(segments) == [(FP, 0, 15, "increasing"), (RP, 15, 24, "decreasing"), (FN, 24, 30, "decreasing")]
    assert segments[0].v_end == 0.0999


def test_direction_persists_across_a_zero_crossing_made_of_noise_steps() -> None:
    # Down from +0.05 in 10 mV steps, then 0.01 -> 0.0004 -> -0.0003 (noise steps, 2nd crosses zero), then further down.
    v = np.array([0.05, 0.04, 0.03, 0.02, 0.01, 0.0004, -0.0003, -0.01, -0.02, -0.03, -0.04])
    # Row 6 crosses zero (0.0004 > 0, -0.0003 <= 0); its step is noise but the direction stays "decreasing".
    assert summary(find_segments(v, min_points=1)) == [(RP, 0, 6, "decreasing"), (FN, 6, 11, "decreasing")]


def test_a_segment_closed_by_the_step_that_first_sets_the_direction_takes_that_direction() -> None:
    # Row 2: the first significant step (-10.4 mV) sets "decreasing", then its zero crossing closes rows 0..1.
    v = np.array([0.0005, 0.0004, -0.01, -0.02, -0.03])
    assert summary(find_segments(v, min_points=2)) == [(RP, 0, 2, "decreasing"), (FN, 2, 5, "decreasing")]
    # With a NaN first row the sign checks fail, so the direction alone decides: forward_negative.
    v = np.array([np.nan, 0.0004, -0.01, -0.02, -0.03])
    assert summary(find_segments(v, min_points=2)) == [(FN, 0, 2, "decreasing"), (FN, 2, 5, "decreasing")]


@pytest.mark.parametrize(("level", "expected"), [(0.0, RN), (0.5, RP), (-2.0, RN)])
def test_constant_array_is_one_segment_of_unknown_direction(level: float, expected: str) -> None:
    # No significant step: direction unknown; both <= 0 -> return_negative, both >= 0 -> return_positive.
    assert summary(find_segments(np.full(100, level))) == [(expected, 0, 100, "unknown")]


def test_min_points_drops_short_segments_and_renumbers() -> None:
    v = centivolts(
        np.arange(0, 11),  # rows 0..10   0.00 .. 0.10
        np.arange(9, 0, -1),  # rows 11..19  0.09 .. 0.01
        np.arange(0, -4, -1),  # rows 20..23  0.00 .. -0.03 (4 rows)
        np.arange(-2, 0),  # rows 24..25  -0.02, -0.01 (2 rows)
        np.arange(0, 8),  # rows 26..33  0.00 .. 0.07
    )
    everything = find_segments(v, min_points=1)
    assert summary(everything) == [
        (FP, 0, 11, "increasing"),
        (RP, 11, 20, "decreasing"),
        (FN, 20, 24, "decreasing"),
        (RN, 24, 26, "increasing"),
        (FP, 26, 34, "increasing"),
    ]
    kept = find_segments(v, min_points=4)  # exactly 4 rows is enough
    assert summary(kept) == [(FP, 0, 11, "increasing"), (RP, 11, 20, "decreasing"), (FN, 20, 24, "decreasing"), (FP, 26, 34, "increasing")]
    assert [s.segment_id for s in kept] == [0, 1, 2, 3]
    assert [s.segment_id for s in find_segments(v, min_points=5)] == [0, 1, 2]


def test_nan_at_the_turning_point_moves_the_reversal_one_row() -> None:
    v = LAB_SWEEP.copy()
    v[300] = np.nan  # +3.00
    # Steps 300 (2.99 -> NaN) and 301 (NaN -> 2.99) are not significant; row 302 (2.98) is the reversal.
    assert summary(find_segments(v))[:2] == [(FP, 0, 302, "increasing"), (RP, 302, 600, "decreasing")]


def test_nan_at_the_zero_row_hides_the_zero_crossing() -> None:
    v = LAB_SWEEP.copy()
    v[600] = np.nan  # the 0.00 between return_positive and forward_negative
    # 0.01 -> NaN and NaN -> -0.01 are neither crossings nor steps; -0.01 -> -0.02 continues "decreasing".
    # So rows 301..900 stay one segment, from +2.99 to -3.00: mixed signs, decreasing -> forward_negative.
    segments = find_segments(v)
    assert summary(segments) == [(FP, 0, 301, "increasing"), (FN, 301, 901, "decreasing"), (RN, 901, 1200, "increasing")]
    assert (segments[1].v_start, segments[1].v_end) == (2.99, -3.0)


def test_nan_rows_count_toward_min_points_and_nan_ends_fail_the_sign_checks() -> None:
    v = np.array([np.nan, 0.0, 0.01, 0.02, np.nan])
    segments = find_segments(v, min_points=5)
    assert summary(segments) == [(FP, 0, 5, "increasing")]  # mixed branch: not decreasing -> forward_positive
    assert math.isnan(segments[0].v_start) and math.isnan(segments[0].v_end)
    assert find_segments(v, min_points=6) == []


def test_all_nan_is_one_segment_of_unknown_direction() -> None:
    assert summary(find_segments(np.full(10, np.nan))) == [(FP, 0, 10, "unknown")]


def test_empty_and_tiny_inputs() -> None:
    assert find_segments(np.array([])) == []
    assert summary(find_segments(np.array([0.5]), min_points=1)) == [(RP, 0, 1, "unknown")]
    assert find_segments(np.array([0.5])) == []
    assert summary(find_segments(np.array([0.0, 0.5]), min_points=2)) == [(FP, 0, 2, "increasing")]


def test_dv_threshold_decides_what_is_a_step() -> None:
    # 0 -> +0.05 -> -0.05 -> 0 in 0.5 mV steps: at 1 mV every step is noise, at 0.1 mV they are real.
    v = np.concatenate((np.arange(0, 101), np.arange(99, -101, -1), np.arange(-99, 1))) / 2000
    coarse = find_segments(v, dv_threshold=1e-3)
    # No direction ever: the zero crossings alone split it (rows 200 and 400 are 0.00 after a non-zero row);
    # 0 .. +0.0005 is both >= 0 and not increasing -> return_positive.
    assert summary(coarse) == [(RP, 0, 200, "unknown"), (RN, 200, 400, "unknown")]
    fine = find_segments(v, dv_threshold=1e-4)
    assert summary(fine) == [(FP, 0, 101, "increasing"), (RP, 101, 200, "decreasing"), (FN, 200, 301, "decreasing"), (RN, 301, 400, "increasing")]


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        find_segments(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        find_segments(np.zeros(3), dv_threshold=0.0)


# --- the §1 text, row by row, as the lab's loop ran it ------------------------------------------------


def reference(v: np.ndarray, dv_threshold: float, min_points: int) -> list[tuple]:
    def seg_type(a: float, b: float, direction: str | None) -> str:
        if a <= 0 and b <= 0:
            return "forward_negative" if direction == "decreasing" else "return_negative"
        if a >= 0 and b >= 0:
            return "forward_positive" if direction == "increasing" else "return_positive"
        return "forward_negative" if direction == "decreasing" else "forward_positive"

    out: list[tuple] = []

    def close(start: int, stop: int, direction: str | None) -> None:
        if stop - start >= min_points:
            a, b = float(v[start]), float(v[stop - 1])
            out.append((len(out), seg_type(a, b, direction), start, stop, a, b, direction or "unknown"))

    direction, start = None, 0
    for i in range(1, len(v)):
        dv = v[i] - v[i - 1]
        step = None
        if abs(dv) >= dv_threshold:
            step = "increasing" if dv > 0 else "decreasing"
        new = False
        if step is not None:
            if direction is None:
                direction = step
            elif step != direction:
                new = True
        if (v[i - 1] < 0 and v[i] >= 0) or (v[i - 1] > 0 and v[i] <= 0):
            new = True
        if new:
            close(start, i, direction)
            start = i
            if step is not None:
                direction = step
    if len(v):
        close(start, len(v), direction)
    return out


def as_tuples(segments: list[Segment]) -> list[tuple]:
    return [(s.segment_id, s.segment_type, s.start, s.stop, s.v_start, s.v_end, s.direction) for s in segments]


def same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal, NaN voltages included."""
    return len(a) == len(b) and all(len(x) == len(y) and all(p == q or (p != p and q != q) for p, q in zip(x, y)) for x, y in zip(a, b))


def random_sweep(rng: np.random.Generator) -> np.ndarray:
    """Legs between random targets (crossing zero or not) with random step size, noise, plateaus, NaNs and exact zeros."""
    level = float(rng.choice([0.0, rng.uniform(-2, 2)]))
    parts = [np.array([level])]
    for _ in range(int(rng.integers(1, 7))):
        target = float(rng.choice([0.0, rng.uniform(-3, 3)]))
        step = rng.choice([0.0005, 0.001, 0.002, 0.01, 0.05])
        n = max(1, int(abs(target - level) / step))
        leg = np.linspace(level, target, n + 1)[1:]
        if rng.random() < 0.5:
            leg = leg + rng.normal(0.0, rng.choice([1e-4, 5e-4, 2e-3]), leg.size)
        parts.append(leg)
        if rng.random() < 0.4:  # plateau at the target
            parts.append(target + rng.normal(0.0, 3e-4, int(rng.integers(1, 20))))
        level = target
    v = np.concatenate(parts)
    if rng.random() < 0.5:
        v = np.round(v, 2)  # set-point-like values, with exact zeros
    if rng.random() < 0.6:
        v[rng.random(v.size) < rng.choice([0.01, 0.1])] = np.nan
    return v


@pytest.mark.parametrize("seed", range(300))
def test_vectorised_equals_the_reference_loop_on_random_sweeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = random_sweep(rng)
    dv_threshold = float(rng.choice([1e-4, 1e-3, 2e-3, 1e-2]))
    min_points = int(rng.integers(1, 12))
    expected = reference(v, dv_threshold, min_points)
    got = as_tuples(find_segments(v, dv_threshold, min_points))
    assert same(got, expected), (seed, got[:5], expected[:5])


def test_reference_loop_agrees_with_the_worked_example() -> None:
    # Guards the reference itself: it must reproduce the hand-computed §1 example.
    assert [(t[1], t[2], t[3], t[6]) for t in reference(LAB_SWEEP, 1e-3, 5)] == summary(find_segments(LAB_SWEEP))
    assert [t[3] - t[2] for t in reference(LAB_SWEEP, 1e-3, 5)] == [301, 299, 301, 299]


def test_a_million_points_of_repeated_sweeps() -> None:
    # 0 -> +8 -> 0 -> -8 -> 0 at 4 mV, its final 0 V row removed, 125 times: every repeat starts with
    # 0.00 after -0.004, a zero crossing, so each gives the same four segments.
    one = np.concatenate((np.arange(0, 2001), np.arange(1999, -1, -1), np.arange(-1, -2001, -1), np.arange(-1999, 0))) * 0.004
    v = np.tile(one, 125)
    segments = find_segments(v)
    assert v.size == 1_000_000
    assert [s.segment_type for s in segments] == [FP, RP, FN, RN] * 125
    assert [s.stop - s.start for s in segments[:4]] == [2001, 1999, 2001, 1999]
