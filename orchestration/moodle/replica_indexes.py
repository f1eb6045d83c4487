"""Indexes the day-window reads need on the replicated Moodle tables.

Moodle indexes none of the times the feeds filter on except `course_completions.timecompleted`
(moodle-schema.md §7), so on a large site a one-day build would scan whole tracking tables. The
union-view step adds these indexes to each client's replica, idempotently. They suit a logical
replica or a copied database; a physical streaming replica is read-only and must get them on the
primary.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def create_replica_indexes(conn: Connection, schemas: Sequence[tuple[str, str]]) -> list[str]:
    """Create the missing day-window indexes in each (schema, table prefix); returns what was made."""
    made = []
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
            for column in columns:
                name = index_name(prefix, table, column)
                found = conn.execute(
                    "select 1 from pg_indexes where schemaname = %s and indexname = %s",
                    [schema, name],
                ).fetchone()
                if found:
                    continue
                conn.execute(
                    sql.SQL("create index if not exists {} on {}.{} ({})").format(
                        sql.Identifier(name),
                        sql.Identifier(schema),
                        sql.Identifier(prefix + table),
                        sql.Identifier(column),
                    )
                )
                made.append(f"{schema}.{name}")
    return made
