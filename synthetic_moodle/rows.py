"""COPY plumbing: `insert_rows`, and the table read from the catalog that fills in what
callers leave out the way Moodle's defaults would."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql


def insert_rows(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    rows: list[dict[str, Any]],
    *,
    prefix: str = "mdl_",
) -> None:
    """COPY rows (column -> value) into a Moodle table, as Moodle would have written them.

    A column a row leaves out gets the table's default (Moodle's, from install.xml), or `''` / `0`
    when it is NOT NULL without one, or NULL; `id` comes from the sequence unless given, and the
    sequence is moved past explicit ids so later rows do not collide.
    """
    if not rows:
        return
    target = _Table(conn, schema, prefix + table)
    given = {key for row in rows for key in row}
    unknown = given - set(target.columns)
    if unknown:
        raise ValueError(f"{prefix}{table} has no column(s) {sorted(unknown)}")
    names = [name for name in target.columns if name in given]
    fallbacks = {
        name: target.fallback_values(name, sum(name not in row for row in rows))
        for name in names
        if any(name not in row for row in rows)
    }
    tuples = [
        tuple(row[name] if name in row else next(fallbacks[name]) for name in names) for row in rows
    ]
    target.copy(names, tuples)
    if "id" in given:
        target.move_sequence_past_ids()


@dataclass
class _Column:
    name: str
    pg_type: str
    not_null: bool
    default_sql: str | None


class _Table:
    """One existing table, read from the catalog: what COPY needs to fill what callers leave out."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, name: str) -> None:
        self.conn = conn
        self.ref = sql.Identifier(schema, name)
        self.regclass = self.ref.as_string(conn)
        self.columns = {
            name: _Column(name, pg_type, not_null, default_sql)
            for name, pg_type, not_null, default_sql in conn.execute(
                """
                select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(d.adbin, d.adrelid)
                from pg_attribute as a
                left join pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
                where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
                order by a.attnum
                """,
                [self.regclass],
            )
        }

    def required_fill(self, given: Sequence[str]) -> dict[str, object]:
        """The NOT NULL columns without a default that `given` leaves out, with Moodle's blank."""
        return {
            column.name: _blank(column.pg_type)
            for column in self.columns.values()
            if column.not_null and column.default_sql is None and column.name not in given
        }

    def fallback_values(self, name: str, count: int) -> Iterator[object]:
        """Values for rows that leave out a column others give: evaluated per row, as a sequence
        default must be."""
        column = self.columns[name]
        if column.default_sql is None:
            blank = _blank(column.pg_type) if column.not_null else None
            return itertools.repeat(blank, count)
        values = self.conn.execute(
            sql.SQL("select {} from generate_series(1, %s)").format(sql.SQL(column.default_sql)),
            [count],
        ).fetchall()
        return (value for (value,) in values)

    def copy(self, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
        """COPY rows into `columns`, adding Moodle's blanks for required columns left out."""
        fill = self.required_fill(columns)
        if fill:
            columns = [*columns, *fill]
            constants = tuple(fill.values())
            rows = (tuple(row) + constants for row in rows)
        statement = sql.SQL("copy {} ({}) from stdin").format(
            self.ref, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with self.conn.cursor() as cursor:
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            return cursor.rowcount

    def move_sequence_past_ids(self) -> None:
        self.conn.execute(
            sql.SQL(
                "select setval(pg_get_serial_sequence(%s, 'id'), greatest(max(id), 1)) from {}"
            ).format(self.ref),
            [self.regclass],
        )


def _blank(pg_type: str) -> object:
    text_like = pg_type == "text" or pg_type.startswith(("character", "varchar"))
    return "" if text_like else 0
