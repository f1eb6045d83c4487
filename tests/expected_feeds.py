"""Expected feed rows, worked out in Python from a site's raw Moodle tables.

Each `expected_<feed>` function gives the rows of one feed for one local day D, for a day built
for the first time (a backfill of a day never delivered: the day's own events, DESIGN.md "Nothing
is lost"). They read the replicated Moodle tables directly and apply the rules of DESIGN.md
"Feeds" again, independently of the dbt SQL under test:

- learners: not deleted (`deleted = 1`), not the guest (username 'guest'); suspended included;
- courses: not the site course (format 'site');
- activities whose course module is being deleted (`deletioninprogress = 1`) are left out;
- SCORM: `sco` items only; SCORM 1.2 `cmi.core.lesson_status`, SCORM 2004 `cmi.success_status`
  when passed or failed, else `cmi.completion_status`; the raw score as stored; in D when the
  latest `timemodified` over all elements of the SCO-attempt falls in D. Sites on Moodle 4.3 and
  newer are read from `scorm_attempt` + `scorm_scoes_value` + `scorm_element` (by element name),
  older ones from `scorm_scoes_track`;
- quiz: `finished`, non-preview attempts, in D when `timefinish` falls in D; score =
  sumgrades × grade / quiz sumgrades (0 when the quiz has no marks), rounded half up to the
  quiz's decimal points, empty while it needs grading; status needs grading / passed / failed
  (against the unrounded score, >=) / finished;
- face to face: one row per signup and local day with status rows, carrying the day's last
  status (latest `timecreated`, then highest id); session date = local date of the earliest
  session date, empty when the dates are not known;
- completion: `tests.e2e_support.expected_completions`, as text.

Every value is the text the CSV file carries: integers in decimal, dates `YYYY-MM-DD`, timestamps
`YYYY-MM-DD HH:MM:SS` local, NULL as ''. Rows are ordered by the feed's sort key.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from tests.e2e_support import expected_completions

LEARNER_BLOCK = [
    ("username", "Username"),
    ("idnumber", "ID Number"),
    ("firstname", "First Name"),
    ("lastname", "Last Name"),
    ("email", "Email"),
]
# DESIGN.md "Feeds": each feed's default columns and their headers, in order, written out here
# (never read from the product's catalogue): what a client without `columns` receives.
DEFAULT_COLUMNS = {
    "scorm": [
        *LEARNER_BLOCK,
        ("course_name", "Course Name"),
        ("scorm_name", "SCORM Name"),
        ("sco_name", "Sco Name"),
        ("status", "Status"),
        ("attempt", "Attempt Number"),
        ("score", "Score"),
    ],
    "f2f": [
        *LEARNER_BLOCK,
        ("course_name", "Course Name"),
        ("class_title", "Class Title"),
        ("session_id", "Session ID"),
        ("session_date", "Session Date"),
        ("status", "Status"),
    ],
    "quiz": [
        *LEARNER_BLOCK,
        ("course_name", "Course Name"),
        ("quiz_name", "Quiz Name"),
        ("attempt", "Attempt Number"),
        ("score", "Score"),
        ("status", "Status"),
    ],
    "completion": [
        *LEARNER_BLOCK,
        ("course_name", "Course Name"),
        ("completion_date", "Completion Date"),
    ],
}
DEFAULT_HEADERS = {
    feed: [header for _, header in columns] for feed, columns in DEFAULT_COLUMNS.items()
}

SCORM_RECORDS = {"completed_or_passed": ("completed", "passed"), "all": None}

F2F_STATUS_NAMES = {
    10: "user cancelled",
    20: "session cancelled",
    30: "declined",
    40: "requested",
    50: "approved",
    60: "waitlisted",
    70: "booked",
    80: "no show",
    90: "partially attended",
    100: "fully attended",
}

SORT_KEYS = {
    "scorm": ("user_id", "course_id", "scorm_id", "sco_id", "attempt"),
    "f2f": ("user_id", "course_id", "session_id"),
    "quiz": ("user_id", "course_id", "quiz_id", "attempt"),
    "completion": ("user_id", "course_id"),
}

Row = dict[str, str]


class RawSite:
    """Reads one site's raw Moodle tables (schema + table prefix) and its local calendar."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, prefix: str, timezone: str):
        self.conn, self.schema, self.prefix, self.timezone = conn, schema, prefix, timezone
        self.zone = ZoneInfo(timezone)

    def rows(self, table: str, columns: str) -> list[tuple[Any, ...]]:
        query = sql.SQL("select " + columns + " from {}").format(
            sql.Identifier(self.schema, self.prefix + table)
        )
        return self.conn.execute(query).fetchall()

    def has_table(self, table: str) -> bool:
        found = self.conn.execute(
            "select to_regclass(%s)", [f'"{self.schema}"."{self.prefix}{table}"']
        ).fetchone()
        return found is not None and found[0] is not None

    # ---- time

    def local(self, epoch: int | None) -> dt.datetime | None:
        """Moodle stores 0 for "not set"; staging makes it NULL."""
        if not epoch:
            return None
        return dt.datetime.fromtimestamp(epoch, self.zone)

    def local_date(self, epoch: int | None) -> dt.date | None:
        moment = self.local(epoch)
        return moment.date() if moment else None

    def timestamp_text(self, epoch: int | None) -> str:
        moment = self.local(epoch)
        return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    # ---- who and where

    def learners(self) -> dict[int, Row]:
        """Eligible learners: not deleted, not the guest; suspended ones stay."""
        return {
            user_id: {
                "user_id": str(user_id),
                "username": username,
                "idnumber": idnumber,
                "email": email,
                "firstname": firstname,
                "lastname": lastname,
            }
            for user_id, username, idnumber, email, firstname, lastname, deleted in self.rows(
                "user", "id, username, idnumber, email, firstname, lastname, deleted"
            )
            if deleted != 1 and username != "guest"
        }

    def courses(self) -> dict[int, Row]:
        """Eligible courses: all but the site course."""
        return {
            course_id: {
                "course_id": str(course_id),
                "course_shortname": shortname,
                "course_name": fullname,
            }
            for course_id, shortname, fullname, course_format in self.rows(
                "course", "id, shortname, fullname, format"
            )
            if course_format != "site"
        }

    def instances_being_deleted(self, module: str) -> set[int]:
        modules = {
            module_id for module_id, name in self.rows("modules", "id, name") if name == module
        }
        return {
            instance
            for module_id, instance, deleting in self.rows(
                "course_modules", "module, instance, deletioninprogress"
            )
            if module_id in modules and deleting == 1
        }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _sorted(rows: Iterable[Row], feed: str) -> list[Row]:
    return sorted(rows, key=lambda row: tuple(int(row[key]) for key in SORT_KEYS[feed]))


