"""Schedule arithmetic: which period of a report is current as of an instant (docs/reports.md).

A schedule names instants in its timezone (wall-clock times, so 07:00 stays 07:00 across a
DST change). A report's *current period* starts at the latest such instant at or before
the as-of; it is due when no delivery is recorded for it. Only the current period is ever
due, so a sender that was down for three weeks sends one weekly report, not three (SPEC §7:
"a missed period sends once, not a burst").

- `every: day` at HH:MM; `every: week` on a weekday at HH:MM; `every: month` on day D at
  HH:MM, D clamped to the month's end (31 in April = 30 April, in February = 28/29).
- `every: hours` N: 00:00, N:00, 2N:00, ... of each local day (aligned to midnight; a day's
  last period runs to the next midnight when N does not divide 24).
- `cron`: the expression's instants in the timezone (cronsim, as Prefect uses).
- A wall-clock time that does not exist on a DST change day (02:30 on a spring-forward
  night) is read with Python's `fold=0` rule, i.e. one hour later in UTC terms; a time that
  occurs twice (autumn) is its first occurrence.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from flows.rules.reports import WEEKDAYS, Schedule

# the longest gap between two period starts of a non-cron schedule is a month (+ a DST hour)
_LOOKBACK_DAYS = 63


def period_start(schedule: Schedule, as_of: datetime, default_timezone: str = "UTC") -> datetime:
    """The start (naive UTC) of the period current at `as_of` (naive UTC or aware)."""
    zone = ZoneInfo(schedule.timezone or default_timezone)
    instant = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    if schedule.cron is not None:
        return _cron_start(schedule.cron, instant, zone)
    local_day = instant.astimezone(zone).date()
    for back in range(_LOOKBACK_DAYS + 1):
        day = local_day - timedelta(days=back)
        starts = [s for s in _starts_on(schedule, day, zone) if s <= instant]
        if starts:
            return max(starts).astimezone(UTC).replace(tzinfo=None)
    raise ValueError(f"no period start within {_LOOKBACK_DAYS} days of {as_of}")  # unreachable


def _starts_on(schedule: Schedule, day: date, zone: ZoneInfo) -> list[datetime]:
    """The period starts a schedule has on one local calendar day (aware)."""
    hour, minute = schedule.time_of_day
    if schedule.every == "day":
        return [_local(day, hour, minute, zone)]
    if schedule.every == "week":
        matches = WEEKDAYS[day.weekday()] == schedule.day
        return [_local(day, hour, minute, zone)] if matches else []
    if schedule.every == "month":
        assert isinstance(schedule.day, int)
        last = calendar.monthrange(day.year, day.month)[1]
        matches = day.day == min(schedule.day, last)
        return [_local(day, hour, minute, zone)] if matches else []
    assert schedule.hours is not None
    return [_local(day, h, 0, zone) for h in range(0, 24, schedule.hours)]


def _local(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """Wall-clock time `hour:minute` of `day` in `zone`, normalised through UTC (so a time
    in a DST gap becomes the real instant it denotes under fold=0)."""
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return wall.astimezone(UTC).astimezone(zone)


def _cron_start(expression: str, instant: datetime, zone: ZoneInfo) -> datetime:
    """The latest instant of a cron expression at or before `instant`, in `zone`'s wall clock."""
    local = instant.astimezone(zone)
    # cronsim iterates naive wall-clock times; reverse=True walks back from the start given,
    # which it may itself return, so step one second past it to include an exact match
    start = local.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
    for wall in CronSim(expression, start, reverse=True):
        aware = wall.replace(tzinfo=zone).astimezone(UTC)
        if aware <= instant:
            return aware.replace(tzinfo=None)
    raise ValueError(f"cron expression {expression!r} has no instant before {instant}")
