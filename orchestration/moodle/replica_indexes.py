"""Indexes the day-window reads need on the replicated Moodle tables: an operator's step, not the
night's.

Moodle indexes none of the times the feeds filter on except `course_completions.timecompleted`
(moodle-schema.md §7), so on a large site a one-day build without them scans whole tracking
tables (5 million SCORM tracking rows: `benchmarks/day_window_plans.py`). But the replicas are
often owned by another tool, and the warehouse role may only read them; a physical streaming
replica is read-only altogether. So the nightly path never writes to a replica: it only checks
which of these indexes are missing and says in the run's metadata what that costs, and the
operator (or the replica's DBA) creates them with `ods replica-indexes`, which prints the
statements or, where allowed, applies them. `CREATE INDEX CONCURRENTLY` does not block the
replication writer while it builds (a plain CREATE INDEX would hold a lock that stops writes).

An index of any name whose first column is the filtered column serves the read, so only a
missing one of those counts as missing; ours are named `ods_<prefix><table>_<column>`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

# Moodle table (without prefix) -> the epoch columns the marts filter by day.
DAY_WINDOW_COLUMNS: dict[str, tuple[str, ...]] = {
    "scorm_scoes_track": ("timemodified",),
    "scorm_scoes_value": ("timemodified",),
    "quiz_attempts": ("timefinish", "timemodified"),
    "facetoface_signups_status": ("timecreated",),
}


def index_name(prefix: str, table: str, column: str) -> str:
    """`ods_<prefix><table>_<column>`, cut to PostgreSQL's 63 characters."""
    return f"ods_{prefix}{table}_{column}"[:63]


@dataclass(frozen=True)
class ReplicaIndex:
    """One day-window index on one client's replicated table."""

    schema: str
    prefix: str
    moodle_table: str  # Moodle's name, without the prefix: the union view is mdl_<moodle_table>
    column: str

    @property
    def table(self) -> str:
        return self.prefix + self.moodle_table

    @property
    def name(self) -> str:
        return index_name(self.prefix, self.moodle_table, self.column)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def create_statement(self) -> sql.Composed:
        return sql.SQL("create index concurrently if not exists {} on {}.{} ({})").format(
            sql.Identifier(self.name),
            sql.Identifier(self.schema),
            sql.Identifier(self.table),
            sql.Identifier(self.column),
        )


def wanted_indexes(conn: Connection[Any], schemas: Sequence[tuple[str, str]]) -> list[ReplicaIndex]:
    """The day-window indexes for every (schema, table prefix), for the tables the replica has."""
    wanted = []
    for schema, prefix in schemas:
        existing = {
            row[0]
            for row in conn.execute(
                "select tablename from pg_tables where schemaname = %s", [schema]
            )
        }
        for table, columns in DAY_WINDOW_COLUMNS.items():
            if prefix + table not in existing:
                continue
            wanted += [ReplicaIndex(schema, prefix, table, column) for column in columns]
    return wanted


def missing_indexes(
    conn: Connection[Any], schemas: Sequence[tuple[str, str]]
) -> list[ReplicaIndex]:
    """The wanted indexes that no valid index (of any name) leading with the column serves."""
    return [index for index in wanted_indexes(conn, schemas) if not _served(conn, index)]


def _served(conn: Connection[Any], index: ReplicaIndex) -> bool:
    row = conn.execute(
        """
        select exists (
            select from pg_index as i
            join pg_class as t on t.oid = i.indrelid
            join pg_namespace as n on n.oid = t.relnamespace
            join pg_attribute as a on a.attrelid = t.oid and a.attnum = i.indkey[0]
            where n.nspname = %s and t.relname = %s and a.attname = %s and i.indisvalid
        )
        """,
        [index.schema, index.table, index.column],
    ).fetchone()
    return bool(row and row[0])


def statements(indexes: Sequence[ReplicaIndex]) -> list[str]:
    """The SQL to give to a replica's DBA, one statement per line."""
    return [f"{index.create_statement().as_string(None)};" for index in indexes]


def apply_indexes(conn: Connection[Any], indexes: Sequence[ReplicaIndex]) -> list[str]:
    """Create the indexes concurrently (`conn` must be in autocommit: CONCURRENTLY cannot run in
    a transaction); an invalid one of ours left by an interrupted build is dropped first, since
    `if not exists` would keep it. Returns the qualified names made."""
    if not conn.autocommit:
        raise ValueError("apply_indexes needs an autocommit connection (CREATE INDEX CONCURRENTLY)")
    made = []
    for index in indexes:
        if _served(conn, index):
            continue
        conn.execute(
            sql.SQL("drop index concurrently if exists {}.{}").format(
                sql.Identifier(index.schema), sql.Identifier(index.name)
            )
        )
        conn.execute(index.create_statement())
        made.append(index.qualified_name)
    return made


def missing_index_costs(
    conn: Connection[Any], missing: Sequence[ReplicaIndex]
) -> list[dict[str, Any]]:
    """For each missing index, what a one-day read of its column costs without it: the planner's
    access path and the rows it expects to read (a sequential scan reads the whole table)."""
    now = int(time.time())
    day = int(dt.timedelta(days=1).total_seconds())
    costs = []
    for index in missing:
        query = sql.SQL("explain (format json) select 1 from {}.{} where {} >= {} and {} < {}")
        (plan_rows,) = conn.execute(
            query.format(
                sql.Identifier(index.schema),
                sql.Identifier(index.table),
                sql.Identifier(index.column),
                sql.Literal(now - day),
                sql.Identifier(index.column),
                sql.Literal(now),
            )
        ).fetchone() or ([],)
        plan = plan_rows[0]["Plan"]
        estimate = conn.execute(
            "select greatest(c.reltuples, 0)::bigint from pg_class as c"
            " join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s",
            [index.schema, index.table],
        ).fetchone()
        costs.append(
            {
                "index": index.qualified_name,
                "union_view": f"mdl_{index.moodle_table}",
                "table": f"{index.schema}.{index.table}",
                "column": index.column,
                "plan": plan["Node Type"],
                "rows_read_estimate": int(estimate[0]) if estimate else None,
                "create": statements([index])[0],
            }
        )
    return costs
