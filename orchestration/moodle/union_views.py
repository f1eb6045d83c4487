"""One schema of union views over every client's replicated Moodle tables.

Each client's Moodle site is replicated into its own schema, with its own table prefix and Moodle
release. dbt should not know any of that, so this step (re)creates, in schema `moodle`, one view per
Moodle table under its canonical name (`mdl_user`, whatever the client's prefix):

    select 'acme'::text as client_id, <columns> from moodle_acme.mdl_user
    union all
    select 'globex'::text as client_id, <columns> from moodle_globex.m_user

Columns are the union of what the client schemas actually have and what every Moodle release in
`schema.py` defines, so a view exists, with the same typed columns, even when no client has the
table yet (`mdl_scorm_scoes_track` once every client is on 4.3+ is an empty view). A client whose
table lacks a column contributes `null::<type>`. Character columns are `text`, because Moodle
widens them between releases (`course.fullname` varchar(254) → varchar(1333) in 5.0). Columns whose
type already matches are passed through uncast, so a filter on the view (say on
`course_completions.timecompleted`) still reaches the client table's index.

Only the tables Moodle's `install.xml` files list in `moodle_tables.json` get a view: those are the
tables the feeds read. Add a table there to get its view.

The same step writes `moodle.client_settings`: one row per client with the time zone that defines
its days and which SCORM tracking tables its Moodle has, so the SQL needs nothing copied by hand.

Replacing views that dbt's staging views depend on: `create or replace view` keeps dependants, and
PostgreSQL accepts it when the column list is unchanged or only gains columns at the end, which is
the usual case (a client added or removed, a client upgraded within the releases we know). Any
other change (a column gone, a type changed) makes PostgreSQL refuse; then the view is dropped with
`cascade` and created again. That drops the dbt views built on it, which the next `dbt build`
recreates; the report lists such views under `recreated` so the run that follows is not a
surprise. Everything happens in one transaction under an advisory lock, so readers never see a
half-built schema and two runs cannot interleave.

The schema is the project's own: it is marked (`UNION_SCHEMA_MARKER`, a schema comment) when this
step creates it, and a schema of that name that the project did not make is never written to. An
unmarked schema holding only what this step makes (views `mdl_*`, the table `client_settings`),
as releases before the marker left it, is adopted and marked; one holding anything else is
refused, naming the schema, the database and what it holds, and nothing is changed.

The other direction: the views depend on the client tables, so PostgreSQL refuses to drop or
retype a replicated column or table that a view reads (a Moodle upgrade dropping
`scorm_scoes_track`, say) unless the replication job does it with `cascade`. After such a change,
run this step again (before dbt) to bring the views back.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import errors, sql

from orchestration.moodle.schema import MOODLE_RELEASES, moodle_tables

# pg_advisory_xact_lock key: an arbitrary constant shared by every run of this step.
_LOCK_KEY = 7_263_101
UNION_SCHEMA_MARKER = (
    "Outbound Data Sync: union views over the clients' Moodle replicas, written by the moodle "
    "union views step; it may replace anything in this schema."
)
# The schema comment ends with what the views were last made from (`_fingerprint`).
FINGERPRINT_LABEL = "\nmade from: "

ScormTracking = Literal["legacy", "normalised"]


@dataclass(frozen=True)
class MoodleSource:
    """Where one client's replicated Moodle tables are, and the time zone of its days."""

    client_id: str
    moodle_schema: str
    table_prefix: str = "mdl_"
    timezone: str = "Europe/London"


class MoodleSourceError(ValueError):
    """A configured client's Moodle schema is missing or does not look like a Moodle site."""


@dataclass(frozen=True)
class _ViewColumn:
    name: str
    pg_type: str


