"""The local default's Dagster instance: the shipped `deploy/dagster.yaml`, on the embedded
PostgreSQL.

Production keeps Dagster's runs, event log and schedule state in a PostgreSQL database of its own
(`deploy/dagster.yaml`, connection from `DAGSTER_POSTGRES_*`). The local default (`ods up`,
`make demo`, `make ui`, `ods resend`) uses the same file, with one difference: its `storage`
names the embedded server's `dagster` database (beside the warehouse's, never inside it), so
local runs exercise the storage, run queue and limits that production runs with.

The settings are written into `<ODS_HOME>/dagster/dagster.yaml` whenever `ods` points
DAGSTER_HOME there: the embedded server's socket directory is only known once it runs. A file
whose first line is not ours is an operator's, and is left alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import yaml

from ods_local.postgres import LocalPostgres
from orchestration.paths import PROJECT_ROOT

SHIPPED_INSTANCE = PROJECT_ROOT / "deploy" / "dagster.yaml"
INSTANCE_DATABASE = "dagster"
WRITTEN_BY = (
    "# Written by `ods` for the local default from deploy/dagster.yaml; "
    "edit freely (delete this line to keep your edits)."
)
# Every release's local file starts so (earlier ones kept SQLite storage in the same folder).
OURS = "# Written by `ods`"


def ensure_instance_database(server: LocalPostgres) -> LocalPostgres:
    """The embedded server's `dagster` database, created when missing; Dagster creates its tables
    in it on first use."""
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        found = conn.execute(
            "select 1 from pg_database where datname = %s", (INSTANCE_DATABASE,)
        ).fetchone()
        if found is None:
            conn.execute(f'create database "{INSTANCE_DATABASE}"')
    return LocalPostgres(
        pgdata=server.pgdata,
        host=server.host,
        port=server.port,
        user=server.user,
        database=INSTANCE_DATABASE,
    )


def postgres_url(server: LocalPostgres) -> str:
    """SQLAlchemy's URL for a unix-socket server: no host part, the socket directory as `host`;
    the psycopg2 driver, as in deploy/dagster.yaml (`scheme`)."""
    return (
        f"postgresql+psycopg2://{quote(server.user)}@/{quote(server.database)}"
        f"?host={quote(server.host, safe='/')}&port={server.port}"
    )


# The shipped file's top-level `storage:` block, through the line before the next top-level key.
_STORAGE_BLOCK = re.compile(r"^storage:\n(?:(?:[ \t].*)?\n)*", re.MULTILINE)


def local_instance_text(server: LocalPostgres) -> str:
    """The shipped deploy/dagster.yaml, comments kept, with its `storage` block replaced by the
    embedded server's instance database."""
    shipped = SHIPPED_INSTANCE.read_text()
    storage = (
        "storage:\n"
        "  # The embedded PostgreSQL's own database for Dagster (production: DAGSTER_POSTGRES_*).\n"
        "  postgres:\n"
        f"    postgres_url: {postgres_url(server)}\n\n"
    )
    text, replaced = _STORAGE_BLOCK.subn(storage, shipped, count=1)
    if replaced != 1:
        raise ValueError(f"{SHIPPED_INSTANCE} has no top-level `storage:` block to replace")
    return text


def local_instance_settings(server: LocalPostgres) -> dict[str, Any]:
    """The local instance's settings, as Dagster reads them."""
    settings: dict[str, Any] = yaml.safe_load(local_instance_text(server))
    return settings


def write_local_instance(home: Path, server: LocalPostgres) -> Path:
    """`<home>/dagster.yaml` for the embedded server (its `dagster` database made first), unless
    the file is an operator's own; returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    current = path.read_text() if path.exists() else ""
    if current.strip() and not current.startswith(OURS):
        return path
    instance_db = ensure_instance_database(server)
    text = f"{WRITTEN_BY}\n{local_instance_text(instance_db)}"
    if text != current:
        path.write_text(text)
    return path
