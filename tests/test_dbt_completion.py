"""The Completion mart, built by `dbt build` over two real Moodle schemas on a real PostgreSQL.

Expected rows are worked out here, in Python with zoneinfo, from the rows the fixture inserts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.feeds import COMPLETION
from orchestration.moodle.union_views import MoodleSource
from synthetic_moodle import insert_rows
from tests.dbt_people import Site, identity_values, insert_site_rows, local_epoch
from tests.dbt_support import (
    assert_build_passed,
    assert_mart_columns_are_canonical_and_documented,
    run_dbt,
    sent,
    sites_with_people,
)

MART = "marts.course_completions"
EVERY_DAY = {"min_date": "2000-01-01", "max_date": "2100-01-01"}


ACME = Site(MoodleSource("acme", "moodle_acme", "mdl_", "Europe/London"), "4.2")
GLOBEX = Site(MoodleSource("globex", "moodle_globex", "m_", "America/New_York"), "5.0")


LONDON, NEW_YORK = "Europe/London", "America/New_York"
# (client, user, course, timecompleted): around local midnight of Europe/London's 25-hour day
# 2026-10-25 and of ordinary days, in both clients' time zones, plus rows that must never show.
COMPLETIONS = [
    ("acme", 3, 2, local_epoch("2026-10-25 00:30", LONDON)),
    ("acme", 5, 2, local_epoch("2026-10-24 23:30", LONDON)),  # suspended: included
    ("acme", 2, 2, local_epoch("2026-10-26 00:30", LONDON)),
    ("acme", 3, 3, local_epoch("2026-10-25 23:30", LONDON)),
    ("acme", 6, 2, local_epoch("2026-10-25 01:30", LONDON, fold=1)),  # the second 01:30 (GMT)
    ("acme", 6, 3, local_epoch("2026-06-01 00:00", LONDON)),  # exactly local midnight
    ("acme", 7, 2, local_epoch("2026-05-31 23:59:59", LONDON)),
    ("acme", 1, 2, local_epoch("2026-10-25 10:00", LONDON)),  # guest
    ("acme", 4, 2, local_epoch("2026-10-25 10:00", LONDON)),  # deleted
    ("acme", 3, 1, local_epoch("2026-10-25 10:00", LONDON)),  # site course
    ("acme", 7, 3, None),  # in progress
    ("globex", 3, 2, local_epoch("2026-10-25 00:30", LONDON)),  # 19:30 the day before in New York
    ("globex", 3, 3, local_epoch("2026-10-25 00:00", NEW_YORK)),
    ("globex", 5, 2, local_epoch("2026-10-24 23:59:59", NEW_YORK)),
    ("globex", 6, 2, local_epoch("2026-11-01 01:30", NEW_YORK, fold=1)),  # New York's 25-hour day
    ("globex", 7, 2, local_epoch("2026-06-01 12:00", NEW_YORK)),
    ("globex", 4, 3, local_epoch("2026-06-01 12:00", NEW_YORK)),  # deleted
    ("globex", 2, 2, None),  # in progress
]


@pytest.fixture(scope="module")
def warehouse(module_pg: LocalPostgres) -> Iterator[psycopg.Connection]:
    """Two client schemas (4.2 with mdl_, 5.0 with m_), filled by hand, and the union views."""
    with sites_with_people(module_pg, [ACME, GLOBEX]) as conn:
        for site in (ACME, GLOBEX):
            insert_site_rows(
                conn,
                site,
                "course_completions",
                [
                    {"userid": user, "course": course, "timecompleted": completed}
                    for client, user, course, completed in COMPLETIONS
                    if client == site.source.client_id
                ],
            )
        yield conn


def _build(
    pg: LocalPostgres,
    dirs: Path,
    dbt_vars: dict[str, str] | None,
    *,
    unit_tests: bool = False,
    target: Path | None = None,
) -> None:
    """The completion mart and everything it is built from (the other feeds have their tests),
    with their data tests; the unit tests, which check SQL and not data, only when asked for."""
    extra = [] if unit_tests else ["--exclude-resource-type", "unit_test"]
    run_dbt(
        "build",
        dirs,
        pg.libpq_env(),
        dbt_vars,
        "--select",
        "+course_completions",
        *extra,
        target=target,
    )


@pytest.fixture(scope="module")
def one_day_build(warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path) -> Path:
    """A build of 2026-10-25 with every unit and data test, in a target folder of its own (which
    later builds do not overwrite): its run results and compiled SQL."""
    target = dbt_dirs / "one_day_target"
    _build(
        module_pg,
        dbt_dirs,
        {"min_date": "2026-10-25", "max_date": "2026-10-26"},
        unit_tests=True,
        target=target,
    )
    return target


def expected_rows(min_date: str, max_date: str) -> list[tuple[Any, ...]]:
    """The mart's rows for report days min_date <= D < max_date, from the inserted rows."""
    timezones = {ACME.source.client_id: LONDON, GLOBEX.source.client_id: NEW_YORK}
    first, end = dt.date.fromisoformat(min_date), dt.date.fromisoformat(max_date)
    rows = []
    for client, user_id, course_id, completed in COMPLETIONS:
        if completed is None or not sent(user_id, course_id):
            continue
        local = dt.datetime.fromtimestamp(completed, ZoneInfo(timezones[client]))
        if not first <= local.date() < end:
            continue
        rows.append(
            (
                client,
                local.date(),
                *identity_values(user_id, course_id),
                local.date(),
                local.replace(tzinfo=None),
            )
        )
    return sorted(rows)