# ---------------------------------------------------------------- SCORM


def _scorm_tracking(site: RawSite) -> list[tuple[int, int, int, int, str, str, int, int]]:
    """(user, scorm, sco, attempt, element, value, timemodified, row id), whichever design."""
    if site.has_table("scorm_attempt"):
        attempts = {
            attempt_id: (user_id, scorm_id, attempt)
            for attempt_id, user_id, scorm_id, attempt in site.rows(
                "scorm_attempt", "id, userid, scormid, attempt"
            )
        }
        elements = dict(site.rows("scorm_element", "id, element"))
        tracking = []
        for value_id, sco_id, attempt_id, element_id, value, modified in site.rows(
            "scorm_scoes_value", "id, scoid, attemptid, elementid, value, timemodified"
        ):
            if attempt_id not in attempts or element_id not in elements:
                continue
            user_id, scorm_id, attempt = attempts[attempt_id]
            tracking.append(
                (
                    user_id,
                    scorm_id,
                    sco_id,
                    attempt,
                    elements[element_id],
                    value,
                    modified,
                    value_id,
                )
            )
        return tracking
    return [
        (user_id, scorm_id, sco_id, attempt, element, value, modified, track_id)
        for track_id, user_id, scorm_id, sco_id, attempt, element, value, modified in site.rows(
            "scorm_scoes_track", "id, userid, scormid, scoid, attempt, element, value, timemodified"
        )
    ]


def _scorm_status(version: str, values: dict[str, str | None]) -> str | None:
    if version == "SCORM_1.3":
        success = values.get("cmi.success_status")
        if success in ("passed", "failed"):
            return success
        return values.get("cmi.completion_status")
    return values.get("cmi.core.lesson_status")


def _scorm_score(version: str, values: dict[str, str | None]) -> str | None:
    return values.get("cmi.score.raw" if version == "SCORM_1.3" else "cmi.core.score.raw")


