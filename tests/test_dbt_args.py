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
