"""`generate_site`: the fill functions, in their fixed order, in one transaction.

Only what the generator made can be replaced: every schema it creates carries `SCHEMA_MARKER` as
its comment (`COMMENT ON SCHEMA`, in the same transaction), and an existing schema without it (a
client's real replica, say) is never dropped or changed: `UnmarkedSchemaError`, nothing done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

from orchestration.moodle.schema import create_moodle_tables, moodle_tables
from synthetic_moodle.completion import _fill_completions
from synthetic_moodle.course_modules import _fill_course_modules
from synthetic_moodle.f2f import _fill_facetoface
from synthetic_moodle.people import (
    _fill_contexts,
    _fill_courses,
    _fill_enrolments,
    _fill_users,
)
from synthetic_moodle.quiz import _fill_quizzes
from synthetic_moodle.scorm import _fill_scorm
from synthetic_moodle.spec import SiteSpec, SiteSummary, _Site

# The comment on every schema the generator made. Its text is what tells those schemas apart from
# real replicas, in databases made by every release so far: never change it (it still names the
# generator's former package, orchestration.moodle.synthetic, on purpose).
SCHEMA_MARKER = (
    "Synthetic Moodle site made by the Outbound Data Sync synthetic Moodle generator "
    "(orchestration.moodle.synthetic); `ods generate` may drop and replace it."
)


class UnmarkedSchemaError(RuntimeError):
    """A schema the generator would replace exists and was not made by it; nothing was changed."""


def unmarked_schemas(conn: psycopg.Connection[Any], schemas: Iterable[str]) -> list[str]:
    """Those of `schemas` that exist without the generator's marker, in the order given."""
    wanted = list(dict.fromkeys(schemas))
    rows = conn.execute(
        "select nspname, obj_description(oid, 'pg_namespace') from pg_namespace"
        " where nspname = any(%s)",
        (wanted,),
    ).fetchall()
    comments = dict(rows)
    return [name for name in wanted if name in comments and comments[name] != SCHEMA_MARKER]


def check_replaceable(conn: psycopg.Connection[Any], schemas: Iterable[str]) -> None:
    """UnmarkedSchemaError naming every schema (and the database) the generator did not make.

    Schemas that do not exist, or that carry the marker, may be (re)generated."""
    refused = unmarked_schemas(conn, schemas)
    if not refused:
        return
    row = conn.execute("select current_database()").fetchone()
    database = row[0] if row else "?"
    names = ", ".join(repr(name) for name in refused)
    raise UnmarkedSchemaError(
        f"schema {names} in database {database!r} was not made by the synthetic Moodle "
        "generator (it has no generator comment), so it is not dropped or changed; nothing was "
        "changed. It may be a real Moodle replica: point PG* at another database (unset them "
        "for the embedded local one), or use other moodle_schema names in the clients file "
        "(ODS_CLIENTS_FILE)"
    )


def generate_site(conn: psycopg.Connection[Any], spec: SiteSpec) -> SiteSummary:
    """Replace `spec.schema` with a freshly generated site, in one transaction.

    A schema that does not exist is created; one the generator made (its comment is
    `SCHEMA_MARKER`) is dropped with `cascade` and made again: views that other schemas built on
    its tables go too and must be recreated by whoever made them. Any other existing schema is
    refused with `UnmarkedSchemaError`, and nothing is changed.
    """
    with conn.transaction():
        schema = sql.Identifier(spec.schema)
        # Lock out a concurrent generator between the check and the drop (transaction-scoped).
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"ods-generate:{spec.schema}",))
        check_replaceable(conn, [spec.schema])
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema))
        conn.execute(sql.SQL("create schema {}").format(schema))
        conn.execute(
            sql.SQL("comment on schema {} is {}").format(schema, sql.Literal(SCHEMA_MARKER))
        )
        create_moodle_tables(conn, spec.schema, spec.release, prefix=spec.prefix, indexes=False)
        site = _Site(conn, spec)
        for fill in _FILLS:
            fill(site)
        site.finish()
    counts = dict.fromkeys(moodle_tables(spec.release), 0) | site.row_counts
    return SiteSummary(spec.schema, spec.release, spec.prefix, counts)


_FILLS: tuple[Callable[[_Site], None], ...] = (
    _fill_courses,
    _fill_users,
    _fill_contexts,
    _fill_enrolments,
    _fill_completions,
    _fill_scorm,
    _fill_quizzes,
    _fill_facetoface,
    _fill_course_modules,
)
