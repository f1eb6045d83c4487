"""Arguments for dbt: a run over local days [first, last] passes the half-open date window."""

from __future__ import annotations

import datetime as dt
import json


def day_window_vars(first: str | dt.date, last: str | dt.date) -> dict[str, str]:
    """dbt vars for the local days first..last inclusive: `min_date` ≤ D < `max_date`."""
    first_day = dt.date.fromisoformat(str(first))
    last_day = dt.date.fromisoformat(str(last))
    if last_day < first_day:
        raise ValueError(f"day window ends ({last_day}) before it starts ({first_day})")
    return {
        "min_date": first_day.isoformat(),
        "max_date": (last_day + dt.timedelta(days=1)).isoformat(),
    }


def dbt_build_args(first: str | dt.date, last: str | dt.date) -> list[str]:
    return ["build", "--vars", json.dumps(day_window_vars(first, last))]
