"""The `moodle` union views over two real Moodle schemas on different releases and prefixes."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.moodle.schema import create_moodle_tables
from orchestration.moodle.union_views import (
    MoodleSource,
    MoodleSourceError,
    common_type,
    create_union_views,
)
from synthetic_moodle import insert_rows

ACME = MoodleSource("acme", "moodle_acme", "mdl_", "Europe/London")  # Moodle 4.2
GLOBEX = MoodleSource("globex", "moodle_globex", "m_", "America/New_York")  # Moodle 4.3


@pytest.fixture
def conn(pg: LocalPostgres) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        create_moodle_tables(connection, ACME.moodle_schema, "4.2", prefix=ACME.table_prefix)
        create_moodle_tables(connection, GLOBEX.moodle_schema, "4.3", prefix=GLOBEX.table_prefix)
        _insert(connection, ACME, "user", [{"id": 3, "username": "alice"}])
        _insert(
            connection,
            GLOBEX,
            "user",
            [{"id": 3, "username": "gina"}, {"id": 4, "username": "gus"}],
        )
        _insert(connection, ACME, "quiz", [{"id": 7, "name": "Acme quiz"}])
        _insert(
            connection, GLOBEX, "quiz", [{"id": 7, "name": "Fire quiz", "reviewmaxmarks": 65536}]
        )
        yield connection


def _insert(
    conn: psycopg.Connection, source: MoodleSource, table: str, rows: list[dict[str, object]]
) -> None:
    insert_rows(conn, source.moodle_schema, table, rows, prefix=source.table_prefix)


def _columns(conn: psycopg.Connection, view: str) -> dict[str, str]:
    rows = conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute as a"
        " where a.attrelid = %s::regclass and a.attnum > 0 order by a.attnum",
        (f"moodle.{view}",),
    ).fetchall()
    return dict(rows)


def test_views_union_every_client_under_the_canonical_table_name(conn: psycopg.Connection) -> None:
    report = create_union_views(conn, [ACME, GLOBEX])

    rows = conn.execute(
        "select client_id, id, username from moodle.mdl_user order by 1, 2"
    ).fetchall()
    assert rows == [("acme", 3, "alice"), ("globex", 3, "gina"), ("globex", 4, "gus")]
    assert report["views"]["mdl_user"] == ["acme", "globex"]
    assert report["views"]["mdl_scorm_scoes_track"] == ["acme"]
    assert report["views"]["mdl_scorm_attempt"] == ["globex"]
    assert report["recreated"] == []


def test_a_column_a_client_lacks_is_null_for_that_client(conn: psycopg.Connection) -> None:
    create_union_views(conn, [ACME, GLOBEX])

    rows = conn.execute(
        "select client_id, name, reviewmaxmarks from moodle.mdl_quiz order by client_id"
    ).fetchall()
    # quiz.reviewmaxmarks arrived in Moodle 4.3 (MDL-77564): acme on 4.2 has no such column.
    assert rows == [("acme", "Acme quiz", None), ("globex", "Fire quiz", 65536)]
    # course.enableaitools is only in 5.1, which neither client runs; the view still has it.
    assert conn.execute("select count(enableaitools) from moodle.mdl_course").fetchone() == (0,)


def test_columns_are_typed_for_every_release(conn: psycopg.Connection) -> None:
    create_union_views(conn, [ACME, GLOBEX])

    course = _columns(conn, "mdl_course")
    assert list(course)[:2] == ["client_id", "id"]
    # fullname is varchar(254) before 5.0 and varchar(1333) from it: text fits both.
    assert course["fullname"] == "text"
    assert course["id"] == "bigint"
    assert course["pdfexportfont"] == "text"
    assert course["visible"] == "smallint"
    assert _columns(conn, "mdl_grade_grades")["rawgrade"] == "numeric(10,5)"


def test_a_table_no_client_has_is_an_empty_typed_view(conn: psycopg.Connection) -> None:
    report = create_union_views(conn, [GLOBEX])

    assert report["views"]["mdl_scorm_scoes_track"] == []
    assert conn.execute("select count(*) from moodle.mdl_scorm_scoes_track").fetchone() == (0,)
    assert _columns(conn, "mdl_scorm_scoes_track") == {
        "client_id": "text",
        "id": "bigint",
        "userid": "bigint",
        "scormid": "bigint",
        "scoid": "bigint",
        "attempt": "bigint",
        "element": "text",
        "value": "text",
        "timemodified": "bigint",
    }


def test_client_settings_hold_time_zone_and_scorm_tracking(conn: psycopg.Connection) -> None:
    report = create_union_views(conn, [ACME, GLOBEX])

    rows = conn.execute("select * from moodle.client_settings order by client_id").fetchall()
    assert rows == [
        ("acme", "Europe/London", "moodle_acme", "mdl_", "legacy"),
        ("globex", "America/New_York", "moodle_globex", "m_", "normalised"),
    ]
    assert report["clients"]["acme"] == {"timezone": "Europe/London", "scorm_tracking": "legacy"}


def test_running_twice_keeps_dependent_views(conn: psycopg.Connection) -> None:
    create_union_views(conn, [ACME, GLOBEX])
    conn.execute("create schema staging")
    conn.execute("create view staging.users as select client_id, id from moodle.mdl_user")
    conn.execute(
        "create view staging.settings as select client_id, timezone from moodle.client_settings"
    )

    report = create_union_views(conn, [ACME, GLOBEX])

    assert report["recreated"] == []
    assert conn.execute("select count(*) from staging.users").fetchone() == (3,)
    assert conn.execute("select count(*) from staging.settings").fetchone() == (2,)


def test_removing_a_client_keeps_dependent_views_and_drops_its_rows(
    conn: psycopg.Connection,
) -> None:
    create_union_views(conn, [ACME, GLOBEX])
    conn.execute("create schema staging")
    conn.execute("create view staging.users as select client_id, id from moodle.mdl_user")

    report = create_union_views(conn, [ACME])

    assert report["recreated"] == []
    assert conn.execute("select client_id, id from staging.users").fetchall() == [("acme", 3)]
    assert conn.execute("select client_id from moodle.client_settings").fetchall() == [("acme",)]


def test_a_column_that_disappears_recreates_the_view_and_says_so(
    conn: psycopg.Connection,
) -> None:
    # A site-specific column (a local plugin's) that only acme has; then acme leaves.
    conn.execute("alter table moodle_acme.mdl_user add column local_badge text")
    create_union_views(conn, [ACME, GLOBEX])
    assert "local_badge" in _columns(conn, "mdl_user")
    conn.execute("create schema staging")
    conn.execute("create view staging.users as select client_id, id from moodle.mdl_user")

    report = create_union_views(conn, [GLOBEX])

    assert report["recreated"] == ["mdl_user"]
    assert "local_badge" not in _columns(conn, "mdl_user")
    # The dependent view went with it (drop ... cascade); dbt build recreates such views.
    assert conn.execute("select to_regclass('staging.users')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            MoodleSource("initech", "moodle_initech"),
            "client 'initech': Moodle schema 'moodle_initech' does not exist",
        ),
        (
            MoodleSource("acme", "moodle_acme", table_prefix="mdl2_"),
            "has no table mdl2_user; is the table prefix 'mdl2_' right?",
        ),
        (
            MoodleSource("acme", "moodle_acme", timezone="Europe/Londn"),
            "client 'acme': time zone 'Europe/Londn' is not known",
        ),
    ],
)
def test_a_misconfigured_client_is_a_clear_error_and_changes_nothing(
    conn: psycopg.Connection, source: MoodleSource, message: str
) -> None:
    create_union_views(conn, [GLOBEX])

    with pytest.raises(MoodleSourceError, match=message.replace("(", r"\(").replace("?", r"\?")):
        create_union_views(conn, [GLOBEX, source])

    assert conn.execute("select client_id from moodle.client_settings").fetchall() == [("globex",)]


def test_a_client_configured_twice_is_an_error(conn: psycopg.Connection) -> None:
    with pytest.raises(MoodleSourceError, match="client 'acme' is configured twice"):
        create_union_views(conn, [ACME, ACME])


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ({"varchar(255)", "character varying(1333)"}, "text"),
        ({"smallint", "bigint"}, "bigint"),
        ({"numeric(10,5)"}, "numeric(10,5)"),
        ({"numeric(10,5)", "numeric(12,7)"}, "numeric"),
        ({"bigint", "real"}, "double precision"),
        ({"bigint", "text"}, "text"),
    ],
)
def test_common_type_holds_every_value(types: set[str], expected: str) -> None:
    assert common_type(types) == expected


def test_a_moodle_schema_the_project_did_not_make_is_refused_and_left_as_it_was(
    conn: psycopg.Connection,
) -> None:
    conn.execute("create schema moodle")
    conn.execute("create table moodle.mdl_user (id bigint, note text)")
    conn.execute("insert into moodle.mdl_user values (1, 'sentinel')")

    with pytest.raises(MoodleSourceError) as refused:
        create_union_views(conn, [ACME, GLOBEX])

    message = str(refused.value)
    assert "schema 'moodle' in database" in message
    assert "table mdl_user" in message
    assert "nothing was changed" in message
    assert conn.execute("select note from moodle.mdl_user").fetchall() == [("sentinel",)]
    assert conn.execute(
        "select count(*) from pg_class where relnamespace = 'moodle'::regnamespace"
    ).fetchone() == (1,)


def test_a_schema_left_by_a_release_before_the_marker_is_adopted(conn: psycopg.Connection) -> None:
    create_union_views(conn, [ACME])
    conn.execute("comment on schema moodle is null")

    create_union_views(conn, [ACME, GLOBEX])

    assert conn.execute("select count(*) from moodle.mdl_user").fetchone() == (3,)
    (comment,) = conn.execute(
        "select obj_description('moodle'::regnamespace, 'pg_namespace')"
    ).fetchone()
    assert comment is not None and comment.startswith("Outbound Data Sync")


def _xmin(conn: psycopg.Connection, relation: str) -> str:
    """The transaction that last wrote the relation's catalogue row: changes with any DDL."""
    (xmin,) = conn.execute(
        "select xmin::text from pg_class where oid = %s::regclass", (relation,)
    ).fetchone()
    return xmin