def mart_rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """The mart's report day and canonical columns (not the change bookkeeping)."""
    columns = ", ".join(["client_id", "report_date", *COMPLETION.column_names])
    return sorted(conn.execute(f"select {columns} from {MART}").fetchall())


def test_first_build_of_a_window_has_exactly_its_local_days(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    warehouse.execute(f"drop table if exists {MART}")
    window = {"min_date": "2026-10-24", "max_date": "2026-11-02"}

    _build(module_pg, dbt_dirs, window)

    rows = mart_rows(warehouse)
    assert rows == expected_rows(**window)
    # Spot checks of the rules, in case both sides got one wrong the same way.
    acme_days = {(r[2], r[8]): r[1] for r in rows if r[0] == "acme"}
    assert acme_days[(3, 2)] == dt.date(2026, 10, 25)  # 00:30 BST, just after local midnight
    assert acme_days[(5, 2)] == dt.date(2026, 10, 24)  # 23:30 BST, suspended user
    assert acme_days[(6, 2)] == dt.date(2026, 10, 25)  # the second 01:30
    assert acme_days[(3, 3)] == dt.date(2026, 10, 25)  # 23:30 GMT, hour 25 of the day
    assert acme_days[(2, 2)] == dt.date(2026, 10, 26)
    assert {r[3] for r in rows} == {"alice", "carol", "dan", "admin"}
    globex = {(r[2], r[8]): (r[1], r[12]) for r in rows if r[0] == "globex"}
    assert globex[(3, 2)] == (dt.date(2026, 10, 24), dt.datetime(2026, 10, 24, 19, 30))


def test_the_build_ran_every_unit_and_data_test(one_day_build: Path) -> None:
    results = json.loads((one_day_build / "run_results.json").read_text())["results"]
    assert len(assert_build_passed(results)) >= 7


def test_rebuilding_days_replaces_only_those_days(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    everything = {"min_date": "2026-05-01", "max_date": "2026-12-01"}
    _build(module_pg, dbt_dirs, everything)
    before = mart_rows(warehouse)
    assert before == expected_rows(**everything)
    removed = [
        ("acme", 3, 2),  # 2026-10-25: one of several completions that day
        ("globex", 6, 2),  # 2026-11-01: the only completion of that day
        ("acme", 5, 2),  # 2026-10-24: outside the rebuilt window
    ]
    deleted = _delete_completions(warehouse, removed)
    try:
        rebuilt = {"min_date": "2026-10-25", "max_date": "2026-11-02"}
        _build(module_pg, dbt_dirs, rebuilt)

        after = mart_rows(warehouse)
        first, end = dt.date(2026, 10, 25), dt.date(2026, 11, 2)
        outside = [row for row in before if not first <= row[1] < end]
        now_in_window = [
            row for row in expected_rows(**rebuilt) if (row[0], row[2], row[8]) not in removed
        ]
        assert after == sorted(outside + now_in_window)
        assert not [row for row in after if row[1] == dt.date(2026, 11, 1)]  # emptied day
        assert ("acme", dt.date(2026, 10, 24), 5) in {(r[0], r[1], r[2]) for r in after}
    finally:
        _restore_completions(warehouse, deleted)


def test_plain_dbt_build_without_vars_builds_every_day(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    _build(module_pg, dbt_dirs, None)

    assert mart_rows(warehouse) == expected_rows(**EVERY_DAY)


def test_the_mart_has_the_canonical_completion_columns(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    if warehouse.execute(f"select to_regclass('{MART}')").fetchone() == (None,):
        _build(module_pg, dbt_dirs, {"min_date": "2026-10-25", "max_date": "2026-10-26"})
    assert_mart_columns_are_canonical_and_documented(warehouse, COMPLETION)


def test_the_day_filter_can_use_the_moodle_index_on_timecompleted(
    warehouse: psycopg.Connection, one_day_build: Path
) -> None:
    compiled = (
        one_day_build / "compiled/outbound_data_sync/models/marts/completion/course_completions.sql"
    )

    with warehouse.transaction():
        # The fixture's tables are tiny; forbid sequential scans to see whether an index *can*
        # be used, which is what matters on a real site.
        warehouse.execute("set local enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in warehouse.execute(f"explain {compiled.read_text()}").fetchall()
        )

    for site in (ACME, GLOBEX):
        index = warehouse.execute(
            "select indexname from pg_indexes where schemaname = %s and tablename = %s"
            " and indexdef like '%%(timecompleted)'",
            (site.source.moodle_schema, f"{site.source.table_prefix}course_completions"),
        ).fetchone()
        assert index is not None
        assert f"Index Scan on {index[0]}" in plan, plan


def test_dbt_parse_needs_no_database(tmp_path: Path) -> None:
    unreachable = {"PGHOST": "/nonexistent", "PGPORT": "1", "PGDATABASE": "nowhere"}

    run_dbt("parse", tmp_path, unreachable)

    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {node["name"] for node in manifest["nodes"].values()}
    assert "course_completions" in models
    assert {"mdl_user", "mdl_course", "mdl_course_completions", "client_settings"} <= {
        source["name"] for source in manifest["sources"].values()
    }


def _delete_completions(
    conn: psycopg.Connection, keys: list[tuple[str, int, int]]
) -> list[tuple[Site, dict[str, Any]]]:
    deleted = []
    for client, user_id, course_id in keys:
        site = ACME if client == ACME.source.client_id else GLOBEX
        table = f"{site.source.moodle_schema}.{site.source.table_prefix}course_completions"
        row = conn.execute(
            f"delete from {table} where userid = %s and course = %s"
            " returning id, userid, course, timecompleted",
            (user_id, course_id),
        ).fetchone()
        assert row is not None
        deleted.append(
            (site, dict(zip(("id", "userid", "course", "timecompleted"), row, strict=True)))
        )
    return deleted


def _restore_completions(
    conn: psycopg.Connection, deleted: list[tuple[Site, dict[str, Any]]]
) -> None:
    for site, row in deleted:
        insert_rows(
            conn,
            site.source.moodle_schema,
            "course_completions",
            [row],
            prefix=site.source.table_prefix,
        )
