"""dbt arguments and settings for a day window: half-open local dates, the ledger switched on."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from orchestration.dbt_args import (
    BUILD_SETTINGS,
    DbtBuild,
    build_settings_env,
    day_window_vars,
    marts_build,
)
from orchestration.paths import DBT_PROJECT_DIR


def test_one_day_is_the_half_open_window_to_the_next_day():
    assert day_window_vars("2026-10-25", "2026-10-25") == {
        "min_date": "2026-10-25",
        "max_date": "2026-10-26",
    }


def test_a_backfill_range_is_one_window_across_a_month_end():
    assert day_window_vars(dt.date(2026, 11, 29), dt.date(2026, 12, 1)) == {
        "min_date": "2026-11-29",
        "max_date": "2026-12-02",
    }


def test_build_args_record_the_days_and_pass_the_lookback():
    build = marts_build("2026-11-27", "2026-11-27", lookback_days=14)
    assert build.args == ["build", "--exclude-resource-type", "unit_test"]
    # The settings travel as environment variables (never --vars: a changed var makes dbt
    # parse the whole project again), each holding its value as JSON.
    assert build.env == {
        "ODS_DBT_MIN_DATE": '"2026-11-27"',
        "ODS_DBT_MAX_DATE": '"2026-11-28"',
        "ODS_DBT_LOOKBACK_DAYS": "14",
        "ODS_DBT_RECORD_DAYS_BUILT": "true",
    }


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="ends"):
        day_window_vars("2026-11-28", "2026-11-27")


def _vars(build: DbtBuild) -> dict[str, object]:
    """The settings as dbt's macros/build_setting.sql reads them back."""
    prefix = "ODS_DBT_"
    assert all(name.startswith(prefix) for name in build.env)
    return {name[len(prefix) :].lower(): json.loads(value) for name, value in build.env.items()}


def test_build_args_without_clients_build_every_client():
    assert "client_ids" not in _vars(marts_build("2026-11-27", "2026-11-27", lookback_days=14))
    assert "client_ids" not in _vars(
        marts_build("2026-11-27", "2026-11-27", lookback_days=14, client_ids=None)
    )


def test_build_args_for_one_time_zones_clients_pass_their_ids_once_and_sorted():
    args = marts_build(
        "2026-11-27", "2026-11-27", lookback_days=7, client_ids=["zed", "acme", "zed"]
    )
    assert _vars(args) == {
        "min_date": "2026-11-27",
        "max_date": "2026-11-28",
        "lookback_days": 7,
        "record_days_built": True,
        "client_ids": ["acme", "zed"],
    }
    assert args.args[:3] == ["build", "--exclude-resource-type", "unit_test"]


def test_build_args_take_any_collection_of_clients_and_leave_it_as_it_was():
    clients = ("globex",)
    assert _vars(marts_build("2026-11-27", "2026-11-28", 14, client_ids=clients))["client_ids"] == [
        "globex"
    ]
    assert _vars(marts_build("2026-11-27", "2026-11-28", 14, client_ids={"a", "b"}))[
        "client_ids"
    ] == ["a", "b"]
    assert clients == ("globex",)


def test_build_args_refuse_no_clients_and_a_bare_string():
    with pytest.raises(ValueError, match="empty"):
        marts_build("2026-11-27", "2026-11-27", 14, client_ids=[])
    with pytest.raises(TypeError, match="string"):
        marts_build("2026-11-27", "2026-11-27", 14, client_ids="acme")


def test_the_settings_are_those_the_dbt_macro_knows():
    macro = (DBT_PROJECT_DIR / "macros" / "build_setting.sql").read_text()
    start = macro.index("build_setting_defaults = {")
    defaults = macro[start : macro.index("} -%}", start)]
    assert re.findall(r'"(\w+)":', defaults) == list(BUILD_SETTINGS)


def test_an_unknown_setting_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"min_dat.*the settings are min_date, max_date"):
        build_settings_env({"min_dat": "2026-11-27"})
