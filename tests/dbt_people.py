"""The hand-made people and courses the dbt test modules put into each client's Moodle schema.

Every module (tests/test_dbt_*.py) inserts the same users and courses; what differs is each
feed's own activity. Expected rows are worked out from these lists, not from the SQL under test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from orchestration.moodle.union_views import MoodleSource


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


def local_epoch(local: str, timezone: str, fold: int = 0) -> int:
    """Epoch seconds of a local wall-clock time; fold=1 is the second of a repeated hour."""
    naive = dt.datetime.fromisoformat(local)
    return int(naive.replace(tzinfo=ZoneInfo(timezone), fold=fold).timestamp())
