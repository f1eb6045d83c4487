"""The synthetic Moodle site: real tables of the release, Moodle's edge cases, seeded data."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.moodle.schema import create_moodle_indexes, create_moodle_tables, moodle_tables
from synthetic_moodle import SiteSpec, SiteSummary, generate_site, insert_rows

LONDON = ZoneInfo("Europe/London")
# 2026-03-29 is the 23-hour day when London moves to BST; the window spans both offsets.
START = datetime.date(2026, 3, 28)
DAYS = 4
WINDOW = {START + datetime.timedelta(days=n) for n in range(DAYS)}


@pytest.fixture(scope="module")
def conn(module_pg: LocalPostgres) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def site(conn: psycopg.Connection[Any]) -> SiteSummary:
    return generate_site(conn, SiteSpec("moodle_acme", start=START, days=DAYS, seed=7))


def _rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def _local_date(epoch: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(epoch, LONDON).date()


def _short_type(
    data_type: str, length: int | None, precision: int | None, scale: int | None
) -> str:
    if data_type == "character varying":
        return f"varchar({length})"
    if data_type == "numeric":
        return f"numeric({precision},{scale})"
    return data_type


@pytest.mark.parametrize(
    ("release", "scorm_table", "absent_table"),
    [("4.2", "scorm_scoes_track", "scorm_attempt"), ("4.3", "scorm_attempt", "scorm_scoes_track")],
)
def test_tables_have_the_real_columns_and_types_of_the_release(
    pg: LocalPostgres, release: str, scorm_table: str, absent_table: str
) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        generate_site(connection, SiteSpec("moodle_site", release=release, start=START, learners=8))
        found: dict[str, list[tuple[str, str, bool]]] = {}
        for table, column, data_type, length, precision, scale, nullable in connection.execute(
            """
            select table_name, column_name, data_type, character_maximum_length,
                numeric_precision, numeric_scale, is_nullable
            from information_schema.columns
            where table_schema = 'moodle_site'
            order by table_name, ordinal_position
            """
        ):
            found.setdefault(table.removeprefix("mdl_"), []).append(
                (column, _short_type(data_type, length, precision, scale), nullable == "NO")
            )
    expected = {
        table: [(c.name, "bigint" if c.sequence else c.pg_type, c.not_null) for c in columns]
        for table, columns in moodle_tables(release).items()
    }
    assert found == expected
    assert scorm_table in found
    assert absent_table not in found


def test_indexes_carry_moodles_names_and_can_be_created_again(pg: LocalPostgres) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        create_moodle_tables(connection, "moodle_site", "4.5")
        create_moodle_indexes(connection, "moodle_site", "4.5")
        unique = {
            name
            for (name,) in connection.execute(
                "select indexname from pg_indexes"
                " where schemaname = 'moodle_site' and indexdef like 'CREATE UNIQUE%%'"
            )
        }
    assert {"mdl_courcomp_usecou_uix", "mdl_user_mneuse_uix", "mdl_userenro_enruse_uix"} <= unique


def test_summary_counts_match_the_tables(conn: psycopg.Connection[Any], site: SiteSummary) -> None:
    counts = {
        table: _rows(conn, f"select count(*) from moodle_acme.mdl_{table}")[0][0]
        for table in site.row_counts
    }
    assert counts == site.row_counts
    assert counts["user"] == 50 + 2
    assert counts["course"] == 6 + 1


def _enrolments_and_completions(conn: psycopg.Connection[Any], user_id: int) -> tuple[int, int]:
    """How many enrolments acme's user `user_id` has, and how many courses they completed."""
    [(enrolments,)] = _rows(
        conn, f"select count(*) from moodle_acme.mdl_user_enrolments where userid = {user_id}"
    )
    [(completed,)] = _rows(
        conn,
        "select count(*) from moodle_acme.mdl_course_completions"
        f" where userid = {user_id} and timecompleted is not null",
    )
    return enrolments, completed


