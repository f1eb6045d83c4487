"""The warehouse connection: libpq's `PG*` environment variables, or the embedded local default.

Production points at the warehouse with `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and
`PGDATABASE`; psycopg and dbt (`dbt_project/profiles.yml`) both read them, and the Dagster resource
(`orchestration/defs/resources.py`) reads them when a run starts. `ODS_DEPLOYMENT=production` (set
by the image) says the embedded database must never stand in: a missing `PGHOST` is then an error
that names it, not a database quietly started inside a container.

When `PGHOST` is not set otherwise, we are on the local default: the embedded PostgreSQL under
`<ODS_HOME>/pgdata`. The process that starts things (the code location's module,
`orchestration/definitions.py`, and the `ods` commands that run Dagster in-process) calls
`export_local_default()` once: it starts the embedded server (a no-op when it runs) and puts its
settings into that process's environment, so the runs, the resource and the dbt subprocesses it
starts all see the same database. Nothing writes the environment while a run runs (issue 15).
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import psycopg

from orchestration.paths import ods_home

DEPLOYMENT_VARIABLE = "ODS_DEPLOYMENT"
DEPLOYMENTS = ("local", "production")
LIBPQ_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")


class DatabaseRefused(RuntimeError):
    """A command that may only write to the embedded local database was pointed elsewhere."""


class WarehouseNotConfigured(RuntimeError):
    """The `PG*` variables (or ODS_DEPLOYMENT) do not say which warehouse to use; the message
    names the variable and what to set."""


def deployment() -> str:
    """`local` (the default: the embedded database when PGHOST is unset) or `production`."""
    value = (os.environ.get(DEPLOYMENT_VARIABLE) or "local").strip().lower()
    if value not in DEPLOYMENTS:
        raise WarehouseNotConfigured(
            f"{DEPLOYMENT_VARIABLE}={os.environ[DEPLOYMENT_VARIABLE]!r} is not a deployment: use "
            f"{' or '.join(DEPLOYMENTS)} (production: the PG* variables must name the warehouse; "
            "local: the embedded PostgreSQL when PGHOST is unset)"
        )
    return value


def missing_host_message() -> str:
    """Why a production process cannot connect when PGHOST is unset, and what to do."""
    return (
        f"PGHOST is not set and {DEPLOYMENT_VARIABLE}=production: set PGHOST (with PGPORT, "
        "PGUSER, PGPASSWORD, PGDATABASE) to the warehouse in this process's environment (the "
        "code location's and the runs'; README, Deploying), or unset "
        f"{DEPLOYMENT_VARIABLE} to use the embedded local database"
    )


def is_local_default() -> bool:
    """Whether the embedded database stands in for the warehouse: PGHOST unset, not production."""
    return deployment() == "local" and not os.environ.get("PGHOST")


def _embedded_socket() -> tuple[Path, int] | None:
    """(socket directory, port) of the embedded server under ODS_HOME/pgdata, if it runs."""
    try:
        lines = (ods_home() / "pgdata" / "postmaster.pid").read_text().splitlines()
        return Path(lines[4]).resolve(), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def is_embedded() -> bool:
    """Whether the `PG*` variables name the embedded local database: `PGHOST` unset (the embedded
    server is started on demand), or `PGHOST`/`PGPORT` equal to its socket directory and port."""
    if is_local_default():
        return True
    embedded = _embedded_socket()
    if embedded is None or not os.environ.get("PGHOST", "").startswith("/"):
        return False
    port = int(os.environ.get("PGPORT") or 5432)
    return (Path(os.environ["PGHOST"]).resolve(), port) == embedded


def check_database_confirmed(confirmed: str | None, doing: str) -> None:
    """Refuse (DatabaseRefused) to `doing` anywhere but the embedded local database, unless
    `confirmed` equals the name of the database the `PG*` variables connect to.

    Nothing is written before this passes; naming the database is the operator's confirmation."""
    if confirmed is None and is_embedded():
        return
    host = os.environ.get("PGHOST") or "(embedded)"
    port = os.environ.get("PGPORT") or "5432"
    database = os.environ.get("PGDATABASE") or os.environ.get("PGUSER") or getpass.getuser()
    target = f"database {database!r} on host {host} port {port}"
    if confirmed is None:
        raise DatabaseRefused(
            f"refusing to {doing} in {target}: the PG* variables point at a database other "
            "than the embedded local one. Unset the PG* variables to use the embedded database, "
            f"or pass --database {database} to confirm"
        )
    with connect() as conn:
        row = conn.execute("select current_database()").fetchone()
    actual = row[0] if row else None
    if actual != confirmed:
        raise DatabaseRefused(
            f"refusing to {doing}: --database {confirmed} does not name the database the PG* "
            f"variables connect to, {actual!r} on host {host} port {port}. Unset the PG* "
            f"variables to use the embedded database, or pass --database {actual} to confirm"
        )


def local_default_settings() -> dict[str, str]:
    """The embedded server's `PG*` settings when the local default is chosen, starting it if it
    does not run; `{}` when the `PG*` variables name the warehouse."""
    if not is_local_default():
        return {}
    from ods_local.postgres import start_postgres

    return start_postgres(ods_home() / "pgdata").libpq_env()


def export_local_default() -> None:
    """On the local default, start the embedded server and put its `PG*` settings into this
    process's environment, once, for everything this process starts (the runs, the dbt
    subprocesses, `dagster dev`'s run workers), which inherit it. Only the process that starts
    things calls this (the code location's module, the `ods` commands that run Dagster), never
    an asset or a resource: a run must leave the environment as it found it."""
    os.environ.update(local_default_settings())


def connect(**kwargs: object) -> psycopg.Connection:
    """A connection to the warehouse named by the `PG*` environment variables, or to the embedded
    server (started if need be) on the local default; the environment is left as it is."""
    local = local_default_settings()
    if local:
        settings = {
            "host": local["PGHOST"],
            "port": local["PGPORT"],
            "user": local["PGUSER"],
            "dbname": local["PGDATABASE"],
        }
        kwargs = {**settings, **kwargs}
    elif not os.environ.get("PGHOST") and "host" not in kwargs:
        raise WarehouseNotConfigured(missing_host_message())
    return psycopg.connect("", **kwargs)  # type: ignore[arg-type]
