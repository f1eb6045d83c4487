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
    # `records` option of the client's feed settings -> the statuses its files carry (None: all).
    records: dict[str, tuple[str, ...] | None] | None = None
    default_records: str | None = None

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

SCORM = Feed(
    name="scorm",
    prefix="SCORM",
    mart="scorm_sco_attempts",
    description=(
        "One row per learner × SCO × attempt, on the local day of the attempt's latest tracking "
        "change."
    ),
    columns=(
        *LEARNER_COLUMNS,
        *COURSE_COLUMNS,
        Column("scorm_id", "SCORM ID", "integer", "Moodle SCORM activity id (mdl_scorm.id)."),
        Column("scorm_name", "SCORM Name", "text", "The SCORM activity's name."),
        Column("sco_id", "Sco ID", "integer", "Moodle SCO id (mdl_scorm_scoes.id)."),
        Column("sco_name", "Sco Name", "text", "The SCO's title in the package."),
        Column("status", "Status", "text", "SCORM status as Moodle stores it, lowercase."),
        Column("attempt", "Attempt Number", "integer", "The learner's attempt number."),
        Column("score", "Score", "text", "Raw score as stored; empty when there is none."),
        Column("modified_at", "Last Modified", "timestamp", "Local time of the latest change."),
    ),
    default_columns=(
        *LEARNER_BLOCK,
        "course_name",
        "scorm_name",
        "sco_name",
        "status",
        "attempt",
        "score",
    ),
    sort_key=("user_id", "course_id", "scorm_id", "sco_id", "attempt"),
    records={"completed_or_passed": ("completed", "passed"), "all": None},
    default_records="completed_or_passed",
)

F2F = Feed(
    name="f2f",
    prefix="F2F",
    mart="f2f_signup_status_changes",
    description="One row per face-to-face signup on a local day its status changed.",
    columns=(
        *LEARNER_COLUMNS,
        *COURSE_COLUMNS,
        Column("class_title", "Class Title", "text", "The face-to-face activity's name."),
        Column("session_id", "Session ID", "integer", "Moodle session id."),
        Column("session_date", "Session Date", "date", "Local date of the session's first date."),
        Column("session_start", "Session Start", "timestamp", "Local start of the session."),
        Column("status", "Status", "text", "The signup's last status of the day."),
        Column("status_changed_at", "Status Changed At", "timestamp", "Local time of it."),
    ),
    default_columns=(
        *LEARNER_BLOCK,
        "course_name",
        "class_title",
        "session_id",
        "session_date",
        "status",
    ),
    sort_key=("user_id", "course_id", "session_id"),
)

QUIZ = Feed(
    name="quiz",
    prefix="Quiz",
    mart="quiz_attempts",
    description="One row per finished quiz attempt, again when its grade changes.",
    columns=(
        *LEARNER_COLUMNS,
        *COURSE_COLUMNS,
        Column("quiz_id", "Quiz ID", "integer", "Moodle quiz id (mdl_quiz.id)."),
        Column("quiz_name", "Quiz Name", "text", "The quiz's name."),
        Column("attempt", "Attempt Number", "integer", "The learner's attempt number."),
        Column("score", "Score", "number", "Grade on the quiz's scale; empty while ungraded."),
        Column("max_score", "Max Score", "number", "The quiz's maximum grade."),
        Column("status", "Status", "text", "passed, failed, finished or needs grading."),
        Column("started_at", "Started At", "timestamp", "Local time the attempt started."),
        Column("finished_at", "Finished At", "timestamp", "Local time it was submitted."),
    ),
    default_columns=(*LEARNER_BLOCK, "course_name", "quiz_name", "attempt", "score", "status"),
    sort_key=("user_id", "course_id", "quiz_id", "attempt"),
)

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

FEEDS: dict[str, Feed] = {feed.name: feed for feed in (SCORM, F2F, QUIZ, COMPLETION)}
