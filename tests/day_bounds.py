"""Local days as epoch seconds, computed in Python: the tests' oracle for the marts' SQL day
windows (dbt_project/macros/local_midnight_epoch.sql), independent of it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from orchestration.days import local_midnight


def day_epoch_bounds(day: dt.date, timezone: str) -> tuple[int, int]:
    """Half-open [start, end) epoch seconds of local day `day`."""
    start = local_midnight(day, timezone)
    end = local_midnight(day + dt.timedelta(days=1), timezone)
    return int(start.timestamp()), int(end.timestamp())


def local_date_of(epoch: int, timezone: str) -> dt.date:
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(timezone)).date()
