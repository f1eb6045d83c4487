"""Two nights with a warehouse role that may only read the replicas, and a replica reload between.

The replicas belong to another tool: the warehouse role gets `USAGE` on each replica schema and
`SELECT` on its tables, nothing more (and `CREATE` on the database, for the project's own schemas).
Night 1 builds and delivers every feed of both clients for a day; then acme's replica is reloaded
the way replication tools do it, `drop schema … cascade` and load again, which drops the union
views and the dbt views built on them; night 2 runs as the schedule would, with no manual step,
and must deliver correct files again. Every file is compared with the rows worked out in Python
from the raw Moodle tables (tests/expected_feeds.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from orchestration import cli
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB
from synthetic_moodle import generate_site
from tests.e2e_support import (
    client_sites,
    ods_environment,
    parse_csv,
    run_each_clients_files,
    site_clients,
    start_sftp_server,
    write_clients_file,
)
from tests.expected_feeds import EXPECTED, expected_scorm

TZ = "Europe/London"
NIGHT_1 = dt.date(2026, 11, 3)
NIGHT_2 = NIGHT_1 + dt.timedelta(days=1)
FEEDS = ("scorm", "f2f", "quiz", "completion")
PREFIXES = {"scorm": "SCORM", "f2f": "F2F", "quiz": "Quiz", "completion": "Completion"}
SITES = client_sites(
    {
        "acme": {"release": "4.2", "prefix": "mdl_", "seed": 41},
        "globex": {"release": "4.5", "prefix": "m_", "seed": 42},
    },
    learners=16,
    courses=2,
    start=NIGHT_1 - dt.timedelta(days=2),
    days=4,
)


def _grant_read_only(conn: psycopg.Connection, role: str, schema: str) -> None:
    """What a replication tool grants a reader: the schema and its tables, nothing to write."""
    conn.execute(
        sql.SQL("grant usage on schema {} to {}").format(*map(sql.Identifier, (schema, role)))
    )
    conn.execute(
        sql.SQL("grant select on all tables in schema {} to {}").format(
            *map(sql.Identifier, (schema, role))
        )
    )


def _night(defs: dg.Definitions, instance: dg.DagsterInstance, day: dt.date) -> dict[str, Any]:
    """The 03:00 marts run for `day`, then each client's files run."""
    marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
        instance=instance, partition_key=day.isoformat()
    )
    assert marts.success
    run_each_clients_files(defs, instance, day, SITES)
    return {"marts": marts}


def _file(folder: Any, feed: str, day: dt.date) -> list[list[str]]:
    return parse_csv(
        (folder / f"{PREFIXES[feed]}{day + dt.timedelta(days=1):%Y%m%d}.csv").read_bytes()
    )


def _expected(conn: psycopg.Connection, client_id: str, feed: str, day: dt.date) -> list[dict]:
    spec = SITES[client_id]
    if feed == "scorm":
        return expected_scorm(
            conn, spec.schema, spec.prefix, TZ, day, records="completed_or_passed"
        )
    return EXPECTED[feed](conn, spec.schema, spec.prefix, TZ, day)


@pytest.fixture(scope="module")
def nights(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("read_only")
    role = f"ods_reader_{module_pg.database}"
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as admin:
        for spec in SITES.values():
            generate_site(admin, spec)
        admin.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("grant create on database {} to {}").format(
                sql.Identifier(module_pg.database), sql.Identifier(role)
            )
        )
        for spec in SITES.values():
            _grant_read_only(admin, role, spec.schema)
    reader = replace(module_pg, user=role)
    server, keys = start_sftp_server(tmp, SITES)
    folders = {name: server.root / name / "outbound" for name in SITES}
    clients = site_clients(SITES, server, keys, feeds={feed: {} for feed in FEEDS})
    clients_file = write_clients_file(
        tmp / "clients.yaml", clients, archive_dir=str(tmp / "archive")
    )
    try:
        with ods_environment(reader, clients_file):
            defs = build_definitions()
            instance = dg.DagsterInstance.ephemeral()
            state: dict[str, Any] = {
                "folders": folders,
                "role": role,
                "reader": reader,
                "admin": module_pg,
                "clients_file": clients_file,
                "tmp": tmp,
            }
            state["night_1"] = _night(defs, instance, NIGHT_1)
            state["files_1"] = {
                (c, f): _file(folders[c], f, NIGHT_1) for c, f in itertools.product(SITES, FEEDS)
            }
            with psycopg.connect(module_pg.conninfo(), autocommit=True) as admin:
                # The replication tool reloads acme: drop with cascade, load again, grant again.
                admin.execute("drop schema moodle_acme cascade")
                generate_site(admin, SITES["acme"])
                _grant_read_only(admin, role, "moodle_acme")
                state["views_after_reload"] = admin.execute(
                    "select to_regclass('moodle.mdl_user'), to_regclass('staging.stg_moodle__users')"
                ).fetchone()
            state["night_2"] = _night(defs, instance, NIGHT_2)
            state["files_2"] = {
                (c, f): _file(folders[c], f, NIGHT_2) for c, f in itertools.product(SITES, FEEDS)
            }
            # Nothing changed since: the same night again builds no view.
            state["night_3"] = _night(defs, instance, NIGHT_2)
        with psycopg.connect(module_pg.conninfo()) as conn:
            state["expected"] = {
                (c, f, d): _expected(conn, c, f, d)
                for c, f, d in itertools.product(SITES, FEEDS, (NIGHT_1, NIGHT_2))
            }
            state["writable_replica_tables"] = conn.execute(
                "select count(*) from information_schema.table_privileges"
                " where grantee = %s and table_schema like 'moodle\\_%%'"
                " and privilege_type <> 'SELECT'",
                [role],
            ).fetchone()[0]
        yield state
    finally:
        server.stop()