def expected_scorm(
    conn: psycopg.Connection[Any],
    schema: str,
    prefix: str,
    timezone: str,
    day: dt.date,
    *,
    records: str = "completed_or_passed",
) -> list[Row]:
    """SCORM rows of local day `day`: one per learner × SCO × attempt whose latest tracking
    change (over all its elements) falls on `day`; `records` filters the statuses sent."""
    site = RawSite(conn, schema, prefix, timezone)
    learners, courses = site.learners(), site.courses()
    deleting = site.instances_being_deleted("scorm")
    scorms = {
        scorm_id: (course_id, name, version)
        for scorm_id, course_id, name, version in site.rows("scorm", "id, course, name, version")
    }
    scos = {
        sco_id: (scorm_id, title)
        for sco_id, scorm_id, title, scormtype in site.rows(
            "scorm_scoes", "id, scorm, title, scormtype"
        )
        if scormtype == "sco"
    }
    # Per SCO-attempt: each element's latest value (latest timemodified, then highest id), and
    # the latest timemodified over every element.
    latest: dict[tuple[int, int, int, int], dict[str, tuple[int, int, str]]] = defaultdict(dict)
    for user_id, scorm_id, sco_id, attempt, element, value, modified, row_id in _scorm_tracking(
        site
    ):
        elements = latest[(user_id, scorm_id, sco_id, attempt)]
        if element not in elements or (modified, row_id) > elements[element][:2]:
            elements[element] = (modified, row_id, value)

    allowed = SCORM_RECORDS[records]
    expected = []
    for (user_id, scorm_id, sco_id, attempt), elements in latest.items():
        if sco_id not in scos or scos[sco_id][0] != scorm_id or scorm_id not in scorms:
            continue
        if scorm_id in deleting:
            continue
        course_id, scorm_name, version = scorms[scorm_id]
        if user_id not in learners or course_id not in courses:
            continue
        last_modified = max(modified for modified, _, _ in elements.values())
        if site.local_date(last_modified) != day:
            continue
        values = {element: (value or None) for element, (_, _, value) in elements.items()}
        status = _scorm_status(version, values)
        if allowed is not None and status not in allowed:
            continue
        expected.append(
            {
                **learners[user_id],
                **courses[course_id],
                "scorm_id": str(scorm_id),
                "scorm_name": scorm_name,
                "sco_id": str(sco_id),
                "sco_name": scos[sco_id][1],
                "status": _text(status),
                "attempt": str(attempt),
                "score": _text(_scorm_score(version, values)),
                "modified_at": site.timestamp_text(last_modified),
            }
        )
    return _sorted(expected, "scorm")


# ---------------------------------------------------------------- quiz

ALMOST_ZERO = Decimal("0.000005")


def _rounded(value: Decimal, decimal_points: int) -> str:
    """PHP round() / PostgreSQL round(numeric, n): half away from zero (half up for grades)."""
    return format(value.quantize(Decimal(1).scaleb(-decimal_points), rounding=ROUND_HALF_UP), "f")


def _pass_marks(site: RawSite) -> dict[int, Decimal]:
    """gradepass of each quiz's main grade item (the oldest one, should there be two)."""
    marks: dict[int, tuple[int, Decimal]] = {}
    for item_id, itemtype, itemmodule, instance, itemnumber, gradepass in site.rows(
        "grade_items", "id, itemtype, itemmodule, iteminstance, itemnumber, gradepass"
    ):
        if (itemtype, itemmodule, itemnumber) != ("mod", "quiz", 0):
            continue
        if instance not in marks or item_id < marks[instance][0]:
            marks[instance] = (item_id, gradepass)
    return {quiz_id: gradepass for quiz_id, (_, gradepass) in marks.items()}


