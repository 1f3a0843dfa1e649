"""find_segments against sweeps whose true boundaries are known by construction.

Sweeps are built leg by leg with np.linspace; each leg after the first drops its first point (the
previous leg's last one), so the row ranges below follow from the leg lengths alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from nanolab.segment import SEGMENT_TYPES, Segment, find_segments

FP, RP, FN, RN = SEGMENT_TYPES


def sweep(*legs: tuple[float, float, int]) -> np.ndarray:
    """Concatenate linear legs (v_from, v_to, steps); the first leg has steps+1 rows, the others steps rows."""
    parts = [np.linspace(a, b, n + 1) for a, b, n in legs]
    return np.concatenate([parts[0]] + [p[1:] for p in parts[1:]])


# 0 -> +1 -> -1 -> 0 in 10 mV steps: 401 rows.
CLEAN = sweep((0.0, 1.0, 100), (1.0, -1.0, 200), (-1.0, 0.0, 100))
# Rows: 0..100 reach +1 V, 101..200 return to 0 V, 201..300 reach -1 V, 301..400 return to 0 V.
CLEAN_BOUNDS = [(FP, 0, 101), (RP, 101, 201), (FN, 201, 301), (RN, 301, 401)]


def summary(segments: list[Segment]) -> list[tuple[str, int, int]]:
    return [(s.segment_type, s.start, s.stop) for s in segments]


def test_clean_sweep_has_four_exact_segments() -> None:
    segments = find_segments(CLEAN)
    assert summary(segments) == CLEAN_BOUNDS
    assert [s.segment_id for s in segments] == [0, 1, 2, 3]
    assert [s.direction for s in segments] == ["increasing", "decreasing", "decreasing", "increasing"]
    assert [s.v_start for s in segments] == pytest.approx([0.0, 0.99, -0.01, -0.99], abs=1e-12)
    assert [s.v_end for s in segments] == pytest.approx([1.0, 0.0, -1.0, 0.0], abs=1e-12)


def test_v_start_and_v_end_are_the_rows_at_start_and_stop_minus_one() -> None:
    for s in find_segments(CLEAN):
        assert s.v_start == CLEAN[s.start]
        assert s.v_end == CLEAN[s.stop - 1]


def test_noisy_sweep_keeps_types_and_boundaries_within_two_rows() -> None:
    rng = np.random.default_rng(20240611)
    noisy = CLEAN + rng.normal(0.0, 2e-4, CLEAN.size)
    segments = find_segments(noisy)
    assert [s.segment_type for s in segments] == [FP, RP, FN, RN]
    for segment, (_, start, stop) in zip(segments, CLEAN_BOUNDS):
        assert abs(segment.start - start) <= 2
        assert abs(segment.stop - stop) <= 2


def test_noise_on_dwell_at_turning_points_does_not_split_segments() -> None:
    # The source sits at +-Vmax for 5 readings with 0.2 mV noise: all sub-threshold steps.
    rng = np.random.default_rng(7)
    dwell = np.full(5, 1.0) + rng.normal(0.0, 2e-4, 5)
    v = np.concatenate((np.linspace(0, 1, 101), dwell, np.linspace(1, 0, 101)[1:]))
    segments = find_segments(v)
    # The dwell rows (101..105) continue forward_positive; the return starts at row 106.
    assert summary(segments) == [(FP, 0, 106), (RP, 106, 206)]


def test_negative_first_sweep_is_the_mirror() -> None:
    segments = find_segments(-CLEAN)
    assert summary(segments) == [(FN, 0, 101), (RN, 101, 201), (FP, 201, 301), (RP, 301, 401)]
    assert [s.v_start for s in segments] == pytest.approx([0.0, -0.99, 0.01, 0.99], abs=1e-12)
    assert [s.v_end for s in segments] == pytest.approx([-1.0, 0.0, 1.0, 0.0], abs=1e-12)


def test_sweep_aborted_in_forward_negative_has_three_segments() -> None:
    aborted = CLEAN[:250]  # last row is -0.49 V on the way down to -1 V
    segments = find_segments(aborted)
    assert summary(segments) == [(FP, 0, 101), (RP, 101, 201), (FN, 201, 250)]
    assert segments[-1].v_end == pytest.approx(-0.49)


def test_sweep_aborted_in_forward_positive_has_one_segment() -> None:
    segments = find_segments(CLEAN[:60])
    assert summary(segments) == [(FP, 0, 60)]
    assert segments[0].v_end == pytest.approx(0.59)


def test_single_polarity_sweep_has_two_segments() -> None:
    v = sweep((0.0, 2.0, 100), (2.0, 0.0, 100))  # 20 mV steps
    assert summary(find_segments(v)) == [(FP, 0, 101), (RP, 101, 201)]


def test_fine_steps_near_zero_do_not_create_boundaries() -> None:
    # 1 mV steps within +-0.05 V (at the default threshold, so some may count as noise), 20 mV elsewhere.
    v = sweep(
        (0.0, 0.05, 50),  # rows 0..50
        (0.05, 1.05, 50),  # rows 51..100, +1.05 V at row 100
        (1.05, 0.05, 50),  # rows 101..150
        (0.05, -0.05, 100),  # rows 151..250, crossing 0 V at row 200
        (-0.05, -1.05, 50),  # rows 251..300, -1.05 V at row 300
        (-1.05, -0.05, 50),  # rows 301..350
        (-0.05, 0.0, 50),  # rows 351..400
    )
    assert summary(find_segments(v)) == [(FP, 0, 101), (RP, 101, 201), (FN, 201, 301), (RN, 301, 401)]


def test_short_segments_are_dropped_and_ids_renumbered() -> None:
    v = sweep(
        (0.0, 1.0, 100),  # rows 0..100   forward_positive
        (1.0, 0.0, 100),  # rows 101..200 return_positive
        (0.0, -0.03, 3),  # rows 201..203 forward_negative, 3 rows
        (-0.03, 0.0, 3),  # rows 204..206 return_negative, 3 rows
        (0.0, 0.5, 50),  # rows 207..256 forward_positive again
    )
    kept = find_segments(v, min_points=5)
    assert summary(kept) == [(FP, 0, 101), (RP, 101, 201), (FP, 207, 257)]
    assert [s.segment_id for s in kept] == [0, 1, 2]

    everything = find_segments(v, min_points=3)
    assert summary(everything) == [(FP, 0, 101), (RP, 101, 201), (FN, 201, 204), (RN, 204, 207), (FP, 207, 257)]
    assert [s.segment_id for s in everything] == [0, 1, 2, 3, 4]


def test_repeated_type_is_reported_in_order() -> None:
    v = sweep((0.0, 1.0, 100), (1.0, -1.0, 200), (-1.0, 0.0, 100), (0.0, 1.0, 100))
    types = [s.segment_type for s in find_segments(v)]
    assert types == [FP, RP, FN, RN, FP]


@pytest.mark.parametrize("level", [0.0, 0.5, -2.0])
def test_constant_array_has_no_segments(level: float) -> None:
    assert find_segments(np.full(100, level)) == []


def test_noise_only_array_has_no_segments() -> None:
    rng = np.random.default_rng(3)
    assert find_segments(0.3 + rng.normal(0.0, 1e-4, 200)) == []


def test_flat_stretch_before_ramp_joins_the_ramp() -> None:
    v = np.concatenate((np.zeros(10), np.linspace(0, 1, 101)[1:]))  # 10 rows at 0 V, then 100 steps up
    assert summary(find_segments(v)) == [(FP, 0, 110)]


@pytest.mark.parametrize("v", [np.array([]), np.array([0.5]), np.array([np.nan, 0.5, np.nan])])
def test_fewer_than_two_finite_points_give_nothing(v: np.ndarray) -> None:
    assert find_segments(v) == []


def test_two_points_form_one_segment_when_allowed() -> None:
    assert summary(find_segments(np.array([0.0, 0.5]), min_points=2)) == [(FP, 0, 2)]
    assert find_segments(np.array([0.0, 0.5])) == []


def test_nan_inside_a_segment_is_part_of_its_slice() -> None:
    v = CLEAN.copy()
    v[50] = np.nan
    v[350] = np.nan
    assert summary(find_segments(v)) == CLEAN_BOUNDS


def test_nan_rows_at_the_ends_and_between_segments_belong_to_none() -> None:
    v = np.concatenate(([np.nan, np.nan], CLEAN, [np.nan]))  # CLEAN row r is row r + 2 here
    v[2 + 201] = np.nan  # first row of forward_negative
    segments = find_segments(v)
    assert summary(segments) == [(FP, 2, 103), (RP, 103, 203), (FN, 204, 303), (RN, 303, 403)]
    assert all(np.isfinite(v[s.start]) and np.isfinite(v[s.stop - 1]) for s in segments)
    assert segments[2].v_start == pytest.approx(-0.02)


def test_min_points_counts_finite_rows() -> None:
    v = np.array([0.0, 0.1, np.nan, np.nan, 0.2, 0.3])
    assert find_segments(v, min_points=5) == []
    assert summary(find_segments(v, min_points=4)) == [(FP, 0, 6)]


def test_all_nan_gives_nothing() -> None:
    assert find_segments(np.full(10, np.nan)) == []


def test_dv_threshold_decides_what_is_a_step() -> None:
    # 0.5 mV steps: noise at the default 1 mV threshold, real steps at 0.1 mV.
    v = sweep((0.0, 0.05, 100), (0.05, -0.05, 200), (-0.05, 0.0, 100))
    assert find_segments(v, dv_threshold=1e-3) == []
    assert summary(find_segments(v, dv_threshold=1e-4)) == CLEAN_BOUNDS


def test_too_small_dv_threshold_lets_noise_split_segments() -> None:
    rng = np.random.default_rng(11)
    dwell = np.full(20, 1.0) + rng.normal(0.0, 2e-4, 20)
    v = np.concatenate((np.linspace(0, 1, 101), dwell, np.linspace(1, 0, 101)[1:]))
    assert [s.segment_type for s in find_segments(v, dv_threshold=1e-3, min_points=1)] == [FP, RP]
    assert len(find_segments(v, dv_threshold=1e-6, min_points=1)) > 2


def test_rejects_two_dimensional_input() -> None:
    with pytest.raises(ValueError):
        find_segments(np.zeros((3, 3)))


def random_sweep(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """A complete sweep with random Vmax (1-8 V), step (2-20 mV) and starting polarity."""
    vmax = rng.uniform(1.0, 8.0)
    n = int(round(vmax / rng.uniform(2e-3, 20e-3)))
    sign = rng.choice([-1.0, 1.0])
    v = sign * sweep((0.0, vmax, n), (vmax, -vmax, 2 * n), (-vmax, 0.0, n))
    types = [FP, RP, FN, RN] if sign > 0 else [FN, RN, FP, RP]
    return v, types


@pytest.mark.parametrize("seed", range(12))
def test_random_sweeps_are_covered_by_ordered_disjoint_segments(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v, types = random_sweep(rng)
    min_points = int(rng.integers(2, 10))
    segments = find_segments(v, min_points=min_points)

    assert [s.segment_type for s in segments] == types
    assert [s.segment_id for s in segments] == list(range(len(segments)))
    assert all(s.stop - s.start >= min_points for s in segments)
    assert all(a.stop <= b.start for a, b in zip(segments, segments[1:]))  # ordered and disjoint
    covered = np.concatenate([np.arange(s.start, s.stop) for s in segments])
    assert np.array_equal(covered, np.arange(v.size))


@pytest.mark.parametrize("seed", range(6))
def test_random_aborted_noisy_sweeps_give_ordered_disjoint_segments(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    v, types = random_sweep(rng)
    cut = int(rng.integers(2, v.size + 1))
    v = v[:cut] + rng.normal(0.0, 2e-4, cut)
    segments = find_segments(v)

    assert [s.segment_type for s in segments] == types[: len(segments)]
    assert all(s.stop - s.start >= 5 for s in segments)
    assert all(0 <= a.start < a.stop <= b.start for a, b in zip(segments, segments[1:]))
    assert all(s.stop <= cut for s in segments)


def test_a_million_points_of_repeated_sweeps() -> None:
    # Speed is measured by bench/, not asserted here; this checks the long-array result.
    v = np.tile(sweep((0.0, 8.0, 2000), (8.0, -8.0, 4000), (-8.0, 0.0, 2000))[:-1], 125)  # 1e6 rows
    segments = find_segments(v)
    assert len(segments) == 4 * 125