def create_union_views(
    conn: psycopg.Connection[Any], sources: Sequence[MoodleSource], *, schema: str = "moodle"
) -> dict[str, Any]:
    """(Re)create the union views and `client_settings` in `schema`; returns a report for metadata.

    The report: `views` (view name → client ids that have the table), `recreated` (views that had
    to be dropped with cascade, taking dependent dbt views with them) and `clients`
    (client id → its time zone and SCORM tracking).
    """
    _check_unique_client_ids(sources)
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        _check_sources(conn, sources)
        client_tables = _client_tables(conn, sources)
        _claim_schema(conn, schema)
        fingerprint = _fingerprint(sources, client_tables)
        clients = {
            s.client_id: {
                "timezone": s.timezone,
                "scorm_tracking": _scorm_tracking(client_tables[s.client_id]),
            }
            for s in sources
        }
        views_present = _views_present(conn, schema, client_tables)
        if views_present is not None and stored_fingerprint(conn, schema) == fingerprint:
            return {
                "schema": schema,
                "views": views_present,
                "recreated": [],
                "clients": clients,
                "unchanged": True,
                "fingerprint": fingerprint,
            }

        views: dict[str, list[str]] = {}
        recreated: list[str] = []
        for table, known_columns in _known_tables().items():
            view = f"mdl_{table}"
            present = [s for s in sources if table in client_tables[s.client_id]]
            columns = _view_columns(
                known_columns, [client_tables[s.client_id][table] for s in present]
            )
            query = _union_query(table, columns, present, client_tables)
            if not _replace_view(conn, schema, view, query):
                recreated.append(view)
            views[view] = [s.client_id for s in present]

        _write_client_settings(conn, schema, sources, clients)
        _store_fingerprint(conn, schema, fingerprint)
    return {
        "schema": schema,
        "views": views,
        "recreated": recreated,
        "clients": clients,
        "unchanged": False,
        "fingerprint": fingerprint,
    }


def _fingerprint(
    sources: Sequence[MoodleSource], client_tables: dict[str, dict[str, dict[str, str]]]
) -> str:
    """What the views and client_settings are made from: the clients (schema, prefix, zone),
    the columns their replicas have, and the tables and columns this release knows. Equal
    fingerprints make equal views, so an unchanged night writes nothing (issue 13: 200 client
    schemas re-created every night for no change)."""
    made_from = {
        "sources": [
            [s.client_id, s.moodle_schema, s.table_prefix, s.timezone]
            for s in sorted(sources, key=lambda s: s.client_id)
        ],
        "tables": client_tables,
        "known": {t: [[c.name, c.pg_type] for c in cs] for t, cs in _known_tables().items()},
    }
    return hashlib.sha256(json.dumps(made_from, sort_keys=True).encode()).hexdigest()


def _views_present(
    conn: psycopg.Connection[Any], schema: str, client_tables: dict[str, dict[str, dict[str, str]]]
) -> dict[str, list[str]] | None:
    """view → client ids that have its table, if every view and client_settings exist; else
    None (one was dropped, e.g. by a replica reload's cascade: everything is written again)."""
    wanted = [f"mdl_{table}" for table in _known_tables()]
    found = {
        row[0]
        for row in conn.execute(
            "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = any(%s)",
            (schema, [*wanted, "client_settings"]),
        )
    }
    if found != {*wanted, "client_settings"}:
        return None
    return {
        f"mdl_{table}": sorted(c for c, tables in client_tables.items() if table in tables)
        for table in _known_tables()
    }


def stored_fingerprint(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """What the union views in `schema` were last made from; None if unknown."""
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
        (schema,),
    ).fetchone()
    comment = (row[0] if row else None) or ""
    _, _, fingerprint = comment.partition(FINGERPRINT_LABEL)
    return fingerprint.strip() or None


def _store_fingerprint(conn: psycopg.Connection[Any], schema: str, fingerprint: str) -> None:
    conn.execute(
        sql.SQL("comment on schema {} is {}").format(
            sql.Identifier(schema),
            sql.Literal(f"{UNION_SCHEMA_MARKER}{FINGERPRINT_LABEL}{fingerprint}"),
        )
    )


