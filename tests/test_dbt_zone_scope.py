"""Marts built for one time zone's clients at a time (var client_ids), on a real PostgreSQL.

Two generated sites with activity on the same dates, acme in Europe/London and zed in
America/Los_Angeles: London's 03:00 build of day D happens while D still has eight hours to go
in Los Angeles, so a build scoped to acme must not build, delete, record or test anything of zed,
in any of the four marts, and zed's own build of D, later, must build zed's rows as if acme's had
never happened. Expected completion rows are worked out in Python from the raw Moodle tables
(tests/e2e_support.py); for the other marts the check is that zed's rows and ledger stay exactly
as they were.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.feeds import COMPLETION, FEEDS
from orchestration.moodle.union_views import MoodleSource, create_union_views
from synthetic_moodle import SiteSpec, generate_site, insert_rows
from tests.dbt_people import local_epoch
from tests.dbt_support import invoke_dbt, run_dbt
from tests.e2e_support import expected_completions

LONDON, LOS_ANGELES = "Europe/London", "America/Los_Angeles"
D = dt.date(2026, 11, 10)
DAY = dt.timedelta(days=1)
ACME = SiteSpec(
    "moodle_acme", release="4.2", seed=3, learners=30, courses=4, start=D - 3 * DAY, days=8,
    timezone=LONDON,
)  # fmt: skip
ZED = SiteSpec(
    "moodle_zed", release="4.5", prefix="zd_", seed=4, learners=30, courses=4, start=D - 3 * DAY,
    days=8, timezone=LOS_ANGELES,
)  # fmt: skip
SOURCES = [
    MoodleSource("acme", ACME.schema, ACME.prefix, LONDON),
    MoodleSource("zed", ZED.schema, ZED.prefix, LOS_ANGELES),
]
SPECS = {"acme": ACME, "zed": ZED}
MARTS = {feed.name: f"marts.{feed.mart}" for feed in FEEDS.values()}
MARTS_ONLY = ["--select", "path:models/marts", "--exclude-resource-type", "unit_test"]


@pytest.fixture(scope="module")
def warehouse(module_pg: LocalPostgres) -> Iterator[psycopg.Connection]:
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for spec in (ACME, ZED):
            generate_site(conn, spec)
        create_union_views(conn, SOURCES)
        yield conn


def _window(day: dt.date, clients: list[str] | None) -> dict[str, Any]:
    """The vars Dagster passes for one day of one time zone's clients (None: every client)."""
    dbt_vars: dict[str, Any] = {
        "min_date": day.isoformat(),
        "max_date": (day + DAY).isoformat(),
        "record_days_built": True,
    }
    if clients is not None:
        dbt_vars["client_ids"] = clients
    return dbt_vars


def _build(pg: LocalPostgres, dirs: Path, day: dt.date, clients: list[str] | None) -> None:
    """The four marts and their data tests for one day, as a zone's nightly build runs them."""
    run_dbt("build", dirs, pg.libpq_env(), _window(day, clients), *MARTS_ONLY)


def _rows(conn: psycopg.Connection, feed: str, client: str, day: dt.date) -> list[tuple]:
    return conn.execute(
        f"select * from {MARTS[feed]} where client_id = %s and report_date = %s"
        " order by change_key",
        (client, day),
    ).fetchall()


def _days_built(conn: psycopg.Connection) -> set[tuple[str, str, dt.date]]:
    return set(conn.execute("select feed, client_id, report_date from marts.feed_days_built"))


def _completions(conn: psycopg.Connection, client: str, day: dt.date) -> list[dict[str, Any]]:
    """The Completion mart's rows of a client's report day, in expected_completions' shape."""
    columns = [*COMPLETION.column_names]
    columns.remove("completed_at")
    rows = conn.execute(
        f"select {', '.join(columns)} from {MARTS['completion']}"
        " where client_id = %s and report_date = %s",
        (client, day),
    ).fetchall()
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    for row in found:
        row["completion_date"] = row["completion_date"].isoformat()
    return sorted(found, key=lambda row: (row["user_id"], row["course_id"]))


def _expected(conn: psycopg.Connection, client: str, day: dt.date) -> list[dict[str, Any]]:
    spec = SPECS[client]
    return expected_completions(conn, spec.schema, spec.prefix, spec.timezone, day)


