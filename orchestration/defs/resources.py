"""Resources: the warehouse connection, the SFTP secrets and the local archive of files made."""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from orchestration import warehouse
from orchestration.clients import ClientsConfig
from orchestration.export.archive import default_archive_root

# Resource field -> the libpq variable it is read from (psycopg, dbt's profiles.yml and psql
# read the same ones, so a run's resource and its dbt subprocess see one database).
WAREHOUSE_VARIABLES = {
    "host": "PGHOST",
    "port": "PGPORT",
    "database": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
}


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse (PostgreSQL): the Moodle replicas' union views and the marts.

    The code location fills each field with a `dg.EnvVar` of its libpq variable (`PGHOST`, …), so
    the value is read when a run starts, and the UI's resource page shows the variable's name,
    never its value. A variable unset when the code location loaded is left to libpq's default
    (port 5432, database named as the user, no password). The dbt subprocesses read the same
    variables (dbt_project/profiles.yml), inherited from the process that runs them.

    A field left unset falls back to libpq's own reading of its variable at connect time, so
    `WarehouseResource()` is the `PG*` environment as psql would see it."""

    host: str | None = Field(
        default=None,
        description="PGHOST: the server's host name, or the folder of its unix socket.",
    )
    port: int | None = Field(default=None, description="PGPORT (libpq's default: 5432).")
    database: str | None = Field(
        default=None, description="PGDATABASE (libpq's default: the user's name)."
    )
    user: str | None = Field(
        default=None, description="PGUSER (libpq's default: the operating-system user)."
    )
    password: str | None = Field(
        default=None, description="PGPASSWORD: never shown, only the variable's name."
    )

    @classmethod
    def from_environment(cls) -> "WarehouseResource":
        """The resource as the code location builds it: a `dg.EnvVar` for each libpq variable
        that is set (an EnvVar of an unset variable fails every run that uses the resource, and
        all but PGHOST have a libpq default). Only whether a variable is set is read here."""

        def env(name: str) -> Any:
            if not os.environ.get(name):
                return None
            return dg.EnvVar.int(name) if name == "PGPORT" else dg.EnvVar(name)

        return cls(**{field: env(name) for field, name in WAREHOUSE_VARIABLES.items()})

    def connection_settings(self) -> dict[str, Any]:
        """psycopg's keyword arguments for the fields that are set; libpq reads its own variables
        for the others (so `WarehouseResource()` is the `PG*` environment, as psql would see
        it). A host is required: the embedded database is never started from a run."""
        if not self.host and not os.environ.get("PGHOST"):
            if warehouse.deployment() == "production":
                raise warehouse.WarehouseNotConfigured(warehouse.missing_host_message())
            raise warehouse.WarehouseNotConfigured(
                "PGHOST is not set: on the local default the process that starts things exports "
                "the embedded server's settings when it starts (the code location's module "
                "orchestration/definitions.py, `ods demo`, `ods views`); elsewhere set PGHOST "
                "(with PGPORT, PGUSER, PGPASSWORD, PGDATABASE) to the warehouse"
            )
        settings = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
        }
        return {key: value for key, value in settings.items() if value not in (None, "")}

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect("", autocommit=autocommit, **self.connection_settings())


class SftpSecrets(dg.ConfigurableResource):
    """The SFTP secrets the clients file names (`sftp.private_key_env`, `sftp.password_env`).

    The code location binds each named variable that is set when it loads as a `dg.EnvVar`
    (`from_clients`), so Dagster reads the value when a run starts and the UI's resource page
    lists the variables by name, never their values; names that were unset (or empty) then are
    listed apart, in `unset_when_loaded`, so an operator sees which clients cannot be delivered to
    before a run fails. An EnvVar is bound only for a set variable: Dagster fails every run that
    uses a resource holding the EnvVar of an unset variable, and one client's missing secret must
    not stop the other clients' deliveries.

    A variable unset when the code location loaded but set when a run starts is read from the
    run's environment (`lookup`): the failure's message says to set the variable and deliver
    again, and that works without reloading the code location. (A run worker that loads the code
    location itself, as Dagster's launchers do, binds it anyway; only the UI's list waits for a
    reload.) Still unset then, the delivery fails naming the client, the key and the variable
    (`ClientConfig.sftp.credentials`), and the client's other runs are not affected.

    `SftpSecrets()` binds nothing: every secret is read from the environment at delivery time, as
    the `ods` commands that reach a server outside a run do."""

    variables: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description=(
            "Each environment variable the clients file names that was set when the code "
            "location loaded, as an EnvVar of that name: read when a run starts, never shown."
        ),
    )
    unset_when_loaded: list[str] = Field(
        default_factory=list,
        description=(
            "Variables the clients file names that were unset or empty when the code location "
            "loaded: read from the run's environment when it delivers; still unset, the delivery "
            "fails naming the client, the key and the variable."
        ),
    )

    @classmethod
    def from_clients(cls, config: ClientsConfig) -> "SftpSecrets":
        """The resource as the code location builds it. Only whether each variable is set is read
        here, never its value."""
        names = sorted(
            {
                name
                for client in config.clients.values()
                for name in (client.sftp.private_key_env, client.sftp.password_env)
                if name
            }
        )
        return cls(
            variables={name: dg.EnvVar(name) for name in names if os.environ.get(name)},
            unset_when_loaded=[name for name in names if not os.environ.get(name)],
        )

    def lookup(self, name: str) -> str | None:
        """The secret held by the variable `name`: as Dagster read it when the run started, else
        the environment's now (see the class's docstring); None when unset or empty."""
        return self.variables.get(name) or os.environ.get(name) or None


class ArchiveResource(dg.ConfigurableResource):
    """The folder that keeps every file made, so any day can be re-sent byte for byte."""

    root: str

    @property
    def path(self) -> Path:
        return Path(self.root)


def archive_root(config: ClientsConfig) -> Path:
    """`archive_dir` of the clients file, else ODS_ARCHIVE_DIR, else the local default."""
    return config.archive_dir or default_archive_root()
