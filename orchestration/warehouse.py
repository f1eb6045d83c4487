"""The warehouse connection: libpq's `PG*` environment variables, or the embedded local default.

Production points at the warehouse with `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and
`PGDATABASE`; psycopg and dbt both read them. When `PGHOST` is not set we are on the local default:
the embedded PostgreSQL under `.ods/pgdata` is started (a no-op when it runs) and its settings are
put into this process's environment, so the dbt subprocesses that Dagster starts see the same
database.
"""

from __future__ import annotations

import os

import psycopg

from orchestration.paths import ods_home


def is_local_default() -> bool:
    return not os.environ.get("PGHOST")


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
