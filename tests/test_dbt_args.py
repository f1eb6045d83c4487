"""dbt arguments for a day window: half-open local dates, the ledger switched on."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from orchestration.dbt_args import day_window_vars, dbt_build_args


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
    args = dbt_build_args("2026-11-27", "2026-11-27", lookback_days=14)
    assert args[0] == "build"
    dbt_vars = json.loads(args[args.index("--vars") + 1])
    assert dbt_vars == {
        "min_date": "2026-11-27",
        "max_date": "2026-11-28",
        "lookback_days": 14,
        "record_days_built": True,
    }
    assert args[args.index("--exclude-resource-type") + 1] == "unit_test"


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="ends"):
        day_window_vars("2026-11-28", "2026-11-27")


def _vars(args: list[str]) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(args[args.index("--vars") + 1])
    return parsed


def test_build_args_without_clients_build_every_client():
    assert "client_ids" not in _vars(dbt_build_args("2026-11-27", "2026-11-27", lookback_days=14))
    assert "client_ids" not in _vars(
        dbt_build_args("2026-11-27", "2026-11-27", lookback_days=14, client_ids=None)
    )


def test_build_args_for_one_time_zones_clients_pass_their_ids_once_and_sorted():
    args = dbt_build_args(
        "2026-11-27", "2026-11-27", lookback_days=7, client_ids=["zed", "acme", "zed"]
    )
    assert _vars(args) == {
        "min_date": "2026-11-27",
        "max_date": "2026-11-28",
        "lookback_days": 7,
        "record_days_built": True,
        "client_ids": ["acme", "zed"],
    }
    assert args[:3] == ["build", "--exclude-resource-type", "unit_test"]


def test_build_args_take_any_collection_of_clients_and_leave_it_as_it_was():
    clients = ("globex",)
    assert _vars(dbt_build_args("2026-11-27", "2026-11-28", 14, client_ids=clients))[
        "client_ids"
    ] == ["globex"]
    assert _vars(dbt_build_args("2026-11-27", "2026-11-28", 14, client_ids={"a", "b"}))[
        "client_ids"
    ] == ["a", "b"]
    assert clients == ("globex",)


def test_build_args_refuse_no_clients_and_a_bare_string():
    with pytest.raises(ValueError, match="empty"):
        dbt_build_args("2026-11-27", "2026-11-27", 14, client_ids=[])
    with pytest.raises(TypeError, match="string"):
        dbt_build_args("2026-11-27", "2026-11-27", 14, client_ids="acme")
