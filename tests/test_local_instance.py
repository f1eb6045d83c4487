"""The Dagster instance on PostgreSQL: the shipped deploy/dagster.yaml, and the local default's copy
of it on the embedded server's own `dagster` database (ods_local/instance.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from ods_local.instance import (
    INSTANCE_DATABASE,
    SHIPPED_INSTANCE,
    WRITTEN_BY,
    write_local_instance,
)
from ods_local.postgres import LocalPostgres


@dg.asset
def probe() -> int:
    return 1


def _run_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, type]:
    """One real run recorded on the instance in `home`: (its run id, the run storage's type)."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    tag = str(uuid.uuid4())
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([probe], instance=instance, tags={"test/probe": tag})
        assert result.success
        return result.run_id, type(instance.run_storage)


def _run_ids_in(server: LocalPostgres, database: str) -> set[str]:
    with psycopg.connect(server.conninfo(), dbname=database) as conn:
        exists = conn.execute("select to_regclass('public.runs')").fetchone()
        if exists is None or exists[0] is None:
            return set()
        return {row[0] for row in conn.execute("select run_id from runs")}


def test_the_local_instance_is_the_shipped_one_with_its_runs_in_the_embedded_dagster_database(
    postgres_server: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_local_instance(tmp_path / "dagster", postgres_server)
    text = path.read_text()
    assert text.startswith(WRITTEN_BY + "\n")
    local = yaml.safe_load(text)
    shipped = yaml.safe_load(SHIPPED_INSTANCE.read_text())
    # Everything but the storage is production's: the queue, its limits, the launcher.
    assert {k: v for k, v in local.items() if k != "storage"} == {
        k: v for k, v in shipped.items() if k != "storage"
    }
    assert shipped["run_coordinator"]["class"] == "QueuedRunCoordinator"
    url = local["storage"]["postgres"]["postgres_url"]
    assert url.startswith(f"postgresql+psycopg2://postgres@/{INSTANCE_DATABASE}?host=")

    run_id, storage = _run_once(tmp_path / "dagster", monkeypatch)
    assert storage.__name__ == "PostgresRunStorage"
    assert run_id in _run_ids_in(postgres_server, INSTANCE_DATABASE)
    # Never in the warehouse's database.
    assert run_id not in _run_ids_in(postgres_server, postgres_server.database)


def test_writing_again_keeps_the_file_and_an_operators_own_file_is_left_alone(
    postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    home = tmp_path / "dagster"
    path = write_local_instance(home, postgres_server)
    first = path.read_text()
    assert write_local_instance(home, postgres_server).read_text() == first

    own = "# my instance\nrun_coordinator:\n  module: dagster.core.run_coordinator\n"
    own += "  class: DefaultRunCoordinator\n"
    path.write_text(own)
    write_local_instance(home, postgres_server)
    assert path.read_text() == own


def test_an_earlier_releases_sqlite_demo_file_is_replaced(
    postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    earlier = "# Written by `ods` for the local demo; edit freely (delete this line to keep your edits).\ntelemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(earlier)
    text = write_local_instance(home, postgres_server).read_text()
    assert "postgres_url" in yaml.safe_load(text)["storage"]["postgres"]


def test_the_shipped_instance_reads_its_connection_from_dagster_postgres_variables(
    postgres_server: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "production"
    home.mkdir()
    (home / "dagster.yaml").write_text(SHIPPED_INSTANCE.read_text())
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        conn.execute("create database prod_dagster")
    # The embedded server listens on a unix socket only: an empty host leaves libpq to PGHOST.
    monkeypatch.setenv("PGHOST", postgres_server.host)
    for name, value in {
        "HOST": "",
        "PORT": str(postgres_server.port),
        "USER": postgres_server.user,
        "PASSWORD": "",
        "DB": "prod_dagster",
    }.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", value)

    run_id, storage = _run_once(home, monkeypatch)
    assert storage.__name__ == "PostgresRunStorage"
    assert run_id in _run_ids_in(postgres_server, "prod_dagster")

    monkeypatch.delenv("DAGSTER_POSTGRES_DB")
    with pytest.raises(Exception, match="DAGSTER_POSTGRES_DB"):
        dg.DagsterInstance.get()
