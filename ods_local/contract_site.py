"""A small synthetic Moodle site for one client, with the marts built for one day, in a scratch
database of its own: where `ods contract` takes a client's files from when the warehouse has no
day of that client (a client being onboarded, before its replica exists).

Why a scratch database, not a schema beside the warehouse's: dbt writes fixed schemas (`moodle`,
`staging`, `intermediate`, `marts`), and the union views cover every configured client. Building a
made-up site there would put its rows into the real marts and its days into the ledger of days
built. In a database of its own, created for the command and dropped after it, nothing of a real
client, replica or mart is read or written. The database lives on the embedded local PostgreSQL
(the one the `PG*` variables name when they name it, else the one under ODS_HOME, started if it
is not running): never on a production warehouse.

The site is the synthetic generator's (synthetic_moodle), in the client's own schema
name, table prefix and time zone, with its scripted learners (names that exercise quoting and
UTF-8, a deleted and a suspended learner), so the files show the client's columns on believable
rows. The marts are built by the same `dbt build` arguments a night uses (orchestration/dbt_args.py)
for the feeds asked for only; a build takes tens of seconds, most of it dbt parsing the project.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from ods_local.postgres import LocalPostgres, start_postgres
from orchestration import warehouse
from orchestration.clients import ClientConfig
from orchestration.dbt_args import marts_build
from orchestration.feeds import Feed
from orchestration.moodle.union_views import MoodleSource, create_union_views
from orchestration.paths import DBT_PROJECT_DIR, ods_home, venv_bin
from synthetic_moodle import SiteSpec, generate_site

SCRATCH_PREFIX = "ods_contract_"
SCRATCH_MARKER = (
    "Scratch database of `ods contract` (a synthetic site and its marts for one client-day); "
    "dropped when the command ends."
)
# Small: the file is a sample of the contract, not a load test. 12 learners over 2 courses give
# every feed rows on the day (the scripted learners' stories end on it) in a second or two.
SITE_LEARNERS = 12
SITE_COURSES = 2
# A release after the 4.3 SCORM tables change: the marts read both, and the files are the same.
SITE_RELEASE = "4.5"


class SyntheticSiteError(RuntimeError):
    """The synthetic site or its marts could not be built; the message says where dbt's log is."""


def scratch_server() -> LocalPostgres:
    """The embedded local server: the one the `PG*` variables name, when they name it (the
    tests' and `ods up`'s), else the one under ODS_HOME/pgdata, started when it is not running."""
    pgdata = ods_home() / "pgdata"
    if warehouse.is_embedded() and not warehouse.is_local_default():
        return LocalPostgres(
            pgdata=pgdata,
            host=os.environ["PGHOST"],
            port=int(os.environ.get("PGPORT") or 5432),
            user=os.environ.get("PGUSER") or "postgres",
        )
    return start_postgres(pgdata)


def site_spec(client: ClientConfig, timezone: str, day: dt.date) -> SiteSpec:
    """The site: the client's schema, prefix and zone, activity on `day` and the day before."""
    return SiteSpec(
        schema=client.moodle_schema,
        release=SITE_RELEASE,
        prefix=client.table_prefix,
        seed=1,
        learners=SITE_LEARNERS,
        courses=SITE_COURSES,
        start=day,
        days=1,
        timezone=timezone,
    )


@contextmanager
def synthetic_marts(
    client_id: str,
    client: ClientConfig,
    feeds: list[Feed],
    *,
    timezone: str,
    day: dt.date,
    lookback_days: int,
    log_path: Path,
) -> Iterator[psycopg.Connection]:
    """A connection to a scratch database holding a synthetic site for the client and the marts
    of `feeds` built for `day`; the database is dropped when the block ends. dbt's output goes
    to `log_path`."""
    server = scratch_server()
    name = f"{SCRATCH_PREFIX}{client_id}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.conninfo(), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        admin.execute(
            sql.SQL("comment on database {} is {}").format(
                sql.Identifier(name), sql.Literal(SCRATCH_MARKER)
            )
        )
    scratch = replace(server, database=name)
    try:
        with psycopg.connect(scratch.conninfo(), autocommit=True) as conn:
            generate_site(conn, site_spec(client, timezone, day))
            create_union_views(
                conn,
                [MoodleSource(client_id, client.moodle_schema, client.table_prefix, timezone)],
            )
            _build_marts(scratch, client_id, feeds, day, lookback_days, log_path)
            yield conn
    finally:
        with psycopg.connect(server.conninfo(), autocommit=True) as admin:
            # Only the database made above (its name is this call's own): `with (force)` ends a
            # connection a failed step may have left behind.
            admin.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


def _build_marts(
    scratch: LocalPostgres,
    client_id: str,
    feeds: list[Feed],
    day: dt.date,
    lookback_days: int,
    log_path: Path,
) -> None:
    """`dbt build` of the feeds' marts (and the views they are built from) for the day, as a
    night builds them, in a target folder of its own (never the project's shared one)."""
    build = marts_build(day, day, lookback_days, client_ids=[client_id])
    env = {
        **os.environ,
        **scratch.libpq_env(),
        **build.env,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ods-contract-dbt-") as work:
        command = [
            str(venv_bin("dbt")),
            *build.args,
            "--select",
            *(f"+{feed.mart}" for feed in feeds),
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(Path(work) / "target"),
            "--log-path",
            str(Path(work) / "logs"),
        ]
        with log_path.open("a", encoding="utf-8") as log:
            done = subprocess.run(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
    if done.returncode != 0:
        raise SyntheticSiteError(
            f"dbt could not build the marts of the synthetic site for client {client_id!r}, day "
            f"{day} (exit status {done.returncode}); dbt's log: {log_path}"
        )
