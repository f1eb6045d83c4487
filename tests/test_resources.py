"""The warehouse resource as Dagster expects it: settings from `dg.EnvVar`s read when a run starts,
shown by name on the UI's resource page, a named error when production has no PGHOST, and no run
that changes the process's environment (issue 15, item 5)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.remote_representation.external_data import (
    RepositorySnap,
    ResourceConfigEnvVarSnap,
)
from dagster._serdes import serialize_value

from ods_local.postgres import LocalPostgres
from orchestration import warehouse
from orchestration.defs.code_location import build_definitions
from orchestration.defs.resources import WarehouseResource
from synthetic_moodle import MIN_LEARNERS, SiteSpec, generate_site
from tests.e2e_support import acme_entry, write_clients_file

DAY = dt.date(2026, 11, 27)
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
LIBPQ = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
SECRET = "not-a-real-password-4711"

# Dagster's own snapshot code (RepositorySnap.from_def, what the UI is sent) reads the deprecated
# ScheduleDefinition.environment_vars; nothing here sets it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Property `ScheduleDefinition.environment_vars` is deprecated:DeprecationWarning"
)


@pytest.fixture
def clients_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One client on a server that is never contacted (no file is delivered here)."""
    path = write_clients_file(
        tmp_path / "clients.yaml", {"acme": acme_entry()}, archive_dir=str(tmp_path / "archive")
    )
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(path))
    monkeypatch.delenv("ODS_DEPLOYMENT", raising=False)
    return path


def _point_at(monkeypatch: pytest.MonkeyPatch, server: LocalPostgres) -> None:
    for name, value in server.libpq_env().items():
        monkeypatch.setenv(name, value)


def _current_database(resource: WarehouseResource) -> dg.ExecuteInProcessResult:
    """A run of one asset that asks the resource's connection which database it is on."""

    @dg.asset
    def which_database(warehouse_db: WarehouseResource) -> dg.MaterializeResult:
        with warehouse_db.connect() as conn:
            row = conn.execute("select current_database()").fetchone()
        return dg.MaterializeResult(metadata={"database": row[0] if row else None})

    return dg.materialize(
        [which_database], resources={"warehouse_db": resource}, raise_on_error=False
    )


def _database_of(result: dg.ExecuteInProcessResult) -> object:
    (materialization,) = result.asset_materializations_for_node("which_database")
    return materialization.metadata["database"].value


def test_the_resource_page_shows_each_setting_as_its_pg_variable_never_the_password(
    pg: LocalPostgres, clients_file: Path, monkeypatch: pytest.MonkeyPatch
):
    _point_at(monkeypatch, pg)
    monkeypatch.setenv("PGPASSWORD", SECRET)
    defs = build_definitions()
    snap = RepositorySnap.from_def(defs.get_repository_def())
    (resource,) = [r for r in snap.resources or [] if r.name == "warehouse_db"]
    assert resource.configured_values == {
        "host": ResourceConfigEnvVarSnap(name="PGHOST"),
        "port": ResourceConfigEnvVarSnap(name="PGPORT"),
        "database": ResourceConfigEnvVarSnap(name="PGDATABASE"),
        "user": ResourceConfigEnvVarSnap(name="PGUSER"),
        "password": ResourceConfigEnvVarSnap(name="PGPASSWORD"),
    }
    assert {field.name for field in resource.config_field_snaps} == {
        "host",
        "port",
        "database",
        "user",
        "password",
    }
    # What the UI receives from the code location holds the variable's name, never the secret.
    assert SECRET not in serialize_value(snap)


def test_an_unset_variable_is_left_to_libpq_and_not_shown(
    pg: LocalPostgres, clients_file: Path, monkeypatch: pytest.MonkeyPatch
):
    _point_at(monkeypatch, pg)
    monkeypatch.delenv("PGPORT")  # libpq's default, 5432: the embedded server's own port
    monkeypatch.setenv("PGPASSWORD", "")  # as an env file's `PGPASSWORD=` leaves it
    snap = RepositorySnap.from_def(build_definitions().get_repository_def())
    (resource,) = [r for r in snap.resources or [] if r.name == "warehouse_db"]
    assert resource.configured_values == {
        "host": ResourceConfigEnvVarSnap(name="PGHOST"),
        "port": "null",
        "database": ResourceConfigEnvVarSnap(name="PGDATABASE"),
        "user": ResourceConfigEnvVarSnap(name="PGUSER"),
        "password": "null",
    }


