"""Local calendar days and the dates in file names.

A partition is a calendar day D in the client's time zone. Its bounds are local midnights, so a
day is 23 or 25 hours long when the clocks change (Europe/London: 2026-03-29 and 2026-10-25).
The marts filter on epoch seconds because Moodle stores epoch seconds and that is what its indexes
hold; those bounds are computed in SQL (dbt_project/macros/local_midnight_epoch.sql), and the
tests' independent Python version is tests/day_bounds.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

FileDate = Literal["next_day", "activity_day"]


def local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    """The instant local day `day` starts in `timezone` (aware)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(timezone))


def file_date(activity_day: dt.date, rule: FileDate = "next_day") -> dt.date:
    """The date in a file's name. The contract says a file carries "the current date" of its 05:00
    delivery, so by default the file for activity day D is dated D + 1."""
    return activity_day + dt.timedelta(days=1) if rule == "next_day" else activity_day


def file_name(prefix: str, activity_day: dt.date, rule: FileDate = "next_day") -> str:
    """`SCORM20261128.csv` and the like."""
    return f"{prefix}{file_date(activity_day, rule):%Y%m%d}.csv"


# The client-day's manifest (`export.manifest`): dated like the files of that day.
MANIFEST_PREFIX = "MANIFEST"


def manifest_name(activity_day: dt.date, rule: FileDate = "next_day") -> str:
    """`MANIFEST20261128.json`: the manifest of a client-day, dated like its files."""
    return f"{MANIFEST_PREFIX}{file_date(activity_day, rule):%Y%m%d}.json"


def sent_file_name(prefix: str, activity_day: dt.date, rule: FileDate, suffix: str) -> str:
    """The name a file is sent by: `file_name` plus the client's envelope suffix (`.gz`, `.pgp`,
    `.gz.pgp`, see `export.envelope`), e.g. `SCORM20261128.csv.gz.pgp`."""
    return file_name(prefix, activity_day, rule) + suffix
