"""The four feeds: names, file prefixes, canonical columns and their default headers.

This module is the one source of truth for these facts. The dbt marts expose the canonical
columns under the same names (a test checks that every canonical column exists in its mart), and
the client config is validated against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FeedName = Literal["scorm", "f2f", "quiz", "completion"]


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    kind: Literal["text", "integer", "number", "date", "timestamp"] = "text"
    description: str = ""


@dataclass(frozen=True)
class Feed:
    name: FeedName
    prefix: str
    mart: str
    description: str
    columns: tuple[Column, ...]
    default_columns: tuple[str, ...]
    sort_key: tuple[str, ...]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def default_headers(self) -> dict[str, str]:
        return {name: self.column(name).header for name in self.default_columns}


LEARNER_COLUMNS = (
    Column("user_id", "User ID", "integer", "Moodle user id (mdl_user.id)."),
    Column("username", "Username", "text", "Moodle login name."),
    Column("idnumber", "ID Number", "text", "The learner's ID number, often an employee number."),
    Column("email", "Email", "text", "The learner's email address."),
    Column("firstname", "First Name", "text", "The learner's first name."),
    Column("lastname", "Last Name", "text", "The learner's last name."),
)
COURSE_COLUMNS = (
    Column("course_id", "Course ID", "integer", "Moodle course id (mdl_course.id)."),
    Column("course_shortname", "Course Short Name", "text", "The course short name."),
    Column("course_name", "Course Name", "text", "The course full name."),
)
LEARNER_BLOCK = ("username", "idnumber", "firstname", "lastname", "email")

COMPLETION = Feed(
    name="completion",
    prefix="Completion",
    mart="course_completions",
    description="One row per learner × course completion, on the local day it was completed.",
    columns=(
        *LEARNER_COLUMNS,
        *COURSE_COLUMNS,
        Column("completion_date", "Completion Date", "date", "Local date of completion."),
        Column("completed_at", "Completed At", "timestamp", "Local time of completion."),
    ),
    default_columns=(*LEARNER_BLOCK, "course_name", "completion_date"),
    sort_key=("user_id", "course_id"),
)

FEEDS: dict[str, Feed] = {feed.name: feed for feed in (COMPLETION,)}
