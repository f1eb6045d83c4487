"""Arguments and settings for dbt: a build over local days [first, last] gets the half-open date
window, the lookback, the ledger switch and its clients as settings (macros/build_setting.sql)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Unit tests check the SQL, not the day's data: they run in the test suite (tests/test_dbt_*) and
# with `dbt build` by analysts, not in every nightly build, where they cost seconds per invocation.
VIEWS_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


def day_window_vars(first: str | dt.date, last: str | dt.date) -> dict[str, object]:
    """dbt settings for the local days first..last inclusive: `min_date` ≤ D < `max_date`."""
    first_day = dt.date.fromisoformat(str(first))
    last_day = dt.date.fromisoformat(str(last))
    if last_day < first_day:
        raise ValueError(f"day window ends ({last_day}) before it starts ({first_day})")
    return {
        "min_date": first_day.isoformat(),
        "max_date": (last_day + dt.timedelta(days=1)).isoformat(),
    }


def client_ids_var(client_ids: Iterable[str]) -> list[str]:
    """The dbt setting `client_ids` for a build of some clients: their ids, each once, sorted (the
    same clients give the same vars). Empty is refused: a build for no client is a mistake, and
    leaving it out means every client (dbt_project/macros/clients_in_build.sql)."""
    if isinstance(client_ids, str):
        raise TypeError(
            f"client_ids must be a collection of client ids, not the string {client_ids!r}"
        )
    ids = sorted(set(client_ids))
    if not ids:
        raise ValueError("client_ids is empty: give at least one client, or None for every client")
    return ids


# The environment variables that carry a build's settings to dbt (macros/build_setting.sql):
# ODS_DBT_MIN_DATE, ODS_DBT_MAX_DATE, ODS_DBT_LOOKBACK_DAYS, ODS_DBT_RECORD_DAYS_BUILT,
# ODS_DBT_CLIENT_IDS, each holding its value as JSON. Not `--vars`: dbt parses the whole project
# again whenever the vars change, and a night's window always does (the macro says more).
BUILD_SETTING_ENV_PREFIX = "ODS_DBT_"
# The settings macros/build_setting.sql knows (tests/test_dbt_args.py keeps the two in step).
BUILD_SETTINGS = ("min_date", "max_date", "lookback_days", "record_days_built", "client_ids")


@dataclass(frozen=True)
class DbtBuild:
    """A `dbt build` to run: its arguments, and its settings as environment variables."""

    args: list[str]
    env: dict[str, str]


def build_settings_env(settings: Mapping[str, object]) -> dict[str, str]:
    """The environment variables that give dbt these build settings (macros/build_setting.sql)."""
    unknown = sorted(set(settings) - set(BUILD_SETTINGS))
    if unknown:
        raise ValueError(
            f"unknown dbt build setting(s) {', '.join(unknown)}; the settings are "
            + ", ".join(BUILD_SETTINGS)
        )
    return {
        f"{BUILD_SETTING_ENV_PREFIX}{name.upper()}": json.dumps(value)
        for name, value in settings.items()
    }


def marts_build(
    first: str | dt.date,
    last: str | dt.date,
    lookback_days: int,
    client_ids: Iterable[str] | None = None,
) -> DbtBuild:
    """`dbt build` of the marts for a day window, recording the days as built (the ledger that
    late rows are assigned by, dbt_project/macros/report_day_assignments.sql).

    With `client_ids`, the build reads, rebuilds, records and tests those clients only, and
    leaves every other client's rows and ledger alone: one time zone's clients at 03:00 in
    their zone (dbt_project/macros/clients_in_build.sql). None builds every client."""
    settings: dict[str, object] = {
        **day_window_vars(first, last),
        "lookback_days": lookback_days,
        "record_days_built": True,
    }
    if client_ids is not None:
        settings["client_ids"] = client_ids_var(client_ids)
    return DbtBuild(args=list(VIEWS_BUILD_ARGS), env=build_settings_env(settings))
