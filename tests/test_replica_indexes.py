"""The union-view step indexes the replicas' event times, and day filters through the views use them."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from orchestration.moodle.replica_indexes import (
    DAY_WINDOW_COLUMNS,
    create_replica_indexes,
    index_name,
)
from orchestration.moodle.synthetic import SiteSpec, generate_site
from orchestration.moodle.union_views import MoodleSource, create_union_views

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
        made = create_replica_indexes(conn, [(s.moodle_schema, s.table_prefix) for s in SITES])
        yield conn, made


def test_every_day_window_column_of_every_replica_gets_an_index_once(warehouse):
    conn, made = warehouse
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
    assert set(made) == expected
    assert "moodle_acme.ods_mdl_scorm_scoes_track_timemodified" in made
    assert "moodle_globex.ods_m_scorm_scoes_value_timemodified" in made
    again = create_replica_indexes(conn, [(s.moodle_schema, s.table_prefix) for s in SITES])
    assert again == []


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
    conn, _ = warehouse
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
