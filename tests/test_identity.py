import hashlib
from datetime import UTC, date, datetime

from nanolab.identity import date_from_path, make_run_id, resolve_date

# 2025-09-12 02:30 UTC is still 2025-09-11 in Santiago (UTC-3 then).
LATE_EVENING = datetime(2025, 9, 12, 2, 30, tzinfo=UTC)


def test_day_is_the_start_time_in_the_lab_timezone():
    assert resolve_date(LATE_EVENING, "2025-09-12/IV.csv", 0, "America/Santiago") == (date(2025, 9, 11), "meta")
    assert resolve_date(LATE_EVENING, "x.csv", 0, "UTC") == (date(2025, 9, 12), "meta")


def test_fallbacks_path_then_mtime():
    assert resolve_date(None, "2025-09-29/IV2025-09-29_3.csv", 0, "America/Santiago") == (date(2025, 9, 29), "path")
    mtime = datetime(2025, 1, 2, 15, tzinfo=UTC).timestamp()
    assert resolve_date(None, "Alisson_15_sept/Alisson67_015.csv", mtime, "America/Santiago") == (date(2025, 1, 2), "mtime")


def test_date_from_path_ignores_impossible_dates():
    assert date_from_path("2025-13-45/IV.csv") is None
    assert date_from_path("2024-02-29/x_2025-02-30.csv") == date(2024, 2, 29)
    assert date_from_path("run_12025-01-011.csv") is None


def test_run_id_is_stable_and_depends_on_path_and_start():
    run_id = make_run_id("2025-09-11/IV2025-09-11_1.csv", LATE_EVENING)
    assert run_id == make_run_id("2025-09-11/IV2025-09-11_1.csv", LATE_EVENING)
    assert len(run_id) == 16 and int(run_id, 16) >= 0
    assert run_id != make_run_id("2025-09-11/IV2025-09-11_2.csv", LATE_EVENING)
    assert run_id != make_run_id("2025-09-11/IV2025-09-11_1.csv", None)
    # documented derivation: the id must not change between releases or machines
    expected = hashlib.blake2b(f"2025-09-11/IV2025-09-11_1.csv\x00{LATE_EVENING.timestamp():.6f}".encode(), digest_size=8)
    assert run_id == expected.hexdigest()