@pytest.fixture(scope="module")
def night(warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path) -> dict:
    """The nights of D - 1 .. D + 1, each zone built on its own, as Dagster would run them:

    - D - 1: one build of every client (the views and marts made, the day recorded for both);
    - D: zed's build (Los Angeles), then zed's learners are renamed, then acme's build (London,
      03:00 on D + 1, while zed's D + 1 is not over): zed's rows of D must still carry the old
      names (a rebuild of zed's D would read the new ones);
    - a completion of zed back-dated into D - 1 (built for zed) becomes visible;
    - D + 1: acme's build, then acme's learners are renamed, then zed's build. The late
      completion goes into zed's D + 1, not into acme's build (it is not acme's) and not lost;
      acme's rows of D + 1 keep the old names.
    """
    dirs = dbt_dirs
    run_dbt(
        "build",
        dirs,
        module_pg.libpq_env(),
        _window(D - DAY, None),
        "--exclude-resource-type",
        "unit_test",
    )
    _build(module_pg, dirs, D, ["zed"])
    zed_d = {feed: _rows(warehouse, feed, "zed", D) for feed in MARTS}
    warehouse.execute(f"update {ZED.schema}.{ZED.prefix}user set firstname = firstname || ' II'")
    _build(module_pg, dirs, D, ["acme"])
    after_acme_d = {
        "zed": {feed: _rows(warehouse, feed, "zed", D) for feed in MARTS},
        "days_built": _days_built(warehouse),
    }
    # A learner of zed completes a course at 23:00 on D - 1, Los Angeles time; Moodle's cron
    # writes it (back-dated) only now, after zed's D - 1 was built.
    late = _late_completion(warehouse)
    _build(module_pg, dirs, D + DAY, ["acme"])
    after_acme_d1 = {
        "days_built": _days_built(warehouse),
        "zed_rows": warehouse.execute(
            f"select count(*) from {MARTS['completion']} where client_id = 'zed'"
            " and report_date = %s",
            (D + DAY,),
        ).fetchone(),
        "acme": {feed: _rows(warehouse, feed, "acme", D + DAY) for feed in MARTS},
    }
    # A rebuild of acme's D + 1 would read this; zed's build must not rebuild it.
    warehouse.execute(f"update {ACME.schema}.{ACME.prefix}user set lastname = lastname || ' II'")
    _build(module_pg, dirs, D + DAY, ["zed"])
    return {
        "zed_d": zed_d,
        "after_acme_d": after_acme_d,
        "after_acme_d1": after_acme_d1,
        "late": late,
    }


def _late_completion(conn: psycopg.Connection) -> dict[str, Any]:
    user_id, course_id = conn.execute(
        f"select u.id, c.id from {ZED.schema}.{ZED.prefix}user as u"
        f" cross join {ZED.schema}.{ZED.prefix}course as c"
        " where u.deleted = 0 and u.username <> 'guest' and c.format <> 'site'"
        f" and not exists (select 1 from {ZED.schema}.{ZED.prefix}course_completions as cc"
        "   where cc.userid = u.id and cc.course = c.id)"
        " order by u.id, c.id limit 1"
    ).fetchone()
    completed = local_epoch(f"{D - DAY} 23:00", LOS_ANGELES)
    row = {"userid": user_id, "course": course_id, "timecompleted": completed}
    insert_rows(conn, ZED.schema, "course_completions", [row], prefix=ZED.prefix)
    return {"user_id": user_id, "course_id": course_id, "completion_date": (D - DAY).isoformat()}


def test_every_mart_has_rows_of_both_clients_on_the_days_built(
    night: dict, warehouse: psycopg.Connection
) -> None:
    # Otherwise "untouched" below would be about empty sets.
    for feed in MARTS:
        assert night["zed_d"][feed], feed
        for client in ("acme", "zed"):
            for day in (D - DAY, D, D + DAY):
                assert _rows(warehouse, feed, client, day), (feed, client, day)


def test_a_build_of_acme_leaves_zeds_rows_of_the_same_day_untouched(night: dict) -> None:
    for feed in MARTS:
        assert night["after_acme_d"]["zed"][feed] == night["zed_d"][feed], feed


def test_a_build_of_acme_records_the_day_for_acme_only(night: dict) -> None:
    days_built = night["after_acme_d"]["days_built"]
    for feed in MARTS:
        assert (feed, "acme", D) in days_built
        assert (feed, "zed", D) in days_built  # zed's own build, before
        assert (feed, "acme", D - DAY) in days_built and (feed, "zed", D - DAY) in days_built
    after_d1 = night["after_acme_d1"]["days_built"]
    assert {(feed, client, day) for feed, client, day in after_d1 if day == D + DAY} == {
        (feed, "acme", D + DAY) for feed in MARTS
    }


def test_acmes_days_have_acmes_completions(night: dict, warehouse: psycopg.Connection) -> None:
    for day in (D - DAY, D, D + DAY):
        # Built before acme's learners were renamed (the fixture), so with their old names.
        expected = [
            {**row, "lastname": row["lastname"].removesuffix(" II")}
            for row in _expected(warehouse, "acme", day)
        ]
        assert expected, day
        assert _completions(warehouse, "acme", day) == expected