def test_guest_admin_and_site_course_have_the_ids_moodle_installs_them_with(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    users = _rows(conn, "select id, username, auth from moodle_acme.mdl_user where id <= 2")
    site_course = _rows(conn, "select category, format from moodle_acme.mdl_course where id = 1")
    assert users == [(1, "guest", "manual"), (2, "admin", "manual")]
    assert site_course == [(0, "site")]


def test_deleted_user_carries_the_identity_moodle_leaves_on_deletion(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    [(user_id, username, email, idnumber, deleted_at)] = _rows(
        conn,
        "select id, username, email, idnumber, timemodified from moodle_acme.mdl_user"
        " where deleted = 1",
    )
    enrolments, completed = _enrolments_and_completions(conn, user_id)
    assert re.fullmatch(rf"[a-z.]+@[a-z.-]+\.{deleted_at}", username)
    assert re.fullmatch(r"[0-9a-f]{32}", email)
    assert idnumber == ""
    assert enrolments == 0
    assert completed >= 1


def test_suspended_user_is_still_enrolled_and_completes_courses(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    [(user_id,)] = _rows(conn, "select id from moodle_acme.mdl_user where suspended = 1")
    enrolments, completed = _enrolments_and_completions(conn, user_id)
    assert enrolments >= 1
    assert completed >= 1


def test_names_exercise_utf8_and_csv_quoting(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    names = set(_rows(conn, "select firstname, lastname from moodle_acme.mdl_user"))
    assert {("Zoë", "Ashworth"), ("José", "García"), ("Łukasz", "Wiśniewski")} <= names
    assert {("Siobhán", "O'Brien"), ("John", 'Smith, "Jr"')} <= names


def test_completions_fall_on_the_requested_local_days_up_to_both_midnights(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    times = [
        t
        for (t,) in _rows(
            conn,
            "select timecompleted from moodle_acme.mdl_course_completions"
            " where timecompleted is not null",
        )
    ]
    local_days = {_local_date(t) for t in times}
    local_clock = {datetime.datetime.fromtimestamp(t, LONDON).time() for t in times}
    utc_days = [datetime.datetime.fromtimestamp(t, datetime.UTC).date() for t in times]
    assert local_days == WINDOW
    assert {datetime.time(0, 0, 0), datetime.time(23, 59, 59)} <= local_clock
    assert any(_local_date(t) != utc_day for t, utc_day in zip(times, utc_days, strict=True))


def test_completions_include_in_progress_rows_and_rows_the_feed_must_skip(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    [(in_progress, awaiting_cron, guest, site_course)] = _rows(
        conn,
        """
        select
            count(*) filter (where timecompleted is null),
            count(*) filter (where timecompleted is null and reaggregate > 0),
            count(*) filter (where userid = 1 and timecompleted is not null),
            count(*) filter (where course = 1 and timecompleted is not null)
        from moodle_acme.mdl_course_completions
        """,
    )
    assert in_progress > 0
    assert awaiting_cron > 0
    assert guest == 1
    assert site_course == 1


def test_a_learner_has_at_most_one_completion_row_per_course(
    conn: psycopg.Connection[Any], site: SiteSummary
) -> None:
    duplicates = _rows(
        conn,
        "select userid, course from moodle_acme.mdl_course_completions"
        " group by userid, course having count(*) > 1",
    )
    [(user_id, course_id)] = _rows(
        conn, "select userid, course from moodle_acme.mdl_course_completions order by id limit 1"
    )
    assert duplicates == []
    duplicate = {"userid": user_id, "course": course_id}
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        insert_rows(conn, "moodle_acme", "course_completions", [duplicate])


_SNAPSHOT = (
    "user",
    "course",
    "course_categories",
    "context",
    "enrol",
    "user_enrolments",
    "course_completions",
    "modules",
    "course_modules",
    "grade_items",
    "scorm_scoes",
    "scorm_scoes_track",
    "quiz_attempts",
    "quiz_grades",
    "facetoface_signups_status",
)


def _snapshot(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: _rows(conn, f"select * from {schema}.mdl_{t} order by id") for t in _SNAPSHOT}


def test_same_seed_gives_the_same_site_and_another_seed_a_different_one(
    pg: LocalPostgres,
) -> None:
    spec = SiteSpec("moodle_a", start=START, days=2, learners=15, courses=3, seed=3)
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        generate_site(connection, spec)
        first = _snapshot(connection, "moodle_a")
        generate_site(connection, SiteSpec(**{**spec.__dict__, "seed": 4}))
        other = _snapshot(connection, "moodle_a")
        generate_site(connection, spec)
        again = _snapshot(connection, "moodle_a")
    assert again == first
    assert other["user"] != first["user"]
    assert other["course_completions"] != first["course_completions"]


def test_generating_again_replaces_the_site_and_what_was_added_to_it(pg: LocalPostgres) -> None:
    spec = SiteSpec("moodle_acme", start=START, days=2, learners=12, courses=2)
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        first = generate_site(connection, spec)
        insert_rows(connection, "moodle_acme", "user", [{"username": "stray", "mnethostid": 1}])
        second = generate_site(connection, spec)
        strays = _rows(connection, "select id from moodle_acme.mdl_user where username = 'stray'")
    assert second == first
    assert strays == []


def test_peak_day_gets_at_least_the_requested_completions(pg: LocalPostgres) -> None:
    peak_day = datetime.date(2026, 7, 1)
    spec = SiteSpec(
        "moodle_peak", start=START, days=2, courses=4, peak_day=peak_day, peak_completions=1001
    )
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        generate_site(connection, spec)
        completed = _rows(
            connection,
            "select userid, timecompleted from moodle_peak.mdl_course_completions"
            " where timecompleted is not null",
        )
        enrolled = set(_rows(connection, "select userid from moodle_peak.mdl_user_enrolments"))
    on_peak = [user_id for user_id, t in completed if _local_date(t) == peak_day]
    assert len(on_peak) == 1001
    assert {(user_id,) for user_id in on_peak} <= enrolled


def test_insert_rows_fills_moodle_defaults_and_takes_ids_from_the_sequence(
    pg: LocalPostgres,
) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        create_moodle_tables(connection, "moodle_x", "4.1")
        insert_rows(connection, "moodle_x", "user", [{"username": "ana", "firstname": "Ana"}])
        completions = [
            {"id": 10, "userid": 3, "course": 2, "timecompleted": 1_780_000_000},
            {"id": 11, "userid": 4, "course": 2},
        ]
        insert_rows(connection, "moodle_x", "course_completions", completions)
        insert_rows(connection, "moodle_x", "course_completions", [{"userid": 5, "course": 2}])
        user = _rows(
            connection,
            "select id, auth, lang, timezone, calendartype, password, idnumber, email, description,"
            " mnethostid, confirmed from moodle_x.mdl_user",
        )
        stored = _rows(
            connection,
            "select id, userid, timeenrolled, timecompleted, reaggregate"
            " from moodle_x.mdl_course_completions order by id",
        )
    assert user == [(1, "manual", "en", "99", "gregorian", "", "", "", None, 0, 0)]
    assert stored == [
        (10, 3, 0, 1_780_000_000, 0),
        (11, 4, 0, None, 0),
        (12, 5, 0, None, 0),
    ]


def test_insert_rows_names_columns_the_table_does_not_have(pg: LocalPostgres) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        create_moodle_tables(connection, "moodle_x", "4.1", indexes=False)
        with pytest.raises(ValueError, match="user_id"):
            insert_rows(connection, "moodle_x", "course_completions", [{"user_id": 3}])


def test_spec_refuses_too_few_learners_and_unknown_releases() -> None:
    with pytest.raises(ValueError, match="learners"):
        SiteSpec("moodle_x", start=START, learners=3)
    with pytest.raises(ValueError, match="release"):
        SiteSpec("moodle_x", start=START, release="2.0")