def _claim_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create and mark `schema`, or make sure it is ours; MoodleSourceError if it is not."""
    found = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
        (schema,),
    ).fetchone()
    if found is not None and (found[0] or "").startswith(UNION_SCHEMA_MARKER):
        return
    if found is not None:
        foreign = [
            f"{kind} {name}"
            for name, kind in conn.execute(
                "select c.relname, case c.relkind when 'v' then 'view' when 'r' then 'table'"
                " else 'relation' end"
                " from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p', 'f')"
                " order by c.relname",
                (schema,),
            ).fetchall()
            if not _made_by_this_step(name, kind)
        ]
        if foreign:
            database = conn.execute("select current_database()").fetchone()
            raise MoodleSourceError(
                f"schema {schema!r} in database {database[0] if database else '?'!r} was not "
                f"made by Outbound Data Sync (it holds {', '.join(foreign[:5])}"
                f"{', …' if len(foreign) > 5 else ''}); the union views were not written and "
                "nothing was changed. Rename or move that schema: the project's union views "
                f"live in {schema!r}."
            )
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL("comment on schema {} is {}").format(
            sql.Identifier(schema), sql.Literal(UNION_SCHEMA_MARKER)
        )
    )


def _made_by_this_step(name: str, kind: str) -> bool:
    if kind == "view":
        return name.startswith("mdl_") and name.removeprefix("mdl_") in _known_tables()
    return kind == "table" and name == "client_settings"


def _check_unique_client_ids(sources: Sequence[MoodleSource]) -> None:
    seen: set[str] = set()
    for source in sources:
        if source.client_id in seen:
            raise MoodleSourceError(f"client {source.client_id!r} is configured twice")
        seen.add(source.client_id)


def _check_sources(conn: psycopg.Connection[Any], sources: Sequence[MoodleSource]) -> None:
    for source in sources:
        found = conn.execute(
            "select exists (select from pg_namespace where nspname = %s),"
            " to_regclass(format('%%I.%%I', %s::text, %s::text)) is not null,"
            " exists (select from pg_timezone_names where name = %s)",
            (
                source.moodle_schema,
                source.moodle_schema,
                source.table_prefix + "user",
                source.timezone,
            ),
        ).fetchone()
        assert found is not None
        schema_exists, has_user_table, timezone_known = found
        where = f"client {source.client_id!r}: Moodle schema {source.moodle_schema!r}"
        if not schema_exists:
            raise MoodleSourceError(f"{where} does not exist in this database")
        if not has_user_table:
            raise MoodleSourceError(
                f"{where} has no table {source.table_prefix}user;"
                f" is the table prefix {source.table_prefix!r} right?"
            )
        if not timezone_known:
            raise MoodleSourceError(
                f"client {source.client_id!r}: time zone {source.timezone!r} is not known to"
                " PostgreSQL (pg_timezone_names)"
            )


def _client_tables(
    conn: psycopg.Connection[Any], sources: Sequence[MoodleSource]
) -> dict[str, dict[str, dict[str, str]]]:
    """client id → Moodle table (no prefix) → column → its type, for tables we know."""
    known = _known_tables()
    rows = conn.execute(
        """
        select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
        from pg_class as c
        inner join pg_namespace as n on c.relnamespace = n.oid
        inner join pg_attribute as a on a.attrelid = c.oid
        where n.nspname = any(%s)
            and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and a.attnum > 0
            and not a.attisdropped
        order by n.nspname, c.relname, a.attnum
        """,
        ([s.moodle_schema for s in sources],),
    ).fetchall()
    by_schema: dict[str, list[tuple[str, str, str]]] = {}
    for nspname, relname, attname, pg_type in rows:
        by_schema.setdefault(nspname, []).append((relname, attname, pg_type))
    tables: dict[str, dict[str, dict[str, str]]] = {s.client_id: {} for s in sources}
    for source in sources:
        for relname, attname, pg_type in by_schema.get(source.moodle_schema, []):
            if not relname.startswith(source.table_prefix):
                continue
            table = relname[len(source.table_prefix) :]
            if table in known:
                tables[source.client_id].setdefault(table, {})[attname] = pg_type
    return tables


@functools.cache
def _known_tables() -> dict[str, list[_ViewColumn]]:
    """Every table of every release we know, each column typed to fit all releases.

    Columns are in order of first appearance, oldest release first, so a later release's new
    column lands at the end of the view (where `create or replace view` can add it).
    """
    types: dict[str, dict[str, set[str]]] = {}
    for release in MOODLE_RELEASES:
        for table, columns in moodle_tables(release).items():
            table_types = types.setdefault(table, {})
            for column in columns:
                table_types.setdefault(column.name, set()).add(column.pg_type)
    return {
        table: [_ViewColumn(name, common_type(found)) for name, found in columns.items()]
        for table, columns in types.items()
    }


def _view_columns(
    known: list[_ViewColumn], client_columns: list[dict[str, str]]
) -> list[_ViewColumn]:
    """The known columns, then any a client has beyond them; types widened over both."""
    types: dict[str, set[str]] = {c.name: {c.pg_type} for c in known}
    for columns in client_columns:
        for name, pg_type in columns.items():
            types.setdefault(name, set()).add(pg_type)
    return [_ViewColumn(name, common_type(found)) for name, found in types.items()]


_INTEGER_RANK = {"smallint": 0, "integer": 1, "bigint": 2}
_FLOAT_TYPES = {"real", "double precision"}


def _normalise_type(pg_type: str) -> str:
    if pg_type.startswith(("character", "varchar", "char", "bpchar")) or pg_type == "text":
        return "text"
    return pg_type


def common_type(pg_types: Iterable[str]) -> str:
    """One PostgreSQL type that holds values of every type given (character types → text)."""
    found = {_normalise_type(t) for t in pg_types}
    if len(found) == 1:
        return found.pop()
    if found <= _INTEGER_RANK.keys():
        return max(found, key=_INTEGER_RANK.__getitem__)
    numeric = {t for t in found if t.startswith("numeric")}
    if found <= _INTEGER_RANK.keys() | numeric:
        return "numeric"
    if found <= _INTEGER_RANK.keys() | numeric | _FLOAT_TYPES:
        return "double precision"
    return "text"


def _union_query(
    table: str,
    columns: list[_ViewColumn],
    present: Sequence[MoodleSource],
    client_tables: dict[str, dict[str, dict[str, str]]],
) -> sql.Composable:
    if not present:
        empty: list[sql.Composable] = [sql.SQL("null::text as client_id")]
        empty += [_column_expression(column, None) for column in columns]
        return sql.SQL("select {} where false").format(sql.SQL(", ").join(empty))

    branches = []
    for source in present:
        have = client_tables[source.client_id][table]
        select_list: list[sql.Composable] = [
            sql.SQL("{}::text as client_id").format(sql.Literal(source.client_id))
        ]
        select_list += [_column_expression(column, have.get(column.name)) for column in columns]
        branches.append(
            sql.SQL("select {} from {}.{}").format(
                sql.SQL(", ").join(select_list),
                sql.Identifier(source.moodle_schema),
                sql.Identifier(source.table_prefix + table),
            )
        )
    return sql.SQL(" union all ").join(branches)


def _column_expression(column: _ViewColumn, client_type: str | None) -> sql.Composable:
    name = sql.Identifier(column.name)
    if client_type is None:
        return sql.SQL("null::{} as {}").format(sql.SQL(column.pg_type), name)
    if client_type == column.pg_type:
        return name
    return sql.SQL("{}::{} as {}").format(name, sql.SQL(column.pg_type), name)


def _replace_view(
    conn: psycopg.Connection[Any], schema: str, view: str, query: sql.Composable
) -> bool:
    """Create or replace the view; returns False when it had to be dropped with cascade first."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(view))
    try:
        with conn.transaction():
            conn.execute(sql.SQL("create or replace view {} as {}").format(target, query))
        return True
    except errors.InvalidTableDefinition:
        # PostgreSQL refuses `create or replace` when a column is dropped, renamed or retyped
        # ("cannot drop columns from view", "cannot change data type of view column").
        conn.execute(sql.SQL("drop view {} cascade").format(target))
        conn.execute(sql.SQL("create view {} as {}").format(target, query))
        return False