def test_a_night_with_nothing_changed_writes_nothing(conn: psycopg.Connection) -> None:
    first = create_union_views(conn, [ACME, GLOBEX])
    before = {v: _xmin(conn, f"moodle.{v}") for v in ("mdl_user", "mdl_quiz", "client_settings")}

    again = create_union_views(conn, [ACME, GLOBEX])

    assert first["unchanged"] is False
    assert again["unchanged"] is True
    assert again["fingerprint"] == first["fingerprint"]
    assert again["views"] == first["views"]
    assert {v: _xmin(conn, f"moodle.{v}") for v in before} == before


def test_a_dropped_view_or_a_changed_client_makes_the_views_again(
    conn: psycopg.Connection,
) -> None:
    create_union_views(conn, [ACME, GLOBEX])
    conn.execute("drop view moodle.mdl_quiz")

    healed = create_union_views(conn, [ACME, GLOBEX])

    assert healed["unchanged"] is False
    assert conn.execute("select count(*) from moodle.mdl_quiz").fetchone() == (2,)
    moved = MoodleSource("globex", "moodle_globex", "m_", "Australia/Sydney")
    changed = create_union_views(conn, [ACME, moved])
    assert changed["unchanged"] is False
    assert changed["fingerprint"] != healed["fingerprint"]
    assert conn.execute(
        "select timezone from moodle.client_settings where client_id = 'globex'"
    ).fetchone() == ("Australia/Sydney",)
