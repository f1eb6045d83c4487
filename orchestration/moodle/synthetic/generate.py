"""`generate_site`: the fill functions, in their fixed order, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from orchestration.moodle.schema import create_moodle_tables, moodle_tables
from orchestration.moodle.synthetic.completion import _fill_completions
from orchestration.moodle.synthetic.course_modules import _fill_course_modules
from orchestration.moodle.synthetic.f2f import _fill_facetoface
from orchestration.moodle.synthetic.people import (
    _fill_contexts,
    _fill_courses,
    _fill_enrolments,
    _fill_users,
)
from orchestration.moodle.synthetic.quiz import _fill_quizzes
from orchestration.moodle.synthetic.scorm import _fill_scorm
from orchestration.moodle.synthetic.spec import SiteSpec, SiteSummary, _Site


def generate_site(conn: psycopg.Connection[Any], spec: SiteSpec) -> SiteSummary:
    """Replace `spec.schema` with a freshly generated site, in one transaction.

    The schema is dropped with `cascade`: views that other schemas built on its tables go too and
    must be recreated by whoever made them.
    """
    with conn.transaction():
        schema = sql.Identifier(spec.schema)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema))
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
