"""The warehouse connection: libpq's `PG*` environment variables, or the embedded local default.

Production points at the warehouse with `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and
`PGDATABASE`; psycopg and dbt both read them. When `PGHOST` is not set we are on the local default:
the embedded PostgreSQL under `.ods/pgdata` is started (a no-op when it runs) and its settings are
put into this process's environment, so the dbt subprocesses that Dagster starts see the same
database.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import psycopg

from orchestration.paths import ods_home


class DatabaseRefused(RuntimeError):
    """A command that may only write to the embedded local database was pointed elsewhere."""


def is_local_default() -> bool:
    return not os.environ.get("PGHOST")


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
    if embedded is None or not os.environ["PGHOST"].startswith("/"):
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


def use_local_default_if_unset() -> None:
    """Start the embedded server and export its `PG*` settings, unless `PGHOST` is set."""
    if not is_local_default():
        return
    from orchestration.local.postgres import start_postgres

    server = start_postgres(ods_home() / "pgdata")
    os.environ.update(server.libpq_env())


def connect(**kwargs: object) -> psycopg.Connection:
    """A connection to the warehouse named by the `PG*` environment variables."""
    use_local_default_if_unset()
    return psycopg.connect("", **kwargs)  # type: ignore[arg-type]
