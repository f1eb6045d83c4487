"""The real Moodle tables, by Moodle version, as PostgreSQL DDL.

`moodle_tables.json` is a copy of `shared/reference/moodle-tables.json`: the column lists of
Moodle's own `install.xml` files (core, mod_scorm, mod_quiz) for 3.11 to main, and of the
catalyst `mod_facetoface` plugin. Types follow Moodle's PostgreSQL generator
(lib/ddl/postgres_sql_generator.php): int(≤4) SMALLINT, int(5-9) INTEGER, int(≥10) BIGINT,
char(n) VARCHAR(n), text TEXT, number(l,d) NUMERIC(l,d), float DOUBLE PRECISION (REAL when it has
fewer than 6 decimals). Moodle creates no foreign-key constraints, only indexes: a plain index per
foreign key, a unique index per unique key (lib/ddl/sql_generator.php getCreateTableSQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from psycopg import Connection, sql

_TABLES_FILE = Path(__file__).with_name("moodle_tables.json")

# Moodle release -> key of moodle_tables.json. 4.0 has no entry of its own; its tables equal 4.1's
# for everything the feeds read (moodle-schema.md §1).
MOODLE_RELEASES: dict[str, str] = {
    "3.11": "MOODLE_311_STABLE",
    "4.0": "MOODLE_401_STABLE",
    "4.1": "MOODLE_401_STABLE",
    "4.2": "MOODLE_402_STABLE",
    "4.3": "MOODLE_403_STABLE",
    "4.4": "MOODLE_404_STABLE",
    "4.5": "MOODLE_405_STABLE",
    "5.0": "MOODLE_500_STABLE",
    "5.1": "main",
}


@dataclass(frozen=True)
class MoodleColumn:
    name: str
    pg_type: str
    not_null: bool
    default: str | None
    sequence: bool


@dataclass(frozen=True)
class MoodleIndex:
    """One index Moodle creates on a table: from an XMLDB index, a unique key or a foreign key."""

    table: str
    columns: tuple[str, ...]
    unique: bool


@cache
def _tables_json() -> dict[str, Any]:
    return json.loads(_TABLES_FILE.read_text())


def _facetoface_branch(release: str) -> str:
    major, minor = (int(part) for part in release.split("."))
    if (major, minor) < (4, 0):
        return "catalyst/moodle-mod_facetoface@MOODLE_311_STABLE"
    if (major, minor) < (4, 3):
        return "catalyst/moodle-mod_facetoface@MOODLE_400_STABLE"
    return "catalyst/moodle-mod_facetoface@MOODLE_403_STABLE"


def release_key(release: str) -> str:
    try:
        return MOODLE_RELEASES[release]
    except KeyError:
        allowed = ", ".join(MOODLE_RELEASES)
        raise ValueError(f"unknown Moodle release {release!r}; allowed: {allowed}") from None


def _pg_type(column: dict[str, Any]) -> str:
    kind, length = column["type"], column.get("length") or 0
    if kind == "int":
        return "smallint" if length <= 4 else "integer" if length <= 9 else "bigint"
    if kind == "char":
        return f"varchar({length})"
    if kind == "text":
        return "text"
    if kind == "number":
        return f"numeric({length},{column.get('decimals') or 0})"
    if kind == "float":
        decimals = column.get("decimals")
        return "real" if decimals is not None and decimals < 6 else "double precision"
    raise ValueError(f"unknown XMLDB type {kind!r} in column {column['name']!r}")


def moodle_tables(release: str) -> dict[str, list[MoodleColumn]]:
    """Every table (without prefix) of a Moodle release plus mod_facetoface, with its columns."""
    data = _tables_json()
    tables = {**data[release_key(release)], **data[_facetoface_branch(release)]}
    return {
        name: [
            MoodleColumn(
                name=c["name"],
                pg_type=_pg_type(c),
                not_null=bool(c.get("notnull")),
                default=c.get("default"),
                sequence=bool(c.get("sequence")),
            )
            for c in columns
        ]
        for name, columns in tables.items()
    }


def _default_sql(column: MoodleColumn) -> sql.Composable:
    if column.default is None:
        return sql.SQL("")
    return sql.SQL(" default {}").format(sql.Literal(column.default))


def moodle_indexes(release: str) -> dict[str, list[MoodleIndex]]:
    """Every table's indexes, in Moodle's order: keys first (primary excluded), then indexes."""
    keys_and_indexes = _tables_json()["_meta"]["keys_and_indexes"]
    tables = {
        **keys_and_indexes[release_key(release)],
        **keys_and_indexes[_facetoface_branch(release)],
    }
    return {table: _indexes_of(table, definition) for table, definition in tables.items()}


def _indexes_of(table: str, definition: dict[str, Any]) -> list[MoodleIndex]:
    indexes = [
        MoodleIndex(table, _fields(key["fields"]), unique=key["type"] != "foreign")
        for key in definition["keys"]
        if key["type"] != "primary"
    ]
    indexes += [
        MoodleIndex(table, _fields(index["fields"]), unique=bool(index["unique"]))
        for index in definition["indexes"]
    ]
    return indexes


def _fields(fields: str) -> tuple[str, ...]:
    return tuple(field.strip() for field in fields.split(","))


def moodle_index_name(index: MoodleIndex, prefix: str, taken: set[str]) -> str:
    """Moodle's own name for an index (sql_generator::getNameForObject), unique among `taken`.

    Four letters of each word of the table, three of each column, the `ix`/`uix` suffix, cut to
    PostgreSQL's 63 characters; a counter replaces the tail when the name is already taken.
    """
    suffix = "uix" if index.unique else "ix"
    stem = prefix + "".join(part.strip()[:4] for part in index.table.split("_"))
    stem += "_" + "".join(column[:3] for column in index.columns)
    room = 63 - len(suffix) - 1
    name = f"{stem[:room]}_{suffix}"
    counter = 1
    while name in taken:
        name = f"{stem[: room - len(str(counter))]}{counter}_{suffix}"
        counter += 1
    taken.add(name)
    return name


def create_moodle_indexes(
    conn: Connection, schema: str, release: str, *, prefix: str = "mdl_"
) -> list[str]:
    """Create Moodle's indexes on every table of `release` that lacks them; returns their names.

    Names are Moodle's and depend only on the release and prefix, so a second call (or a call
    after a bulk load into tables made with `indexes=False`) finds them and changes nothing.
    """
    taken: set[str] = set()
    created = []
    for table, indexes in moodle_indexes(release).items():
        for index in indexes:
            name = moodle_index_name(index, prefix, taken)
            conn.execute(
                sql.SQL("create {}index if not exists {} on {}.{} ({})").format(
                    sql.SQL("unique ") if index.unique else sql.SQL(""),
                    sql.Identifier(name),
                    sql.Identifier(schema),
                    sql.Identifier(prefix + table),
                    sql.SQL(", ").join(sql.Identifier(column) for column in index.columns),
                )
            )
            created.append(name)
    return created


def create_moodle_tables(
    conn: Connection, schema: str, release: str, *, prefix: str = "mdl_", indexes: bool = True
) -> list[str]:
    """Create the schema and every table of `release` in it as Moodle installs them; returns names.

    `indexes=False` leaves out the secondary indexes, for a bulk load that builds them afterwards
    with `create_moodle_indexes` (building an index once is faster than maintaining it per row).
    """
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    created = []
    for table, columns in moodle_tables(release).items():
        column_sql = []
        for column in columns:
            if column.sequence:
                column_sql.append(
                    sql.SQL("{} bigserial primary key").format(sql.Identifier(column.name))
                )
                continue
            column_sql.append(
                sql.SQL("{} {}{}{}").format(
                    sql.Identifier(column.name),
                    sql.SQL(column.pg_type),
                    sql.SQL(" not null") if column.not_null else sql.SQL(""),
                    _default_sql(column),
                )
            )
        conn.execute(
            sql.SQL("create table if not exists {}.{} ({})").format(
                sql.Identifier(schema),
                sql.Identifier(prefix + table),
                sql.SQL(", ").join(column_sql),
            )
        )
        created.append(prefix + table)
    if indexes:
        create_moodle_indexes(conn, schema, release, prefix=prefix)
    return created
