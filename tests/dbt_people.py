"""The hand-made people and courses the dbt test modules put into each client's Moodle schema.

Every module (tests/test_dbt_*.py) inserts the same users and courses; what differs is each
feed's own activity. Expected rows are worked out from these lists, not from the SQL under test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from orchestration.moodle.schema import create_moodle_tables
from orchestration.moodle.union_views import MoodleSource
from synthetic_moodle import insert_rows


@dataclass(frozen=True)
class Site:
    source: MoodleSource
    release: str


# id, username, deleted, suspended; id 1 is the guest user, as Moodle's installer makes it.
USERS = [
    (1, "guest", 0, 0),
    (2, "admin", 0, 0),
    (3, "alice", 0, 0),
    (4, "bob@example.org.1790000000", 1, 0),  # deleted: Moodle rewrites the username
    (5, "carol", 0, 1),  # suspended
    (6, "dan", 0, 0),
    (7, "erin", 0, 0),
]
# id, format, fullname; id 1 is the site front page.
COURSES = [(1, "site", "Front page"), (2, "topics", "Fire Safety"), (3, "weeks", "Manual Handling")]


def user_row(user_id: int, username: str, deleted: int, suspended: int) -> dict[str, Any]:
    """The mdl_user row of one of USERS, as Moodle leaves a deleted user (e-mail hashed)."""
    return {
        "id": user_id,
        "username": username,
        "deleted": deleted,
        "suspended": suspended,
        "idnumber": "" if deleted else f"E{user_id:04d}",
        "firstname": username.split("@")[0].title(),
        "lastname": "Smith",
        "email": f"{username}@example.org" if not deleted else "5f4dcc3b5aa765d61d8327deb882cf99",
    }


def identity_values(user_id: int, course_id: int) -> tuple[Any, ...]:
    """The nine learner and course columns of a mart row of USERS' `user_id` in COURSES'
    `course_id`, as the site holds them (course short names are C<id>)."""
    user = user_row(*next(u for u in USERS if u[0] == user_id))
    course_name = next(c[2] for c in COURSES if c[0] == course_id)
    return (
        user_id,
        user["username"],
        user["idnumber"],
        user["email"],
        user["firstname"],
        user["lastname"],
        course_id,
        f"C{course_id}",
        course_name,
    )


def insert_site_rows(
    conn: psycopg.Connection, site: Site, table: str, rows: list[dict[str, Any]]
) -> None:
    """`rows` into the site's Moodle table `table` (without its prefix)."""
    insert_rows(conn, site.source.moodle_schema, table, rows, prefix=site.source.table_prefix)


def create_site_with_people(conn: psycopg.Connection, site: Site) -> None:
    """The site's Moodle tables, holding USERS and COURSES."""
    create_moodle_tables(
        conn, site.source.moodle_schema, site.release, prefix=site.source.table_prefix
    )
    insert_site_rows(conn, site, "user", [user_row(*user) for user in USERS])
    insert_site_rows(
        conn,
        site,
        "course",
        [{"id": i, "format": f, "fullname": n, "shortname": f"C{i}"} for i, f, n in COURSES],
    )


def local_epoch(local: str, timezone: str, fold: int = 0) -> int:
    """Epoch seconds of a local wall-clock time; fold=1 is the second of a repeated hour."""
    naive = dt.datetime.fromisoformat(local)
    return int(naive.replace(tzinfo=ZoneInfo(timezone), fold=fold).timestamp())