def _rows(file: list[list[str]]) -> list[dict[str, str]]:
    header, *rows = file
    return [dict(zip(header, row, strict=True)) for row in rows]


def _expected_rows(state: dict[str, Any], client: str, feed: str, day: dt.date) -> list[dict]:
    """The expected rows in the file's default headers (DESIGN.md "Feeds")."""
    from orchestration.feeds import FEEDS as CATALOG

    headers = CATALOG[feed].default_headers()
    return [
        {header: row[column] for column, header in headers.items()}
        for row in state["expected"][client, feed, day]
    ]


def test_the_role_can_only_read_the_replicas(nights):
    assert nights["writable_replica_tables"] == 0


def test_a_night_with_a_read_only_replica_role_delivers_every_feed_correctly(nights):
    for client, feed in itertools.product(SITES, FEEDS):
        assert _rows(nights["files_1"][client, feed]) == _expected_rows(
            nights, client, feed, NIGHT_1
        ), (client, feed)
    assert any(len(nights["files_1"][c, f]) > 1 for c, f in itertools.product(SITES, FEEDS))


def test_the_night_reports_the_replica_indexes_it_may_not_create(nights):
    marts = nights["night_1"]["marts"]
    (view,) = [
        m
        for m in marts.asset_materializations_for_node("moodle_union_views")
        if m.asset_key == dg.AssetKey(["moodle", "mdl_quiz_attempts"])
    ]
    missing = view.metadata["missing_replica_indexes"].value
    assert {entry["index"] for entry in missing} == {
        "moodle_acme.ods_mdl_quiz_attempts_timefinish",
        "moodle_acme.ods_mdl_quiz_attempts_timemodified",
        "moodle_globex.ods_m_quiz_attempts_timefinish",
        "moodle_globex.ods_m_quiz_attempts_timemodified",
    }
    assert all(entry["plan"] == "Seq Scan" for entry in missing)


def test_a_replica_reloaded_with_cascade_is_healed_by_the_next_night(nights):
    # The reload really took the views with it ...
    assert nights["views_after_reload"] == (None, None)
    # ... and the next night delivered correct files with no manual step.
    for client, feed in itertools.product(SITES, FEEDS):
        assert _rows(nights["files_2"][client, feed]) == _expected_rows(
            nights, client, feed, NIGHT_2
        ), (client, feed)
    assert any(len(nights["files_2"][c, f]) > 1 for c, f in itertools.product(SITES, FEEDS))


def _as(monkeypatch, state: dict[str, Any], who: str) -> None:
    for name, value in state[who].libpq_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(state["clients_file"]))
    monkeypatch.setenv("ODS_HOME", str(state["tmp"] / "ods"))
    monkeypatch.setenv("DAGSTER_HOME", str(state["tmp"] / "dagster"))
    (state["tmp"] / "dagster").mkdir(exist_ok=True)


def test_ods_views_recreates_the_views_a_reload_dropped(nights, monkeypatch, capsys):
    with psycopg.connect(nights["admin"].conninfo(), autocommit=True) as admin:
        admin.execute("drop view moodle.mdl_user cascade")
        assert admin.execute("select to_regclass('staging.stg_moodle__users')").fetchone() == (
            None,
        )
    _as(monkeypatch, nights, "reader")

    assert cli.main(["views"]) == 0

    output = capsys.readouterr().out
    assert "recreated" in output and "union views" in output
    with psycopg.connect(nights["admin"].conninfo()) as conn:
        assert conn.execute(
            "select to_regclass('moodle.mdl_user') is not null,"
            " to_regclass('staging.stg_moodle__users') is not null"
        ).fetchone() == (True, True)


def test_ods_replica_indexes_prints_the_statements_and_applies_them_only_where_allowed(
    nights, monkeypatch, capsys
):
    _as(monkeypatch, nights, "reader")
    assert cli.main(["replica-indexes"]) == 0
    printed = capsys.readouterr().out
    assert (
        'create index concurrently if not exists "ods_m_quiz_attempts_timefinish" '
        'on "moodle_globex"."m_quiz_attempts" ("timefinish");'
    ) in printed

    assert cli.main(["replica-indexes", "--apply"]) == 1
    assert "may not create indexes on the replicas" in capsys.readouterr().err

    _as(monkeypatch, nights, "admin")
    assert cli.main(["replica-indexes", "--apply"]) == 0
    assert "created moodle_acme.ods_mdl_quiz_attempts_timefinish" in capsys.readouterr().out
    assert cli.main(["replica-indexes"]) == 0
    assert "every day-window index is in place" in capsys.readouterr().out


def _views_built(night: dict[str, Any]) -> list[str]:
    """The views dbt built in the night's marts run (the others were confirmed unchanged)."""
    return [
        m.asset_key.path[-1]
        for m in night["marts"].asset_materializations_for_node("moodle_views")
        if "rebuilt" not in m.metadata
    ]


def test_views_are_built_when_missing_and_left_alone_when_nothing_changed(nights):
    assert "stg_moodle__users" in _views_built(nights["night_1"])  # first night
    assert "stg_moodle__users" in _views_built(nights["night_2"])  # the reload dropped them
    assert _views_built(nights["night_3"]) == []  # nothing changed
    unchanged = nights["night_3"]["marts"].asset_materializations_for_node("moodle_views")
    assert unchanged and all(m.metadata["rebuilt"].value is False for m in unchanged)
    union = [
        m.metadata.get("unchanged")
        for m in nights["night_3"]["marts"].asset_materializations_for_node("moodle_union_views")
    ]
    assert union and all(flag is not None and flag.value for flag in union)
