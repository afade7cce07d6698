"""Schedule arithmetic (docs/reports.md "Schedules"): the period current at an as-of."""

from __future__ import annotations

from datetime import datetime

import pytest

from flows.reports.schedule import period_start
from flows.rules.reports import Schedule


def _start(as_of: datetime, **schedule: object) -> datetime:
    return period_start(Schedule.model_validate(schedule), as_of)


def test_monthly_on_the_31st_runs_on_the_30th_in_april():
    assert _start(datetime(2026, 4, 30, 12), every="month", day=31) == datetime(2026, 4, 30, 7)
    # before it, April's period has not started: March 31 is current
    assert _start(datetime(2026, 4, 29, 12), every="month", day=31) == datetime(2026, 3, 31, 7)
    assert _start(datetime(2028, 2, 29, 8), every="month", day=31) == datetime(2028, 2, 29, 7)


def test_weekly_keeps_its_wall_clock_time_across_a_dst_change():
    london = {"every": "week", "day": "monday", "at": "07:00", "timezone": "Europe/London"}
    # BST ends on Sunday 25 October 2026: 07:00 BST = 06:00 UTC before, 07:00 GMT = 07:00 UTC after
    assert _start(datetime(2026, 10, 20, 12), **london) == datetime(2026, 10, 19, 6)
    assert _start(datetime(2026, 10, 27, 12), **london) == datetime(2026, 10, 26, 7)
    # on the Monday itself, between 06:00 and 07:00 UTC the new period has not begun
    assert _start(datetime(2026, 10, 26, 6, 30), **london) == datetime(2026, 10, 19, 6)


def test_daily_default_time_is_seven():
    assert _start(datetime(2026, 11, 2, 6), every="day") == datetime(2026, 11, 1, 7)
    assert _start(datetime(2026, 11, 2, 7), every="day") == datetime(2026, 11, 2, 7)


def test_every_n_hours_is_aligned_to_local_midnight():
    six = {"every": "hours", "hours": 6, "timezone": "Europe/Paris"}  # UTC+1 in November
    assert _start(datetime(2026, 11, 2, 4, 59), **six) == datetime(2026, 11, 1, 23)
    assert _start(datetime(2026, 11, 2, 5), **six) == datetime(2026, 11, 2, 5)
    # 24 is not a multiple of 7: 00, 07, 14, 21 local, then midnight again
    assert _start(datetime(2026, 11, 2, 23, 30), every="hours", hours=7) == datetime(
        2026, 11, 2, 21
    )


def test_cron_in_a_timezone():
    weekdays = {"cron": "0 7 * * 1-5", "timezone": "Europe/London"}
    # Sunday 8 November: the latest weekday 07:00 is Friday 6th
    assert _start(datetime(2026, 11, 8, 12), **weekdays) == datetime(2026, 11, 6, 7)
    assert _start(datetime(2026, 11, 9, 7), **weekdays) == datetime(2026, 11, 9, 7)


def test_a_missed_stretch_has_one_current_period():
    weekly = {"every": "week", "day": "monday"}
    # three Mondays passed while the sender was down: only the latest is due
    assert _start(datetime(2026, 11, 25), **weekly) == datetime(2026, 11, 23, 7)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"every": "week"}, "needs day"),
        ({"every": "month", "day": "monday"}, "1-31"),
        ({"every": "day", "cron": "0 7 * * *"}, "exactly one"),
        ({"cron": "61 7 * * *"}, "not a cron expression"),
        ({"every": "hours"}, "needs hours"),
        ({"every": "day", "at": "7am"}, "HH:MM"),
    ],
)
def test_bad_schedules_are_refused(schedule, message):
    with pytest.raises(ValueError, match=message):
        Schedule.model_validate(schedule)
