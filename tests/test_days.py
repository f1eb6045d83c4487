"""Local days, their epoch bounds across DST, and the dates in file names."""

from __future__ import annotations

import datetime as dt

from day_bounds import day_epoch_bounds, local_date_of

from orchestration.days import file_name

LONDON = "Europe/London"


def test_the_day_the_clocks_go_back_is_25_hours_long():
    start, end = day_epoch_bounds(dt.date(2026, 10, 25), LONDON)
    assert end - start == 25 * 3600
    # 00:00 BST on 25 October 2026 is 23:00 UTC the evening before.
    assert start == int(dt.datetime(2026, 10, 24, 23, 0, tzinfo=dt.UTC).timestamp())


def test_the_day_the_clocks_go_forward_is_23_hours_long():
    start, end = day_epoch_bounds(dt.date(2026, 3, 29), LONDON)
    assert end - start == 23 * 3600


def test_half_past_midnight_and_half_past_eleven_fall_on_their_local_days():
    # 2026-10-25 00:30 BST = 2026-10-24 23:30 UTC; 23:30 GMT = 23:30 UTC.
    just_after_midnight = int(dt.datetime(2026, 10, 24, 23, 30, tzinfo=dt.UTC).timestamp())
    late_evening = int(dt.datetime(2026, 10, 25, 23, 30, tzinfo=dt.UTC).timestamp())
    assert local_date_of(just_after_midnight, LONDON) == dt.date(2026, 10, 25)
    assert local_date_of(late_evening, LONDON) == dt.date(2026, 10, 25)
    start, end = day_epoch_bounds(dt.date(2026, 10, 25), LONDON)
    assert start <= just_after_midnight < end
    assert start <= late_evening < end


def test_file_for_activity_day_is_dated_the_next_day_by_default():
    assert file_name("SCORM", dt.date(2026, 11, 27)) == "SCORM20261128.csv"
    assert file_name("Quiz", dt.date(2026, 12, 31)) == "Quiz20270101.csv"
    assert file_name("F2F", dt.date(2026, 11, 27), "activity_day") == "F2F20261127.csv"