def test_the_settings_are_read_when_the_run_starts_not_when_the_code_location_loads(
    pg: LocalPostgres, module_pg: LocalPostgres, clients_file: Path, monkeypatch
):
    assert pg.database != module_pg.database
    _point_at(monkeypatch, pg)
    resource = build_definitions().resources["warehouse_db"]
    monkeypatch.setenv("PGDATABASE", module_pg.database)  # changed after the load
    result = _current_database(resource)
    assert result.success
    assert _database_of(result) == module_pg.database


def test_production_without_pghost_fails_the_run_naming_the_variable(
    pg: LocalPostgres, clients_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    _point_at(monkeypatch, pg)
    monkeypatch.delenv("PGHOST")
    monkeypatch.setenv("ODS_DEPLOYMENT", "production")
    monkeypatch.setenv("ODS_HOME", str(tmp_path / "ods"))  # an embedded server would go here
    warehouse.export_local_default()  # production: nothing to export, nothing started
    assert "PGHOST" not in os.environ
    assert not (tmp_path / "ods" / "pgdata").exists()

    result = _current_database(build_definitions().resources["warehouse_db"])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "PGHOST is not set and ODS_DEPLOYMENT=production" in message
    assert "unset ODS_DEPLOYMENT to use the embedded local database" in message

    with pytest.raises(warehouse.WarehouseNotConfigured, match="PGHOST is not set"):
        warehouse.connect()
    assert not (tmp_path / "ods" / "pgdata").exists()


def test_an_unknown_deployment_is_refused_naming_what_is_allowed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PGHOST", "warehouse.invalid")  # refused even when PGHOST is set
    monkeypatch.setenv("ODS_DEPLOYMENT", "prod")
    with pytest.raises(warehouse.WarehouseNotConfigured) as refused:
        warehouse.export_local_default()
    assert "ODS_DEPLOYMENT='prod' is not a deployment: use local or production" in str(
        refused.value
    )


@pytest.fixture
def local_default(
    postgres_server: LocalPostgres, pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalPostgres]:
    """The local default as `make ui` has it: PG* unset, ODS_HOME's pgdata the (running) session
    server; then what the code location's module does first, with its database made this
    test's own (the embedded server's default database is shared by the session)."""
    for name in LIBPQ:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ODS_HOME", str(postgres_server.pgdata.parent))
    assert warehouse.is_local_default()
    with monkeypatch.context() as exported:
        # export_local_default writes os.environ; monkeypatch puts it back after the test.
        for name in LIBPQ:
            exported.setenv(name, "placeholder")
            exported.delenv(name)
        warehouse.export_local_default()
        assert os.environ["PGHOST"] == postgres_server.host
        monkeypatch.setenv("PGDATABASE", pg.database)
        yield pg


def test_a_local_default_run_with_dbt_leaves_the_environment_as_it_found_it(
    local_default: LocalPostgres, clients_file: Path
):
    with psycopg.connect(local_default.conninfo(), autocommit=True) as conn:
        generate_site(conn, SiteSpec("moodle_acme", start=DAY, days=1, learners=MIN_LEARNERS))
    defs = build_definitions()
    union_views, moodle_views = (
        asset
        for asset in defs.assets or []
        if isinstance(asset, dg.AssetsDefinition)
        and asset.node_def.name in ("moodle_union_views", "moodle_views")
    )
    before = dict(os.environ)
    result = dg.materialize(
        [union_views, moodle_views], resources=defs.resources, raise_on_error=False
    )
    assert result.success
    assert dict(os.environ) == before
    # dbt (a subprocess reading PG*) built its views where the resource made the union views.
    with psycopg.connect(local_default.conninfo()) as conn:
        views = conn.execute(
            "select table_schema, count(*) from information_schema.views "
            "where table_schema in ('moodle', 'staging') group by 1 order by 1"
        ).fetchall()
    assert [schema for schema, count in views if count > 0] == ["moodle", "staging"]