def expected_quiz(
    conn: psycopg.Connection[Any], schema: str, prefix: str, timezone: str, day: dt.date
) -> list[Row]:
    """Quiz rows of local day `day`: finished, non-preview attempts finished on `day`."""
    site = RawSite(conn, schema, prefix, timezone)
    learners, courses = site.learners(), site.courses()
    deleting = site.instances_being_deleted("quiz")
    quizzes = {
        quiz_id: (course_id, name, grade, sumgrades, decimalpoints)
        for quiz_id, course_id, name, grade, sumgrades, decimalpoints in site.rows(
            "quiz", "id, course, name, grade, sumgrades, decimalpoints"
        )
    }
    pass_marks = _pass_marks(site)
    expected = []
    for quiz_id, user_id, attempt, state, preview, marks, started, finished in site.rows(
        "quiz_attempts", "quiz, userid, attempt, state, preview, sumgrades, timestart, timefinish"
    ):
        if state != "finished" or preview == 1 or site.local_date(finished) != day:
            continue
        if quiz_id not in quizzes or quiz_id in deleting:
            continue
        course_id, quiz_name, grade, quiz_marks, decimal_points = quizzes[quiz_id]
        if user_id not in learners or course_id not in courses:
            continue
        pass_mark = pass_marks.get(quiz_id, Decimal(0))
        if marks is None:
            score, status = None, "needs grading"
        else:
            unrounded = Decimal(0) if quiz_marks < ALMOST_ZERO else marks * grade / quiz_marks
            score = _rounded(unrounded, decimal_points)
            if pass_mark > 0:
                status = "passed" if unrounded >= pass_mark else "failed"
            else:
                status = "finished"
        expected.append(
            {
                **learners[user_id],
                **courses[course_id],
                "quiz_id": str(quiz_id),
                "quiz_name": quiz_name,
                "attempt": str(attempt),
                "score": _text(score),
                "max_score": _rounded(grade, decimal_points),
                "status": status,
                "started_at": site.timestamp_text(started),
                "finished_at": site.timestamp_text(finished),
            }
        )
    return _sorted(expected, "quiz")


# ---------------------------------------------------------------- face to face


def expected_f2f(
    conn: psycopg.Connection[Any], schema: str, prefix: str, timezone: str, day: dt.date
) -> list[Row]:
    """Face-to-face rows of local day `day`: one per signup with a status row created that day,
    carrying the day's last status (latest timecreated, then highest id)."""
    site = RawSite(conn, schema, prefix, timezone)
    learners, courses = site.learners(), site.courses()
    deleting = site.instances_being_deleted("facetoface")
    activities = {
        f2f_id: (course_id, name)
        for f2f_id, course_id, name in site.rows("facetoface", "id, course, name")
    }
    sessions = {
        session_id: (f2f_id, known == 1)
        for session_id, f2f_id, known in site.rows(
            "facetoface_sessions", "id, facetoface, datetimeknown"
        )
    }
    starts: dict[int, int] = {}
    for session_id, start in site.rows("facetoface_sessions_dates", "sessionid, timestart"):
        if start and (session_id not in starts or start < starts[session_id]):
            starts[session_id] = start
    signups = {
        signup_id: (session_id, user_id)
        for signup_id, session_id, user_id in site.rows(
            "facetoface_signups", "id, sessionid, userid"
        )
    }
    last_of_day: dict[int, tuple[int, int, int]] = {}
    for status_id, signup_id, code, created in site.rows(
        "facetoface_signups_status", "id, signupid, statuscode, timecreated"
    ):
        if site.local_date(created) != day:
            continue
        if signup_id not in last_of_day or (created, status_id) > last_of_day[signup_id][:2]:
            last_of_day[signup_id] = (created, status_id, code)

    expected = []
    for signup_id, (created, _, code) in last_of_day.items():
        if signup_id not in signups:
            continue
        session_id, user_id = signups[signup_id]
        if session_id not in sessions:
            continue
        f2f_id, dates_known = sessions[session_id]
        if f2f_id not in activities or f2f_id in deleting:
            continue
        course_id, class_title = activities[f2f_id]
        if user_id not in learners or course_id not in courses:
            continue
        start = starts.get(session_id) if dates_known else None
        session_day = site.local_date(start)
        expected.append(
            {
                **learners[user_id],
                **courses[course_id],
                "class_title": class_title,
                "session_id": str(session_id),
                "session_date": session_day.isoformat() if session_day else "",
                "session_start": site.timestamp_text(start),
                "status": _text(F2F_STATUS_NAMES.get(code)),
                "status_changed_at": site.timestamp_text(created),
            }
        )
    return _sorted(expected, "f2f")


# ---------------------------------------------------------------- completion


def expected_completion(
    conn: psycopg.Connection[Any], schema: str, prefix: str, timezone: str, day: dt.date
) -> list[Row]:
    """Completion rows of local day `day` (tests.e2e_support.expected_completions), as text."""
    rows = expected_completions(conn, schema, prefix, timezone, day)
    return _sorted(
        ({key: _text(value) for key, value in row.items()} for row in rows), "completion"
    )


EXPECTED = {
    "scorm": expected_scorm,
    "f2f": expected_f2f,
    "quiz": expected_quiz,
    "completion": expected_completion,
}