def test_zeds_own_build_after_acmes_builds_zeds_day_with_its_late_row(
    night: dict, warehouse: psycopg.Connection
) -> None:
    assert night["after_acme_d1"]["zed_rows"] == (0,)  # acme's build of D + 1 made none of zed's
    late = night["late"]
    expected = _expected(warehouse, "zed", D + DAY)
    late_row = next(
        row
        for row in _expected(warehouse, "zed", D - DAY)
        if (row["user_id"], row["course_id"]) == (late["user_id"], late["course_id"])
    )
    assert late_row["completion_date"] == late["completion_date"]
    assert late_row["firstname"].endswith(" II")  # read at zed's build, after the rename
    assert _completions(warehouse, "zed", D + DAY) == sorted(
        [*expected, late_row], key=lambda row: (row["user_id"], row["course_id"])
    )
    # Sent once: not in zed's D - 1 (already built) nor anywhere else.
    sent = warehouse.execute(
        f"select client_id, report_date from {MARTS['completion']}"
        " where user_id = %s and course_id = %s and completion_date = %s",
        (late["user_id"], late["course_id"], D - DAY),
    ).fetchall()
    assert [row for row in sent if row[0] == "zed"] == [("zed", D + DAY)]
    assert (("completion", "zed", D + DAY)) in _days_built(warehouse)


def test_zeds_build_leaves_acmes_rows_of_the_same_day_untouched(
    night: dict, warehouse: psycopg.Connection
) -> None:
    for feed in MARTS:
        assert _rows(warehouse, feed, "acme", D + DAY) == night["after_acme_d1"]["acme"][feed]


def test_an_unscoped_build_still_builds_and_records_every_client(
    night: dict, warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    day = D + 2 * DAY
    _build(module_pg, dbt_dirs, day, None)

    for client in ("acme", "zed"):
        expected = _expected(warehouse, client, day)
        assert expected, client
        assert _completions(warehouse, client, day) == expected
    assert {(f, c, d) for f, c, d in _days_built(warehouse) if d == day} == {
        (feed, client, day) for feed in MARTS for client in ("acme", "zed")
    }


def test_a_builds_data_tests_look_at_its_own_rows_only(
    night: dict, warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    """A duplicate row of zed's D - 1 fails the grain tests of any test run that looks at it,
    and no other: not acme's build of a later day, not a test run of acme's whole history."""
    mart = MARTS["completion"]
    duplicate = warehouse.execute(
        f"insert into {mart} select * from {mart}"
        " where client_id = 'zed' and report_date = %s limit 1 returning change_key",
        (D - DAY,),
    ).fetchone()
    assert duplicate is not None
    env = module_pg.libpq_env()
    try:
        _build(module_pg, dbt_dirs, D + 3 * DAY, ["acme"])
        run_dbt("test", dbt_dirs, env, {"client_ids": ["acme"]}, *MARTS_ONLY)
        zed_history, zed_log = invoke_dbt(
            "test", dbt_dirs, env, {"client_ids": ["zed"]}, *MARTS_ONLY
        )
        everything, log = invoke_dbt("test", dbt_dirs, env, None, *MARTS_ONLY)
    finally:
        warehouse.execute(
            f"delete from {mart} where ctid in (select max(ctid) from {mart}"
            " where client_id = 'zed' and change_key = %s)",
            duplicate,
        )
    assert not zed_history, zed_log
    assert not everything, log
    assert "unique_combination_of_columns_course_completions" in log


def test_a_full_refresh_of_some_clients_is_refused(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    ok, log = invoke_dbt(
        "run",
        dbt_dirs,
        module_pg.libpq_env(),
        {"client_ids": ["acme"]},
        "--select",
        "course_completions",
        "--full-refresh",
    )
    assert not ok
    assert "run it without client_ids" in log


@pytest.mark.parametrize("client_ids", [[], "ACME", ["acme", "x'y"], {"acme": 1}])
def test_client_ids_that_are_not_a_list_of_client_ids_are_refused(
    tmp_path: Path, module_pg: LocalPostgres, client_ids: Any
) -> None:
    ok, log = invoke_dbt(
        "compile",
        tmp_path,
        module_pg.libpq_env(),
        {"client_ids": client_ids},
        "--select",
        "course_completions",
        as_vars=True,  # as an analyst would type them: the settings' other way in
    )
    assert not ok
    assert "client_ids" in log


def test_unit_tests_check_the_sql_whatever_client_ids_a_build_is_given(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    """Unit tests pin client_ids (null, or the clients they are about), as they pin the window:
    run with another client's id on the command line, the ones about acme and globex still pass."""
    run_dbt(
        "test",
        dbt_dirs,
        module_pg.libpq_env(),
        {"client_ids": ["zed"]},
        "--select",
        "path:models/marts",
        "--resource-type",
        "unit_test",
    )