def _scorm_tracking(tables: dict[str, dict[str, str]]) -> ScormTracking | None:
    # A site upgraded to 4.3 has its tracking migrated into scorm_attempt/scorm_scoes_value and
    # scorm_scoes_track dropped (moodle-schema.md §4.1); should a replica keep the old table, the
    # normalised tables are the live ones.
    if "scorm_attempt" in tables:
        return "normalised"
    if "scorm_scoes_track" in tables:
        return "legacy"
    return None


def _write_client_settings(
    conn: psycopg.Connection[Any],
    schema: str,
    sources: Sequence[MoodleSource],
    clients: dict[str, dict[str, Any]],
) -> None:
    # Rows are replaced, the table is not dropped: dbt's staging view depends on it.
    table = sql.SQL("{}.client_settings").format(sql.Identifier(schema))
    conn.execute(
        sql.SQL(
            "create table if not exists {} ("
            " client_id text primary key,"
            " timezone text not null,"
            " moodle_schema text not null,"
            " table_prefix text not null,"
            " scorm_tracking text check (scorm_tracking in ('legacy', 'normalised')))"
        ).format(table)
    )
    conn.execute(sql.SQL("delete from {}").format(table))
    with conn.cursor() as cursor:
        cursor.executemany(
            sql.SQL(
                "insert into {} (client_id, timezone, moodle_schema, table_prefix, scorm_tracking)"
                " values (%s, %s, %s, %s, %s)"
            ).format(table),
            [
                (
                    s.client_id,
                    s.timezone,
                    s.moodle_schema,
                    s.table_prefix,
                    clients[s.client_id]["scorm_tracking"],
                )
                for s in sources
            ],
        )
