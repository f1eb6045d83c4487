"""`ods replica-indexes`: the replicas' event-time indexes, printed or applied concurrently, and day
filters through the union views use them; the night only reports the missing ones."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from orchestration.moodle.replica_indexes import (
    DAY_WINDOW_COLUMNS,
    apply_indexes,
    index_name,
    missing_index_costs,
    missing_indexes,
    statements,
)
from orchestration.moodle.union_views import MoodleSource, create_union_views
from synthetic_moodle import SiteSpec, generate_site

DAY = dt.date(2026, 10, 25)
SITES = [
    MoodleSource(client_id="acme", moodle_schema="moodle_acme"),  # 4.2: scorm_scoes_track
    MoodleSource(client_id="globex", moodle_schema="moodle_globex", table_prefix="m_"),  # 4.5
]


@pytest.fixture(scope="module")
def warehouse(module_pg):
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for source, release in zip(SITES, ("4.2", "4.5"), strict=True):
            generate_site(
                conn,
                SiteSpec(
                    schema=source.moodle_schema,
                    release=release,
                    prefix=source.table_prefix,
                    learners=60,
                    start=DAY - dt.timedelta(days=3),
                    days=5,
                ),
            )
        create_union_views(conn, SITES)
        replicas = [(s.moodle_schema, s.table_prefix) for s in SITES]
        before = missing_indexes(conn, replicas)
        costs = missing_index_costs(conn, before)
        made = apply_indexes(conn, before)
        yield conn, made, before, costs


REPLICAS = [(s.moodle_schema, s.table_prefix) for s in SITES]


def _expected_index_names(conn) -> set[str]:
    """Worked out from the tables each replica has, not from the code under test."""
    expected = set()
    for source in SITES:
        tables = {
            row[0]
            for row in conn.execute(
                "select tablename from pg_tables where schemaname = %s", [source.moodle_schema]
            )
        }
        for table, columns in DAY_WINDOW_COLUMNS.items():
            if source.table_prefix + table in tables:
                expected |= {
                    f"{source.moodle_schema}.{index_name(source.table_prefix, table, c)}"
                    for c in columns
                }
    return expected


def test_every_day_window_column_of_every_replica_gets_an_index_once(warehouse):
    conn, made, _, _ = warehouse
    assert set(made) == _expected_index_names(conn)
    assert "moodle_acme.ods_mdl_scorm_scoes_track_timemodified" in made
    assert "moodle_globex.ods_m_scorm_scoes_value_timemodified" in made
    assert missing_indexes(conn, REPLICAS) == []
    assert apply_indexes(conn, missing_indexes(conn, REPLICAS)) == []


def test_the_statements_for_a_dba_create_each_index_concurrently(warehouse):
    conn, _, before, _ = warehouse
    printed = statements(before)
    assert len(printed) == len(_expected_index_names(conn))
    assert (
        'create index concurrently if not exists "ods_m_quiz_attempts_timefinish" '
        'on "moodle_globex"."m_quiz_attempts" ("timefinish");'
    ) in printed


def test_missing_indexes_are_reported_with_what_a_days_read_costs_without_them(warehouse):
    conn, _, before, costs = warehouse
    assert {c["index"] for c in costs} == {i.qualified_name for i in before}
    track = next(c for c in costs if c["table"] == "moodle_acme.mdl_scorm_scoes_track")
    assert track["union_view"] == "mdl_scorm_scoes_track"
    assert track["plan"] == "Seq Scan"
    rows = conn.execute("select count(*) from moodle_acme.mdl_scorm_scoes_track").fetchone()[0]
    assert rows > 0
    # reltuples is the planner's estimate; after generation it is close to the real count.
    assert track["rows_read_estimate"] == pytest.approx(rows, rel=0.2)


def test_an_index_of_another_name_on_the_column_counts_as_present(warehouse):
    conn, _, _, _ = warehouse
    conn.execute("drop index moodle_globex.ods_m_quiz_attempts_timefinish")
    assert [i.qualified_name for i in missing_indexes(conn, REPLICAS)] == [
        "moodle_globex.ods_m_quiz_attempts_timefinish"
    ]
    conn.execute("create index dba_named on moodle_globex.m_quiz_attempts (timefinish, userid)")
    try:
        assert missing_indexes(conn, REPLICAS) == []
    finally:
        conn.execute("drop index moodle_globex.dba_named")
        apply_indexes(conn, missing_indexes(conn, REPLICAS))


@pytest.mark.parametrize(
    ("view", "column"),
    [
        ("mdl_scorm_scoes_track", "timemodified"),
        ("mdl_scorm_scoes_value", "timemodified"),
        ("mdl_quiz_attempts", "timefinish"),
        ("mdl_quiz_attempts", "timemodified"),
        ("mdl_facetoface_signups_status", "timecreated"),
        ("mdl_course_completions", "timecompleted"),
    ],
)
def test_a_day_filter_through_the_union_view_uses_the_replica_indexes(warehouse, view, column):
    conn, *_ = warehouse
    start = int(dt.datetime(2026, 10, 24, 23, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(2026, 10, 26, 0, tzinfo=dt.UTC).timestamp())
    with conn.transaction():
        # Small test tables favour sequential scans; this asks whether an index CAN serve the filter.
        conn.execute("set local enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                f"explain select * from moodle.{view} where {column} >= {start} and {column} < {end}"
            )
        )
    assert "Seq Scan" not in plan, plan
    table = view.removeprefix("mdl_")
    if table in DAY_WINDOW_COLUMNS:
        for source in SITES:
            name = index_name(source.table_prefix, table, column)
            exists = conn.execute(
                "select 1 from pg_indexes where schemaname = %s and indexname = %s",
                [source.moodle_schema, name],
            ).fetchone()
            assert (name in plan) == bool(exists), plan
    else:
        assert "Index" in plan, plan
