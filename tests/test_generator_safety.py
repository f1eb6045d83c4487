"""The synthetic generator never drops or changes a schema it did not make, and `ods generate`
writes to no database but the embedded one unless the operator names it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ods_local.demo import generate_demo_sites
from ods_local.postgres import LocalPostgres
from orchestration.cli import main
from orchestration.clients import ClientConfig, ClientsConfig, FeedSettings, SftpSettings
from synthetic_moodle import (
    MIN_LEARNERS,
    SiteSpec,
    UnmarkedSchemaError,
    generate_site,
)
from tests.e2e_support import acme_entry, write_clients_file

DAY = dt.date(2026, 11, 27)
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
MARKER_WORDS = "Outbound Data Sync synthetic Moodle generator"


def _spec(schema: str) -> SiteSpec:
    return SiteSpec(schema, start=DAY, days=1, learners=MIN_LEARNERS)


@pytest.fixture
def conn(pg: LocalPostgres) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        yield connection


def _make_replica(conn: psycopg.Connection[Any]) -> None:
    """A schema named like a client with a real row in it, and another schema's table."""
    conn.execute("create schema moodle_acme")
    conn.execute("create table moodle_acme.mdl_user (id bigint, username text)")
    conn.execute("insert into moodle_acme.mdl_user values (42, 'sentinel')")
    conn.execute("create schema reporting")
    conn.execute("create table reporting.kept (id int)")
    conn.execute("insert into reporting.kept values (1)")


def _replica_untouched(conn: psycopg.Connection[Any]) -> bool:
    tables = conn.execute(
        "select table_name from information_schema.tables where table_schema = 'moodle_acme'"
    ).fetchall()
    return (
        tables == [("mdl_user",)]
        and conn.execute("select * from moodle_acme.mdl_user").fetchall() == [(42, "sentinel")]
        and conn.execute("select * from reporting.kept").fetchall() == [(1,)]
        and conn.execute(
            "select obj_description('moodle_acme'::regnamespace, 'pg_namespace')"
        ).fetchone()
        == (None,)
    )


def _comment(conn: psycopg.Connection[Any], schema: str) -> str | None:
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
        (schema,),
    ).fetchone()
    return row[0] if row else None


def test_an_unmarked_schema_is_refused_and_nothing_changes(conn, pg):
    _make_replica(conn)
    with pytest.raises(UnmarkedSchemaError) as refused:
        generate_site(conn, _spec("moodle_acme"))
    message = str(refused.value)
    assert "'moodle_acme'" in message and f"database {pg.database!r}" in message
    assert "nothing was changed" in message
    assert _replica_untouched(conn)


def test_a_new_schema_is_marked_and_a_marked_one_is_regenerated(conn):
    generate_site(conn, _spec("moodle_new"))
    assert MARKER_WORDS in (_comment(conn, "moodle_new") or "")
    conn.execute("create table moodle_new.left_over (id int)")
    summary = generate_site(conn, _spec("moodle_new"))
    assert summary.row_counts["user"] == MIN_LEARNERS + 2  # guest and admin
    assert conn.execute("select to_regclass('moodle_new.left_over')").fetchone() == (None,)
    assert MARKER_WORDS in (_comment(conn, "moodle_new") or "")
    # Someone re-purposes the schema and changes its comment: no longer ours.
    conn.execute("comment on schema moodle_new is 'production replica'")
    with pytest.raises(UnmarkedSchemaError, match="'moodle_new'"):
        generate_site(conn, _spec("moodle_new"))
    assert conn.execute("select count(*) from moodle_new.mdl_user").fetchone() == (
        MIN_LEARNERS + 2,
    )


def _client(schema: str) -> ClientConfig:
    return ClientConfig(
        name=schema,
        moodle_schema=schema,
        feeds={"completion": FeedSettings()},
        sftp=SftpSettings(
            host="sftp.example.org",
            username=schema,
            private_key_env="UNUSED_KEY",
            host_key=HOST_KEY,
        ),
    )


def test_demo_sites_check_every_schema_before_dropping_any(conn):
    # aaa (generated before, so replaceable) sorts before acme (a real replica).
    generate_site(conn, _spec("moodle_aaa"))
    conn.execute("create table moodle_aaa.left_over (id int)")
    _make_replica(conn)
    config = ClientsConfig(
        clients={"aaa": _client("moodle_aaa"), "acme": _client("moodle_acme")},
    )
    with pytest.raises(UnmarkedSchemaError, match="'moodle_acme'"):
        generate_demo_sites(conn, config, DAY, DAY, MIN_LEARNERS)
    assert _replica_untouched(conn)
    assert conn.execute("select to_regclass('moodle_aaa.left_over')").fetchone() != (None,)


# --- `ods generate` --------------------------------------------------------------------------


@pytest.fixture
def ods_env(pg: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalPostgres:
    """PG* at the test server (not an embedded server of ODS_HOME) and a one-client file."""
    clients_file = write_clients_file(tmp_path / "clients.yaml", {"acme": acme_entry()})
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients_file))
    monkeypatch.setenv("ODS_HOME", str(tmp_path / "ods"))
    for name, value in pg.libpq_env().items():
        monkeypatch.setenv(name, value)
    return pg


GENERATE = ["generate", "--from", DAY.isoformat(), "--to", DAY.isoformat()]
GENERATE += ["--learners", str(MIN_LEARNERS)]


def test_ods_generate_refuses_a_database_that_is_not_the_embedded_one(ods_env, conn, capsys):
    _make_replica(conn)
    assert main(GENERATE) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: refusing to generate synthetic Moodle schemas in database")
    assert f"database {ods_env.database!r} on host {ods_env.host} port {ods_env.port}" in error
    assert "Unset the PG* variables to use the embedded database" in error
    assert f"pass --database {ods_env.database} to confirm" in error
    assert _replica_untouched(conn)
    # A name that is not the connected database's is no confirmation.
    assert main([*GENERATE, "--database", "warehouse"]) == 2
    assert "--database warehouse does not name the database" in capsys.readouterr().err
    assert _replica_untouched(conn)


def test_ods_generate_with_database_named_still_refuses_an_unmarked_schema(ods_env, conn, capsys):
    _make_replica(conn)
    assert main([*GENERATE, "--database", ods_env.database]) == 2
    error = capsys.readouterr().err
    assert "schema 'moodle_acme'" in error and f"database {ods_env.database!r}" in error
    assert "was not made by the synthetic Moodle generator" in error
    assert _replica_untouched(conn)


def test_ods_generate_with_database_named_generates_a_new_schema(ods_env, conn, capsys):
    assert main([*GENERATE, "--database", ods_env.database]) == 0
    assert "moodle_acme (Moodle" in capsys.readouterr().out
    assert MARKER_WORDS in (_comment(conn, "moodle_acme") or "")


def test_the_embedded_server_of_ods_home_needs_no_confirmation(ods_env, conn, monkeypatch, capsys):
    # ODS_HOME whose pgdata is the running test server: PGHOST is its socket directory.
    monkeypatch.setenv("ODS_HOME", str(ods_env.pgdata.parent))
    assert main(GENERATE) == 0
    assert MARKER_WORDS in (_comment(conn, "moodle_acme") or "")
