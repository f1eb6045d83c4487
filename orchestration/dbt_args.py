"""Arguments for dbt: a run over local days [first, last] passes the half-open date window."""

from __future__ import annotations

import datetime as dt
import json

# Unit tests check the SQL, not the day's data: they run in the test suite (tests/test_dbt_*) and
# with `dbt build` by analysts, not in every nightly build, where they cost seconds per invocation.
VIEWS_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


def day_window_vars(first: str | dt.date, last: str | dt.date) -> dict[str, object]:
    """dbt vars for the local days first..last inclusive: `min_date` ≤ D < `max_date`."""
    first_day = dt.date.fromisoformat(str(first))
    last_day = dt.date.fromisoformat(str(last))
    if last_day < first_day:
        raise ValueError(f"day window ends ({last_day}) before it starts ({first_day})")
    return {
        "min_date": first_day.isoformat(),
        "max_date": (last_day + dt.timedelta(days=1)).isoformat(),
    }


def dbt_build_args(first: str | dt.date, last: str | dt.date, lookback_days: int) -> list[str]:
    """`dbt build` of the marts for a day window, recording the days as built (the ledger that
    late rows are assigned by, dbt_project/macros/report_day_assignments.sql)."""
    dbt_vars = {
        **day_window_vars(first, last),
        "lookback_days": lookback_days,
        "record_days_built": True,
    }
    return [*VIEWS_BUILD_ARGS, "--vars", json.dumps(dbt_vars)]
