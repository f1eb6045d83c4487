"""A synthetic Moodle site: the real tables of a chosen release, filled with seeded, realistic data.

The local default run, the tests and the benchmarks need Moodle sites that behave like real ones
where the feeds are fragile: the guest user (id 1) and the site course (id 1) that every feed must
skip, a deleted user whose identity Moodle has overwritten, a suspended user who still counts,
names that exercise CSV quoting and UTF-8, and completions just either side of local midnight.

Everything is derived from `SiteSpec` alone (no wall clock), so a seed always gives the same rows.
Each area of the site (people, courses, enrolments, completions, ...) is one fill function with its
own random stream, so adding an area later does not change the rows of the others. Rows go in with
COPY and the indexes are built afterwards, which keeps a million completions well under a minute.

Scenarios
---------
SCORM, quiz and face-to-face activity falls on the activity days too. The first course (id 2)
holds scripted stories for the named learners, user ids 3-9 in this order: zoe, jose, lukasz,
obrien, quoted, deleted (deleted=1), suspended (suspended=1). Every other enrolled learner gets
seeded random activity. Below, "early" and "late" are the first and last activity day (with a
one-day window: the day before it, and the day itself), "mid" is the middle one. Times are
local wall-clock times of the site's time zone.

SCORM. Packages: scorm 1 (SCORM_1.2, "<course> e-learning": 3 SCOs, the last one scored, plus
1 asset) and scorm 2 (SCORM_1.3, "<course> interactive scenarios": 4 SCOs plus 2 assets), both
in the first course. Every other course has one package. The last package is on the site course.
Each package has an organization row in `scorm_scoes` (scormtype '', launch ''), then its `sco`
and `asset` items in sortorder.
- zoe, scorm 1: attempt 1 early, knowledge check 'failed' with score 55; attempt 2 late, 'passed' 90.
- lukasz, scorm 1: attempt 1 early, SCO 2 'incomplete'. It is revisited late and becomes
  'completed': x.start.time stays on the early day, the other rows of that SCO attempt move to
  the late day.
- quoted, scorm 1: 'browsed' and 'not attempted', no score rows.
- suspended, scorm 1: 'passed' 100, and opens the Glossary asset.
- deleted, scorm 2: completed + passed, cmi.score.raw 85, cmi.score.scaled 0.85.
- obrien, scorm 2: attempt 1 incomplete/unknown; attempt 2 late ends completed + failed, score 40.5.
- jose, scorm 2: completion 'not attempted' and 'unknown', success 'unknown', no score.
- An opened asset leaves x.start.time and a 'completed' status row on the asset's scoe, as
  loadSCO.php writes it (suspended, obrien, jose, and about a quarter of random attempts).
- The guest (user 1) has one SCO attempt in scorm 1. Learner 3 has one in the site-course package.
- Random: about 60% of a course's learners per package, 1-3 attempts on different days, and
  every status. A few final attempts are revisited on a later day.
- Release <= 4.2 stores the rows in `scorm_scoes_track`. >= 4.3 stores the same rows in
  `scorm_attempt` + `scorm_scoes_value` + `scorm_element`, as the 4.3 upgrade would migrate them.
  Element ids are per site: a seeded handful of elements used before the window take the first
  ids, then the rest follow in order of first use.

Quiz. First course: quiz 1 "assessment" (sumgrades 10 -> grade 100, 1 decimal point, pass mark 80,
1 h time limit then a 1-day grace period, has an essay); quiz 2 "knowledge check" (20 -> 10,
2 dp, no pass mark); quiz 3 "reflection (not marked)" (sumgrades 0); quiz 4 "final test" (8 -> 100,
0 dp, pass 50); quiz 5 "refresher" (opens 3 days after the window, precreateattempts on 5.0+).
Every other course has one quiz. The last quiz is on the site course. Pass marks are in
`grade_items` (itemmodule 'quiz', itemnumber 0).
- zoe: quiz 1 6.125 early (61.25 -> "61.3", failed) and 8.0 late (80.0, passed). Quiz 2 13.45
  (6.725 -> "6.73"). Quiz 4 5.32 (66.5 -> "67"). Quiz 3 0 (no marks).
- quoted: quiz 1 7.996 (79.96: shows "80.0", but failed against the unrounded grade). Attempt 2 is
  'overdue' (started late).
- obrien: quiz 1 attempt 1 finished early with 7.5, regraded to 8.5 on the late day at 15:20
  (timemodified late, timefinish early). Attempt 2 is 'abandoned'. The same regrade adds one mark
  to about a quarter of the other finished quiz-1 attempts from before it.
- jose: quiz 1 finished with sumgrades NULL (needs grading). Quiz 2 finished early with NULL and
  graded by hand on the late day (15.5).
- lukasz: quiz 1 9.0; quiz 4 'inprogress'.
- deleted: quiz 1 8.5. Quiz 2 submitted late at 22:51: on 5.0+ it is 'submitted' with NULL
  sumgrades; before 5.0 it is 'finished' with 12.0.
- suspended: quiz 1 8.25. Quiz 2 submitted late at 23:58:30. On 5.0+ the grading task finishes it
  5 minutes later, so timemodified is on the next day. Before 5.0, timemodified = timefinish.
- admin (user 2): one preview (preview=1, finished) of each of quizzes 1-4. The guest has a
  finished attempt on quiz 2.
- 5.0+ only: quiz 5 has one 'notstarted' attempt per enrolled learner (not the deleted one).
- Random: about half of a course's learners per quiz, 1-3 attempts. Mostly finished; the rest
  inprogress (untimed quizzes), overdue or abandoned (timed ones), or needing grading (quiz with
  an essay). On 5.0+, about 1% are still 'submitted'.
- `quiz_grades` holds each learner's best rescaled grade.

Face-to-face. One activity per course, name = class title. Every third activity (the first
included) needs approval. Sessions per activity: 'single' (mid, 09:30-16:30); 'two-day' (early
and the day after, 09:00-12:00 each, two `facetoface_sessions_dates` rows); 'future' (a week
after the window); 'no-dates' (datetimeknown 0, no date rows). There is one extra session per 40
learners of the course. Status rows use codes 10-100, never 20. Every row of a signup is
superceded=1 except the newest. Approving writes 50 then 70 in the same second (70 has the
higher id).
- zoe: 'future' session. Requested, then approved and booked, all on the first activity day.
- jose: 'single': requested, then declined (30).
- lukasz: 'future': requested, approved, booked, then cancelled (10) on the late day.
- obrien: 'no-dates': waitlisted (60).
- quoted: 'two-day': requested, approved, booked, cancelled, then requested, approved and booked
  again (the same signup row), then partially attended (90, grade 50).
- deleted: 'single': booked, then no show (80, grade 0). suspended: 'single': booked, then fully
  attended (100, grade 100). Attendance is taken by the admin after the last session date.
- Random: about 30% of a course's learners sign up (some in the week before the window).

Also: `modules` (core modules in install order, then facetoface). A `course_modules` row and a
module context (level 70) for every activity. `grade_items`: course totals plus the quiz, SCORM
and face-to-face items.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import functools
import hashlib
import itertools
import math
import operator
import random
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from orchestration.moodle.schema import (
    create_moodle_indexes,
    create_moodle_tables,
    moodle_tables,
    release_key,
)

GUEST_USER_ID = 1
ADMIN_USER_ID = 2
SITE_COURSE_ID = 1
STUDENT_ROLE_ID = 5


@dataclass(frozen=True)
class SiteSpec:
    """What site to generate. Activity covers `days` local days from `start` in `timezone`."""

    schema: str
    _: KW_ONLY
    start: datetime.date
    release: str = "4.2"
    prefix: str = "mdl_"
    seed: int = 1
    learners: int = 50
    courses: int = 6
    days: int = 7
    timezone: str = "Europe/London"
    peak_day: datetime.date | None = None
    peak_completions: int = 0

    def __post_init__(self) -> None:
        release_key(self.release)
        ZoneInfo(self.timezone)
        if self.learners < len(_NAMED_LEARNERS):
            raise ValueError(
                f"learners must be at least {len(_NAMED_LEARNERS)} (the named edge-case learners), "
                f"got {self.learners}"
            )
        if self.courses < 1 or self.days < 1:
            raise ValueError(f"courses and days must be >= 1, got {self.courses}, {self.days}")
        if self.peak_completions < 0 or (self.peak_completions and self.peak_day is None):
            raise ValueError("peak_completions must be >= 0 and needs a peak_day")


@dataclass(frozen=True)
class SiteSummary:
    """What was generated: rows per table (without prefix), 0 for the tables left empty."""

    schema: str
    release: str
    prefix: str
    row_counts: dict[str, int]


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


_HOUR_WEIGHTS = (3, 1, 1, 1, 1, 1, 2, 5, 9, 12, 13, 12, 10, 12, 13, 12, 10, 8, 6, 6, 6, 5, 5, 4)


@dataclass(frozen=True)
class _Hour:
    start: int
    seconds: int
    local_hour: int


class _Calendar:
    """Local days of the site's time zone as epoch seconds; a DST day has 23 or 25 hours."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._hours: dict[datetime.date, tuple[list[_Hour], list[int]]] = {}
        self._starts: dict[datetime.date, int] = {}

    def day_start(self, day: datetime.date) -> int:
        start = self._starts.get(day)
        if start is None:
            local_midnight = datetime.datetime.combine(day, datetime.time(0), self.zone)
            start = self._starts[day] = int(local_midnight.timestamp())
        return start

    def day_end(self, day: datetime.date) -> int:
        return self.day_start(day + datetime.timedelta(days=1))

    def hours(self, day: datetime.date) -> tuple[list[_Hour], list[int]]:
        """The day's hours (elapsed, not wall-clock) with cumulative weights by local hour."""
        if day not in self._hours:
            start, end = self.day_start(day), self.day_end(day)
            hours = [
                _Hour(t, min(3600, end - t), datetime.datetime.fromtimestamp(t, self.zone).hour)
                for t in range(start, end, 3600)
            ]
            weights = list(itertools.accumulate(_HOUR_WEIGHTS[h.local_hour] for h in hours))
            self._hours[day] = (hours, weights)
        return self._hours[day]

    def moment(self, rng: random.Random, day: datetime.date) -> int:
        """A time on `day`, busier in working hours but never empty at night."""
        hours, weights = self.hours(day)
        hour = hours[bisect.bisect_right(weights, rng.random() * weights[-1])]
        return hour.start + int(rng.random() * hour.seconds)

    def moments(self, rng: random.Random, day: datetime.date, count: int) -> Iterator[int]:
        hours, weights = self.hours(day)
        rand = rng.random
        for hour in rng.choices(hours, cum_weights=weights, k=count):
            yield hour.start + int(rand() * hour.seconds)

    def at(self, day: datetime.date, hour: int, minute: int = 0, second: int = 0) -> int:
        """A local wall-clock time on `day` (callers keep clear of the small-hours DST gap)."""
        local = datetime.datetime.combine(day, datetime.time(hour, minute, second), self.zone)
        return int(local.timestamp())

    def local_day(self, epoch: int) -> datetime.date:
        return datetime.datetime.fromtimestamp(epoch, self.zone).date()


@dataclass(frozen=True)
class _Enrolment:
    user_id: int
    course_id: int
    enrolled_at: int
    suspended: bool


@dataclass
class _Site:
    """What the fill functions share: the spec, its calendar, the ids made so far, row counts."""

    conn: psycopg.Connection[Any]
    spec: SiteSpec
    row_counts: dict[str, int] = field(default_factory=dict)
    course_ids: list[int] = field(default_factory=list)
    category_of_course: dict[int, int] = field(default_factory=dict)
    manual_enrol_of_course: dict[int, int] = field(default_factory=dict)
    named_user_ids: dict[str, int] = field(default_factory=dict)
    learner_ids: list[int] = field(default_factory=list)
    peak_learner_ids: range = range(0)
    enrolments: list[_Enrolment] = field(default_factory=list)
    course_context_paths: dict[int, str] = field(default_factory=dict)
    activities: list[_Activity] = field(default_factory=list)
    grade_items: list[dict[str, object]] = field(default_factory=list)
    _tables: dict[str, _Table] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.calendar = _Calendar(ZoneInfo(self.spec.timezone))

    def rng(self, area: str) -> random.Random:
        return random.Random(f"{self.spec.seed}:{area}")

    @cached_property
    def activity_days(self) -> list[datetime.date]:
        return [self.spec.start + datetime.timedelta(days=n) for n in range(self.spec.days)]

    @cached_property
    def window_start(self) -> int:
        return self.calendar.day_start(self.spec.start)

    @cached_property
    def snapshot_at(self) -> int:
        """03:00 after the last active day: when the nightly run would read the replica."""
        last = max([self.activity_days[-1], *([self.spec.peak_day] if self.spec.peak_day else [])])
        return self.calendar.day_end(last) + 3 * 3600

    @cached_property
    def peak_enrolment_start(self) -> int:
        peak_day = self.spec.peak_day or self.spec.start
        return self.calendar.day_start(peak_day) - 7 * 86400

    @cached_property
    def installed_at(self) -> int:
        return self.window_start - 400 * 86400

    @cached_property
    def slug(self) -> str:
        return self.spec.schema.removeprefix("moodle_") or self.spec.schema

    @cached_property
    def domain(self) -> str:
        return f"{self.slug.replace('_', '-')}.example.org"

    @cached_property
    def organisation(self) -> str:
        return self.slug.replace("_", " ").title()

    @property
    def deleted_user_id(self) -> int:
        return self.named_user_ids["deleted"]

    @cached_property
    def learners_by_course(self) -> dict[int, list[int]]:
        """Learners with a planned enrolment per course (the deleted user's included), by id."""
        by_course: dict[int, list[int]] = {course_id: [] for course_id in self.course_ids}
        for e in self.enrolments:
            by_course[e.course_id].append(e.user_id)
        return {course_id: sorted(users) for course_id, users in by_course.items()}

    @cached_property
    def two_days(self) -> tuple[datetime.date, datetime.date]:
        """An earlier and a later local day for stories that span days (an attempt revisited, a
        regrade): the first and last activity day, or the day before and the only day."""
        days = self.activity_days
        if len(days) > 1:
            return days[0], days[-1]
        return days[0] - datetime.timedelta(days=1), days[0]

    @cached_property
    def mid_day(self) -> datetime.date:
        return self.activity_days[len(self.activity_days) // 2]

    def release_at_least(self, release: str) -> bool:
        return _release_tuple(self.spec.release) >= _release_tuple(release)

    def copy_release_records(self, table: str, records: Iterable[dict[str, object]]) -> None:
        """COPY records built for every release, keeping only the columns this release has."""
        columns = {column.name for column in moodle_tables(self.spec.release)[table]}
        self.copy_records(
            table, ({k: v for k, v in record.items() if k in columns} for record in records)
        )

    def copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """COPY rows that carry explicit ids into a table of the site."""
        if table not in self._tables:
            self._tables[table] = _Table(self.conn, self.spec.schema, self.spec.prefix + table)
        written = self._tables[table].copy(columns, rows)
        self.row_counts[table] = self.row_counts.get(table, 0) + written

    def copy_records(self, table: str, records: Iterable[dict[str, object]]) -> None:
        """COPY records that all have the same keys (the first one's), ids included."""
        records = iter(records)
        first = next(records, None)
        if first is None:
            return
        columns = list(first)
        values = operator.itemgetter(*columns)
        self.copy(table, columns, map(values, itertools.chain([first], records)))

    def finish(self) -> None:
        """Sequences past the ids, Moodle's indexes, planner statistics: as after a real load."""
        for table in self._tables.values():
            table.move_sequence_past_ids()
        create_moodle_indexes(
            self.conn, self.spec.schema, self.spec.release, prefix=self.spec.prefix
        )
        for table in self._tables.values():
            self.conn.execute(sql.SQL("analyze {}").format(table.ref))


def _fill_courses(site: _Site) -> None:
    """Two categories, the site course (id 1, category 0, format 'site'), then real courses."""
    categories = [(1, "Mandatory Training", "MAND"), (2, "Clinical Skills", "CLIN")]
    for offset in range(site.spec.courses):
        course_id = SITE_COURSE_ID + 1 + offset
        site.course_ids.append(course_id)
        site.category_of_course[course_id] = categories[offset % len(categories)][0]
    site.copy_records(
        "course_categories",
        (
            {
                "id": category_id,
                "name": name,
                "idnumber": idnumber,
                "description": f"<p>{name} for all staff.</p>",
                "parent": 0,
                "sortorder": category_id * 10000,
                "coursecount": list(site.category_of_course.values()).count(category_id),
                "depth": 1,
                "path": f"/{category_id}",
                "timemodified": site.installed_at,
            }
            for category_id, name, idnumber in categories
        ),
    )
    site_course = {
        **_course_record(site, SITE_COURSE_ID, f"{site.organisation} Learning Hub", site.slug),
        "category": 0,
        "sortorder": 1,
        "idnumber": "",
        "format": "site",
        "newsitems": 3,
        "startdate": 0,
        "enablecompletion": 0,
    }
    courses = [
        _course_record(site, course_id, *_course_names(site, course_id))
        for course_id in site.course_ids
    ]
    site.copy_records("course", [site_course, *courses])


def _course_names(site: _Site, course_id: int) -> tuple[str, str]:
    number = course_id - SITE_COURSE_ID
    if number <= len(_COURSES):
        return _COURSES[number - 1]
    return f"Clinical Skills Module {number}", f"CSM-{number:03d}"


def _course_record(site: _Site, course_id: int, fullname: str, shortname: str) -> dict[str, object]:
    category = site.category_of_course.get(course_id, 0)
    created = site.installed_at + (course_id - SITE_COURSE_ID) * 86400
    return {
        "id": course_id,
        "category": category,
        "sortorder": category * 10000 + course_id,
        "fullname": fullname,
        "shortname": shortname,
        "idnumber": f"CRS{course_id:05d}",
        "summary": f"<p>{fullname}.</p>",
        "summaryformat": 1,
        "format": "topics",
        "newsitems": 0,
        "startdate": created,
        "visible": 1,
        "timecreated": created,
        "timemodified": created,
        "enablecompletion": 1,
        "cacherev": created,
    }


_PASSWORD_HASH = "$2y$10$" + "synthetic.moodle.password.hash.not.a.real.secret.aaaa"


def _fill_users(site: _Site) -> None:
    """Guest (id 1) and admin (id 2) as Moodle's installer makes them, then the learners."""
    rng = site.rng("users")
    usernames = _Usernames()
    learners = (_learner_record(site, rng, usernames, *person) for person in _people(site, rng))
    site.copy_records("user", itertools.chain(_installer_users(site), learners))


def _installer_users(site: _Site) -> list[dict[str, object]]:
    """lib/db/install.php: the guest user first (id 1, `siteguest`), then the admin (id 2)."""
    admin_seen = site.snapshot_at - 7200
    guest = {
        **_blank_user(GUEST_USER_ID, "guest", "Guest user", " ", "root@localhost"),
        "description": "This user is a special user that allows read-only access to some courses.",
        "timemodified": site.installed_at,
    }
    admin = {
        **_blank_user(ADMIN_USER_ID, "admin", "Admin", "User", f"moodle-admin@{site.domain}"),
        "institution": site.organisation,
        "department": "IT",
        "city": "London",
        "country": "GB",
        "firstaccess": site.installed_at,
        "lastaccess": admin_seen,
        "lastlogin": admin_seen - 86400,
        "currentlogin": admin_seen,
        "lastip": "10.0.0.2",
        "timemodified": site.installed_at,
    }
    return [guest, admin]


def _blank_user(
    user_id: int, username: str, firstname: str, lastname: str, email: str
) -> dict[str, object]:
    return {
        "id": user_id,
        "auth": "manual",
        "confirmed": 1,
        "deleted": 0,
        "suspended": 0,
        "mnethostid": 1,
        "username": username,
        "password": _PASSWORD_HASH,
        "idnumber": "",
        "firstname": firstname,
        "lastname": lastname,
        "email": email,
        "institution": "",
        "department": "",
        "city": "",
        "country": "",
        "lang": "en",
        "timezone": "99",
        "firstaccess": 0,
        "lastaccess": 0,
        "lastlogin": 0,
        "currentlogin": 0,
        "lastip": "",
        "description": None,
        "timecreated": 0,
        "timemodified": 0,
    }


def _people(site: _Site, rng: random.Random) -> Iterator[tuple[int, str, str, str]]:
    """(id, first name, last name, kind) of every learner; the named edge cases come first."""
    next_id = ADMIN_USER_ID + 1
    for kind, first, last in _NAMED_LEARNERS:
        site.named_user_ids[kind] = next_id
        site.learner_ids.append(next_id)
        yield next_id, first, last, kind
        next_id += 1
    for _ in range(site.spec.learners - len(_NAMED_LEARNERS)):
        site.learner_ids.append(next_id)
        yield next_id, rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES), "active"
        next_id += 1
    peak_learners = math.ceil(site.spec.peak_completions / site.spec.courses)
    site.peak_learner_ids = range(next_id, next_id + peak_learners)
    for user_id in site.peak_learner_ids:
        yield user_id, rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES), "active"


def _learner_record(
    site: _Site,
    rng: random.Random,
    usernames: _Usernames,
    user_id: int,
    first: str,
    last: str,
    kind: str,
) -> dict[str, object]:
    username = usernames.claim(first, last)
    created = rng.randrange(site.installed_at, site.window_start - 100 * 86400)
    current = site.snapshot_at - rng.randrange(3 * 3600, 20 * 86400)
    city, country = rng.choice(_CITIES)
    record = {
        **_blank_user(user_id, username, first, last, f"{username}@{site.domain}"),
        "suspended": int(kind == "suspended"),
        "idnumber": "" if rng.random() < 0.04 else str(rng.randrange(1_000_000, 10_000_000)),
        "institution": site.organisation,
        "department": rng.choice(_DEPARTMENTS),
        "city": city,
        "country": country,
        "firstaccess": created + 3600,
        "lastaccess": current,
        "lastlogin": current - rng.randrange(86400, 10 * 86400),
        "currentlogin": current,
        "lastip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "timecreated": created,
        "timemodified": created,
    }
    if kind == "deleted":
        record |= _deleted_identity(username, str(record["email"]), site.snapshot_at - 7200)
    return record


def _deleted_identity(username: str, email: str, deleted_at: int) -> dict[str, object]:
    """What delete_user() (lib/moodlelib.php) overwrites; the old identity cannot be recovered."""
    return {
        "deleted": 1,
        "username": f"{email.lower()}.{deleted_at}",
        "email": hashlib.md5(username.encode()).hexdigest(),
        "idnumber": "",
        "timemodified": deleted_at,
    }


class _Usernames:
    """Moodle usernames are unique per host: first.last, then first.last2, first.last3, ..."""

    def __init__(self) -> None:
        self.taken: dict[str, int] = {}

    def claim(self, first: str, last: str) -> str:
        base = f"{_ascii_word(first)}.{_ascii_word(last)}"
        count = self.taken.get(base, 0) + 1
        self.taken[base] = count
        return base if count == 1 else f"{base}{count}"


_ASCII_LOOKALIKES = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d"})


def _ascii_word(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.translate(_ASCII_LOOKALIKES))
    return "".join(ch for ch in folded.lower() if ch.isascii() and ch.isalnum())


def _fill_contexts(site: _Site) -> None:
    """System, category, course and user contexts, with Moodle's id paths."""
    ids = itertools.count(1)
    rows: list[tuple[object, ...]] = [(next(ids), 10, 0, "/1", 1)]
    category_context = {}
    for category_id in sorted(set(site.category_of_course.values())):
        context_id = next(ids)
        category_context[category_id] = context_id
        rows.append((context_id, 40, category_id, f"/1/{context_id}", 2))
    context_id = next(ids)
    rows.append((context_id, 50, SITE_COURSE_ID, f"/1/{context_id}", 2))
    site.course_context_paths[SITE_COURSE_ID] = f"/1/{context_id}"
    for course_id in site.course_ids:
        parent, context_id = category_context[site.category_of_course[course_id]], next(ids)
        rows.append((context_id, 50, course_id, f"/1/{parent}/{context_id}", 3))
        site.course_context_paths[course_id] = f"/1/{parent}/{context_id}"
    user_ids = [GUEST_USER_ID, ADMIN_USER_ID, *site.learner_ids, *site.peak_learner_ids]
    user_rows = (
        (context_id, 30, user_id, f"/1/{context_id}", 2)
        for user_id, context_id in zip(
            (u for u in user_ids if u != site.deleted_user_id), ids, strict=False
        )
    )
    columns = ("id", "contextlevel", "instanceid", "path", "depth")
    site.copy("context", columns, itertools.chain(rows, user_rows))


def _fill_enrolments(site: _Site) -> None:
    """Manual, guest and self enrolment methods per course; learners enrolled manually.

    The deleted user's enrolments are planned (their completions remain) but not written:
    delete_user() hard-deletes user_enrolments.
    """
    rng = site.rng("enrolments")
    site.copy_records("enrol", _enrol_instances(site))
    site.enrolments = list(_planned_enrolments(site, rng))
    planned = (
        (e.user_id, e.course_id, e.enrolled_at, int(e.suspended))
        for e in site.enrolments
        if e.user_id != site.deleted_user_id
    )
    enrolments = itertools.chain(planned, _peak_enrolments(site))
    site.copy("user_enrolments", _ENROLMENT_COLUMNS, _enrolment_rows(site, enrolments))


def _enrol_instances(site: _Site) -> Iterator[dict[str, object]]:
    """What a new course gets: manual enrolment on, guest access and self enrolment off."""
    methods = (
        ("manual", 0, STUDENT_ROLE_ID, 86400),
        ("guest", 1, 0, 0),
        ("self", 1, STUDENT_ROLE_ID, 0),
    )
    ids = itertools.count(1)
    for course_id in site.course_ids:
        created = site.installed_at + (course_id - SITE_COURSE_ID) * 86400
        for sortorder, (method, status, role_id, expiry_threshold) in enumerate(methods):
            enrol_id = next(ids)
            if method == "manual":
                site.manual_enrol_of_course[course_id] = enrol_id
            yield {
                "id": enrol_id,
                "enrol": method,
                "status": status,
                "courseid": course_id,
                "sortorder": sortorder,
                "roleid": role_id,
                "expirythreshold": expiry_threshold,
                "timecreated": created,
                "timemodified": created,
            }


_ENROLMENT_COLUMNS = (
    "id",
    "status",
    "enrolid",
    "userid",
    "timestart",
    "timeend",
    "modifierid",
    "timecreated",
    "timemodified",
)


def _planned_enrolments(site: _Site, rng: random.Random) -> Iterator[_Enrolment]:
    """Each learner in most courses; the named learners always in the first course."""
    named = set(site.named_user_ids.values())
    for user_id in site.learner_ids:
        courses = [c for c in site.course_ids if rng.random() < 0.7]
        if user_id in named and site.course_ids[0] not in courses:
            courses.insert(0, site.course_ids[0])
        for course_id in courses or [rng.choice(site.course_ids)]:
            enrolled_at = site.window_start - rng.randrange(3600, 90 * 86400)
            yield _Enrolment(user_id, course_id, enrolled_at, rng.random() < 0.03)


def _peak_enrolled_at(site: _Site, user_id: int) -> int:
    """Peak learners were enrolled in bulk (an HR upload) within an hour, a week before."""
    return site.peak_enrolment_start + user_id % 3600


def _peak_pairs(site: _Site) -> Iterator[tuple[int, int]]:
    """(user, course) of the peak completions: every peak learner in every course, cut to size."""
    pairs = ((u, c) for u in site.peak_learner_ids for c in site.course_ids)
    return itertools.islice(pairs, site.spec.peak_completions)


def _peak_enrolments(site: _Site) -> Iterator[tuple[int, int, int, int]]:
    for user_id, course_id in _peak_pairs(site):
        yield user_id, course_id, _peak_enrolled_at(site, user_id), 0


def _enrolment_rows(
    site: _Site, enrolments: Iterable[tuple[int, int, int, int]]
) -> Iterator[tuple[object, ...]]:
    manual = site.manual_enrol_of_course
    for row_id, (user_id, course_id, at, status) in enumerate(enrolments, start=1):
        yield row_id, status, manual[course_id], user_id, at, 0, ADMIN_USER_ID, at, at


_CompletionRow = tuple[int, int, int, int, int | None, int]
_COMPLETION_COLUMNS = (
    "id",
    "userid",
    "course",
    "timeenrolled",
    "timestarted",
    "timecompleted",
    "reaggregate",
)


def _fill_completions(site: _Site) -> None:
    """Course completions: done on the activity days, in progress, and the edge cases.

    The Completion feed must leave out the guest user's row and the site course's, and keep the
    deleted and the suspended learner's.
    """
    rng = site.rng("completions")
    rows = itertools.chain(_planned_completions(site, rng), _peak_completions(site, rng))
    numbered = ((row_id, *row) for row_id, row in enumerate(rows, start=1))
    site.copy("course_completions", _COMPLETION_COLUMNS, numbered)


def _planned_completions(site: _Site, rng: random.Random) -> list[_CompletionRow]:
    named = set(site.named_user_ids.values())
    completed: list[tuple[int, int, int]] = []
    rows: list[_CompletionRow] = []
    first_course = site.course_ids[0]
    for e in site.enrolments:
        forced = e.user_id in named and e.course_id == first_course
        outcome = rng.random()
        if forced or outcome < 0.55:
            completed.append((e.user_id, e.course_id, e.enrolled_at))
        elif outcome < 0.85:
            rows.append(_in_progress(site, rng, e))
    completed.append((GUEST_USER_ID, first_course, site.window_start - 30 * 86400))
    completed.append((site.learner_ids[0], SITE_COURSE_ID, site.window_start - 30 * 86400))
    times = _completion_times(site, rng, len(completed))
    for (user_id, course_id, enrolled_at), completed_at in zip(completed, times, strict=True):
        started = rng.randrange(enrolled_at, completed_at) if rng.random() < 0.7 else 0
        rows.append((user_id, course_id, enrolled_at, started, completed_at, 0))
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def _in_progress(site: _Site, rng: random.Random, e: _Enrolment) -> _CompletionRow:
    """Started, not complete; some wait for the cron to aggregate them (reaggregate > 0)."""
    started = rng.randrange(e.enrolled_at, site.snapshot_at) if rng.random() < 0.8 else 0
    reaggregate = 0
    if started and rng.random() < 0.3:
        reaggregate = rng.randrange(max(started, site.window_start), site.snapshot_at)
    return e.user_id, e.course_id, e.enrolled_at, started, None, reaggregate


def _completion_times(site: _Site, rng: random.Random, count: int) -> list[int]:
    """Completion moments over the activity days, including the first and last second of each."""
    edges = []
    for day in site.activity_days:
        edges += [site.calendar.day_start(day), site.calendar.day_end(day) - 1]
    times = edges[:count] + [
        site.calendar.moment(rng, rng.choice(site.activity_days))
        for _ in range(count - min(count, len(edges)))
    ]
    rng.shuffle(times)
    return times


def _peak_completions(site: _Site, rng: random.Random) -> Iterator[_CompletionRow]:
    if not site.spec.peak_completions or site.spec.peak_day is None:
        return
    moments = site.calendar.moments(rng, site.spec.peak_day, site.spec.peak_completions)
    for (user_id, course_id), completed_at in zip(_peak_pairs(site), moments, strict=True):
        enrolled_at = _peak_enrolled_at(site, user_id)
        yield user_id, course_id, enrolled_at, enrolled_at + 600, completed_at, 0


def _release_tuple(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


@dataclass(frozen=True)
class _Activity:
    """One activity instance: what its course_modules row, module context and grade item need."""

    module: str
    instance: int
    course_id: int
    name: str
    added: int
    completion: int = 2
    grademax: Decimal | None = None
    gradepass: Decimal = Decimal(0)


def _activity_added(course_id: int, site: _Site, offset_days: int, slot: int) -> int:
    """Activities were set up a few days after their course, one per hour of an afternoon."""
    created = site.installed_at + (course_id - SITE_COURSE_ID) * 86400
    return created + offset_days * 86400 + (13 + slot) * 3600


def _fit_in_day(site: _Site, rng: random.Random, day: datetime.date, seconds: int) -> int:
    """A start on `day` (busier in working hours) that leaves `seconds` before local midnight."""
    start = site.calendar.moment(rng, day)
    latest = site.calendar.day_end(day) - seconds - 60
    return max(site.calendar.day_start(day) + 60, min(start, latest))


# SCORM ----------------------------------------------------------------------------------------

_SCORM_12 = "SCORM_1.2"
_SCORM_2004 = "SCORM_1.3"


@dataclass(frozen=True)
class _ScormTemplate:
    """A package's manifest: its SCOs (the last one scored when `assessed`) and asset items."""

    suffix: str
    version: str
    scos: tuple[str, ...]
    assets: tuple[str, ...]
    assessed: bool = True


_SCORM_TEMPLATES = (
    _ScormTemplate(
        "e-learning",
        _SCORM_12,
        ("Introduction", "Module 1: Recognising the risks", "Knowledge check"),
        ("Glossary",),
    ),
    _ScormTemplate(
        "interactive scenarios",
        _SCORM_2004,
        (
            "Welcome",
            'Scenario 1: "What would you do?"',
            "Scenario 2: Escalate, record, report",
            "Final assessment",
        ),
        ("Quick reference card (PDF)", "Further reading"),
    ),
)
_SITE_SCORM = _ScormTemplate(
    "Learning Hub induction", _SCORM_12, ("Welcome to the Learning Hub",), (), assessed=False
)


@dataclass(frozen=True)
class _ScormPackage:
    id: int
    course_id: int
    name: str
    template: _ScormTemplate
    sco_ids: tuple[int, ...]
    asset_ids: tuple[int, ...]
    added: int

    @property
    def is_2004(self) -> bool:
        return self.template.version == _SCORM_2004


class _Outcome(NamedTuple):
    """What a SCO session leaves: SCORM 1.2 `lesson_status`, or 2004 `completion_status` with
    `success_status`; the raw score as the SCO sent it, or None when it sent none."""

    status: str
    success: str | None = None
    score: str | None = None


class _Visit(NamedTuple):
    sco: int
    outcome: _Outcome
    revisit: _Outcome | None = None


class _AttemptPlan(NamedTuple):
    """One attempt: the SCOs launched in order on `day`, the assets opened, and SCOs taken up
    again on `revisit_day` (same attempt number, rows updated in place)."""

    day: datetime.date
    visits: tuple[_Visit, ...]
    assets: tuple[int, ...] = ()
    revisit_day: datetime.date | None = None


class _Track(NamedTuple):
    """One CMI element of one SCO attempt as Moodle last wrote it. The same row, whichever design
    stores it: `scorm_scoes_track` (<= 4.2) or `scorm_attempt` + `scorm_scoes_value` +
    `scorm_element` (>= 4.3). `created` (first write) orders the ids."""

    userid: int
    scormid: int
    scoid: int
    attempt: int
    element: str
    value: str
    timemodified: int
    created: int


_ELEMENTS_12 = {
    "status": "cmi.core.lesson_status",
    "score": "cmi.core.score.raw",
    "session": "cmi.core.session_time",
    "total": "cmi.core.total_time",
}
_ELEMENTS_2004 = {
    "status": "cmi.completion_status",
    "success": "cmi.success_status",
    "score": "cmi.score.raw",
    "scaled": "cmi.score.scaled",
    "session": "cmi.session_time",
    "total": "cmi.total_time",
}
# Elements a site has used before the generated days (interactions, exit, location, sequencing).
# A random handful of them take the first scorm_element ids, so ids differ from site to site.
_EARLIER_ELEMENTS = (
    "cmi.core.exit",
    "cmi.core.lesson_location",
    "cmi.core.score.max",
    "cmi.core.score.min",
    "cmi.exit",
    "cmi.location",
    "cmi.interactions_0.id",
    "cmi.interactions_0.result",
    "cmi.objectives_0.id",
    "objectiveprogressstatus",
    "objectivesatisfiedstatus",
)


def _fill_scorm(site: _Site) -> None:
    """SCORM packages with their manifest items, and learners' tracking in the release's design.

    The tracking is planned once as release-free `_Track` rows and only then written: as
    `scorm_scoes_track` up to 4.2, or split into attempts, element names and values from 4.3, as
    Moodle's 4.3 upgrade (mod/scorm/db/upgrade.php 2023042402-03) does. So a 4.2 and a 4.3 site
    of the same spec hold the same activity.
    """
    rng = site.rng("scorm")
    packages = _scorm_packages(site)
    site.copy_release_records("scorm", (_scorm_record(site, p) for p in packages))
    site.copy_records("scorm_scoes", itertools.chain.from_iterable(map(_scoes_records, packages)))
    for p in packages:
        site.activities.append(
            _Activity("scorm", p.id, p.course_id, p.name, p.added, grademax=Decimal(100))
        )
    tracks = sorted(_scorm_tracks(site, rng, packages), key=operator.attrgetter("created"))
    if site.release_at_least("4.3"):
        _write_normalised_tracks(site, site.rng("scorm elements"), tracks)
    else:
        columns = ("id", *_Track._fields[:-1])
        site.copy("scorm_scoes_track", columns, ((n, *t[:-1]) for n, t in enumerate(tracks, 1)))


def _scorm_packages(site: _Site) -> list[_ScormPackage]:
    """Both versions in the first course, one package in each other course, one on the site."""
    plan = [(site.course_ids[0], _SCORM_TEMPLATES[0]), (site.course_ids[0], _SCORM_TEMPLATES[1])]
    plan += [(c, _SCORM_TEMPLATES[n % 2]) for n, c in enumerate(site.course_ids[1:], start=1)]
    plan.append((SITE_COURSE_ID, _SITE_SCORM))
    packages, sco_ids = [], itertools.count(1)
    for package_id, (course_id, template) in enumerate(plan, start=1):
        next(sco_ids)  # the organization row
        scos = tuple(itertools.islice(sco_ids, len(template.scos)))
        assets = tuple(itertools.islice(sco_ids, len(template.assets)))
        if course_id == SITE_COURSE_ID:
            name = f"{site.organisation} {template.suffix}"
        else:
            name = f"{_course_names(site, course_id)[0]} {template.suffix}"
        added = _activity_added(course_id, site, 2, package_id % 2)
        packages.append(_ScormPackage(package_id, course_id, name, template, scos, assets, added))
    return packages


def _scorm_record(site: _Site, package: _ScormPackage) -> dict[str, object]:
    reference = f"{_ascii_word(package.name)[:40]}_v3.zip"
    return {
        "id": package.id,
        "course": package.course_id,
        "name": package.name,
        "scormtype": "local",
        "reference": reference,
        "intro": f"<p>{package.name}.</p>",
        "introformat": 1,
        "version": package.template.version,
        "maxgrade": 100.0,
        "grademethod": 1,
        "whatgrade": 0,
        "maxattempt": 0,
        "forcecompleted": 0,
        "forcenewattempt": 0,
        "lastattemptlock": 0,
        "masteryoverride": 1,
        "displayattemptstatus": 1,
        "displaycoursestructure": 0,
        "updatefreq": 0,
        "sha1hash": hashlib.sha1(reference.encode()).hexdigest(),
        "md5hash": hashlib.md5(reference.encode()).hexdigest(),
        "revision": 1,
        "launch": package.sco_ids[0],
        "skipview": 1,
        "hidebrowse": 0,
        "hidetoc": 0,
        "nav": 1,
        "navpositionleft": -100,
        "navpositiontop": -100,
        "auto": 0,
        "popup": 0,
        "options": "",
        "width": 100,
        "height": 500,
        "timeopen": 0,
        "timeclose": 0,
        "timemodified": package.added,
        "completionstatusrequired": 6,
        "completionscorerequired": None,
        "completionstatusallscos": 1,
        "autocommit": 0,
        "displayactivityname": 1,
    }


def _scoes_records(package: _ScormPackage) -> Iterator[dict[str, object]]:
    """The organization row (scormtype '', launch ''), then SCOs and assets in manifest order."""
    manifest = f"MANIFEST-{package.id:04d}"
    organization = f"ORG-{package.id:04d}"
    template = package.template

    def record(
        sco_id: int, identifier: str, launch: str, kind: str, title: str, parent: str, org: str
    ) -> dict[str, object]:
        return {
            "id": sco_id,
            "scorm": package.id,
            "manifest": manifest,
            "organization": org,
            "parent": parent,
            "identifier": identifier,
            "launch": launch,
            "scormtype": kind,
            "title": title,
            "sortorder": sco_id - package.sco_ids[0] + 2,
        }

    yield record(package.sco_ids[0] - 1, organization, "", "", package.name, "/", "")
    for n, (sco_id, title) in enumerate(zip(package.sco_ids, template.scos, strict=True), 1):
        yield record(
            sco_id, f"ITEM-{n}", f"sco{n}/index.html", "sco", title, organization, organization
        )
    for n, (sco_id, title) in enumerate(zip(package.asset_ids, template.assets, strict=True), 1):
        launch = f"resources/asset{n}.{'pdf' if 'PDF' in title else 'html'}"
        yield record(sco_id, f"RES-{n}", launch, "asset", title, organization, organization)


def _named_scorm_plans(site: _Site) -> dict[str, tuple[int, list[_AttemptPlan]]]:
    """The named learners' stories in the first course: (package index, attempts)."""
    early, late = site.two_days
    mid = site.mid_day
    done, done_2004 = _Outcome("completed"), _Outcome("completed", "unknown")

    def scos(*outcomes: _Outcome) -> tuple[_Visit, ...]:
        return tuple(_Visit(n, outcome) for n, outcome in enumerate(outcomes))

    revisited = (_Visit(0, done), _Visit(1, _Outcome("incomplete"), revisit=done))
    return {
        "zoe": (
            0,
            [
                _AttemptPlan(early, scos(done, done, _Outcome("failed", score="55"))),
                _AttemptPlan(late, scos(done, done, _Outcome("passed", score="90"))),
            ],
        ),
        "lukasz": (0, [_AttemptPlan(early, revisited, revisit_day=late)]),
        "quoted": (0, [_AttemptPlan(mid, scos(_Outcome("browsed"), _Outcome("not attempted")))]),
        "suspended": (
            0,
            [_AttemptPlan(mid, scos(done, done, _Outcome("passed", score="100")), assets=(0,))],
        ),
        "deleted": (
            1,
            [
                _AttemptPlan(
                    early,
                    scos(done_2004, done_2004, done_2004, _Outcome("completed", "passed", "85")),
                )
            ],
        ),
        "obrien": (
            1,
            [
                _AttemptPlan(early, scos(done_2004, _Outcome("incomplete", "unknown"))),
                _AttemptPlan(
                    late,
                    scos(done_2004, done_2004, done_2004, _Outcome("completed", "failed", "40.5")),
                    assets=(1,),
                ),
            ],
        ),
        "jose": (
            1,
            [
                _AttemptPlan(
                    mid,
                    scos(_Outcome("not attempted", "unknown"), _Outcome("unknown", "unknown")),
                    assets=(0,),
                )
            ],
        ),
    }


def _scorm_tracks(
    site: _Site, rng: random.Random, packages: list[_ScormPackage]
) -> Iterator[_Track]:
    named = _named_scorm_plans(site)
    first_course = site.course_ids[0]
    first_packages = [p for p in packages if p.course_id == first_course]
    forced = {
        (site.named_user_ids[kind], first_packages[index].id): plans
        for kind, (index, plans) in named.items()
    }
    for package in packages:
        if package.course_id == SITE_COURSE_ID:
            # Front-page activity: the feed leaves the site course out.
            plan = _AttemptPlan(site.mid_day, (_Visit(0, _Outcome("completed")),))
            yield from _play_attempt(site, rng, site.learner_ids[0], package, 1, plan)
            continue
        for user_id in site.learners_by_course[package.course_id]:
            plans = forced.get((user_id, package.id))
            if plans is None:
                if rng.random() >= 0.6:
                    continue
                plans = _random_scorm_plans(site, rng, package)
            for attempt, plan in enumerate(plans, start=1):
                yield from _play_attempt(site, rng, user_id, package, attempt, plan)
    # The guest user has no business tracking; the feed must leave such rows out.
    guest_plan = _AttemptPlan(site.mid_day, (_Visit(0, _Outcome("completed")),))
    yield from _play_attempt(site, rng, GUEST_USER_ID, first_packages[0], 1, guest_plan)


def _random_scorm_plans(
    site: _Site, rng: random.Random, package: _ScormPackage
) -> list[_AttemptPlan]:
    days = site.activity_days
    count = min(rng.choices((1, 2, 3), (65, 25, 10))[0], len(days))
    attempt_days = sorted(rng.sample(days, count))
    scos = len(package.sco_ids)
    plans = []
    for index, day in enumerate(attempt_days):
        final = index == count - 1
        reached = scos if final and rng.random() < 0.7 else rng.randint(1, scos)
        visits = [_Visit(sco, _random_outcome(rng, package, sco, final)) for sco in range(reached)]
        assets = tuple(n for n in range(len(package.asset_ids)) if rng.random() < 0.25)
        later = [d for d in days if d > day]
        open_visits = [
            v for v in visits if v.outcome.status in ("incomplete", "not attempted", "unknown")
        ]
        revisit_day = None
        if final and later and open_visits and rng.random() < 0.3:
            visit = rng.choice(open_visits)
            revisit = _random_outcome(rng, package, visit.sco, True)
            visits[visit.sco] = visit._replace(revisit=revisit)
            revisit_day = rng.choice(later)
        plans.append(_AttemptPlan(day, tuple(visits), assets, revisit_day))
    return plans


def _random_outcome(rng: random.Random, package: _ScormPackage, sco: int, final: bool) -> _Outcome:
    assessed = package.template.assessed and sco == len(package.sco_ids) - 1
    if not assessed:
        weights = (70, 20, 4, 6) if final else (45, 45, 2, 8)
        status = rng.choices(("completed", "incomplete", "browsed", "not attempted"), weights)[0]
        if package.is_2004:
            # SCORM 2004 has no 'browsed'; a SCO that reports nothing leaves 'unknown'.
            return _Outcome("unknown" if status == "browsed" else status, "unknown")
        return _Outcome(status)
    weights = (60, 22, 13, 5) if final else (15, 55, 25, 5)
    result = rng.choices(("passed", "failed", "incomplete", "completed"), weights)[0]
    low, high = {"passed": (80, 100), "failed": (20, 79), "completed": (50, 100)}.get(
        result, (0, 0)
    )
    score = str(rng.randint(low, high))
    if rng.random() < 0.15 and int(score) < high:
        score = f"{int(score) + rng.choice((0.25, 0.5, 0.67)):.2f}"
    if package.is_2004:
        if result == "incomplete":
            return _Outcome("incomplete", "unknown")
        if result == "completed":
            return _Outcome("completed", "unknown", score)
        return _Outcome("completed", result, score)
    return _Outcome(result, None, None if result == "incomplete" else score)


def _session_seconds(rng: random.Random, outcome: _Outcome) -> int:
    if outcome.status == "not attempted":
        return rng.randint(5, 40)
    if outcome.status in ("browsed", "unknown"):
        return rng.randint(60, 240)
    return rng.randint(240, 1500)


def _play_attempt(
    site: _Site,
    rng: random.Random,
    user_id: int,
    package: _ScormPackage,
    attempt: int,
    plan: _AttemptPlan,
) -> Iterator[_Track]:
    """The rows one attempt leaves: each SCO session in turn, assets opened after the first SCO,
    then the revisits on a later day, which update rows in place (x.start.time is kept)."""
    rows: dict[tuple[int, str], list[Any]] = {}
    durations = [_session_seconds(rng, visit.outcome) for visit in plan.visits]
    asset_seconds = [rng.randint(30, 240) for _ in plan.assets]
    gaps = [rng.randint(5, 90) for _ in range(len(durations) + len(asset_seconds))]
    t = _fit_in_day(site, rng, plan.day, sum(durations) + sum(asset_seconds) + sum(gaps))
    gap = iter(gaps)
    status_early = [rng.random() < 0.2 for _ in plan.visits]
    totals: dict[int, int] = {}
    for n, (visit, seconds) in enumerate(zip(plan.visits, durations, strict=True)):
        sco_id = package.sco_ids[visit.sco]
        _write_session(rows, package, visit, sco_id, t, seconds, seconds, status_early[n])
        totals[sco_id] = seconds
        t += seconds + next(gap)
        if n == 0:
            for asset, seconds in zip(plan.assets, asset_seconds, strict=True):
                # loadSCO.php writes 'completed' for an asset as soon as it is launched.
                asset_id = package.asset_ids[asset]
                status = (_ELEMENTS_2004 if package.is_2004 else _ELEMENTS_12)["status"]
                _put(rows, asset_id, "x.start.time", str(t), t, keep=True)
                _put(rows, asset_id, status, "completed", t + 1)
                t += seconds + next(gap)
    if plan.revisit_day is not None:
        for visit in plan.visits:
            if visit.revisit is None:
                continue
            sco_id = package.sco_ids[visit.sco]
            seconds = _session_seconds(rng, visit.revisit)
            start = _fit_in_day(site, rng, plan.revisit_day, seconds)
            totals[sco_id] += seconds
            again = visit._replace(outcome=visit.revisit)
            _write_session(rows, package, again, sco_id, start, seconds, totals[sco_id], False)
    for (sco_id, element), (value, modified, created) in rows.items():
        yield _Track(user_id, package.id, sco_id, attempt, element, value, modified, created)


def _put(
    rows: dict[tuple[int, str], list[Any]],
    sco_id: int,
    element: str,
    value: str,
    at: int,
    *,
    keep: bool = False,
) -> None:
    """scorm_insert_track(): update the element's row in place, or insert it; x.start.time is
    never updated once written."""
    row = rows.get((sco_id, element))
    if row is None:
        rows[(sco_id, element)] = [value, at, at]
    elif not keep:
        row[0], row[1] = value, at


def _write_session(
    rows: dict[tuple[int, str], list[Any]],
    package: _ScormPackage,
    visit: _Visit,
    sco_id: int,
    start: int,
    seconds: int,
    total_seconds: int,
    status_early: bool,
) -> None:
    """One launch of a SCO: start time, a mid-session commit, then score, times and status at
    LMSFinish (the status usually last)."""
    outcome, end = visit.outcome, start + seconds
    names = _ELEMENTS_2004 if package.is_2004 else _ELEMENTS_12
    _put(rows, sco_id, "x.start.time", str(start), start, keep=True)
    if outcome.status != "not attempted":
        page = total_seconds // 60 % 9 + 1
        data = f'{{"v":2,"sco":{visit.sco + 1},"page":{page},"seen":"1,1,{page % 2}"}}'
        _put(rows, sco_id, "cmi.suspend_data", data, start + seconds * 3 // 5)
    if outcome.score is not None:
        _put(rows, sco_id, names["score"], outcome.score, end - 2)
        if package.is_2004:
            scaled = str((Decimal(outcome.score) / 100).normalize())
            _put(rows, sco_id, names["scaled"], scaled, end - 2)
    duration = _iso_duration if package.is_2004 else _cmi_timespan
    _put(rows, sco_id, names["session"], duration(seconds), end - 1)
    _put(rows, sco_id, names["total"], duration(total_seconds), end - 1)
    status_at = end - 3 if status_early else end
    if package.is_2004:
        _put(rows, sco_id, names["success"], outcome.success or "unknown", status_at)
    _put(rows, sco_id, names["status"], outcome.status, status_at)


def _cmi_timespan(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _iso_duration(seconds: int) -> str:
    return f"PT{seconds // 3600}H{seconds // 60 % 60}M{seconds % 60}S"


def _write_normalised_tracks(site: _Site, rng: random.Random, tracks: list[_Track]) -> None:
    """The >= 4.3 design: attempts and element names get ids in order of first use."""
    element_ids = {name: n for n, name in enumerate(_element_names(rng, tracks), start=1)}
    attempt_ids: dict[tuple[int, int, int], int] = {}
    for t in tracks:
        attempt_ids.setdefault((t.userid, t.scormid, t.attempt), len(attempt_ids) + 1)
    site.copy(
        "scorm_attempt",
        ("id", "userid", "scormid", "attempt"),
        ((n, *key) for key, n in attempt_ids.items()),
    )
    site.copy("scorm_element", ("id", "element"), ((n, e) for e, n in element_ids.items()))
    site.copy(
        "scorm_scoes_value",
        ("id", "scoid", "attemptid", "elementid", "value", "timemodified"),
        (
            (
                n,
                t.scoid,
                attempt_ids[(t.userid, t.scormid, t.attempt)],
                element_ids[t.element],
                t.value,
                t.timemodified,
            )
            for n, t in enumerate(tracks, start=1)
        ),
    )


def _element_names(rng: random.Random, tracks: list[_Track]) -> list[str]:
    earlier = rng.sample(_EARLIER_ELEMENTS, rng.randint(2, 8))
    names = dict.fromkeys(earlier)
    for t in tracks:
        names.setdefault(t.element)
    return list(names)


# Quiz -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _QuizTemplate:
    """Quiz settings that matter to the feed: raw marks (`sumgrades`), the grade they are scaled
    to, decimal points, the pass mark (grade item `gradepass`, 0 = none) and the time limit."""

    key: str
    suffix: str
    sumgrades: Decimal
    grade: Decimal
    decimalpoints: int
    gradepass: Decimal
    slots: int
    timelimit: int = 0
    essay: bool = False
    opens_after_window: bool = False


_QUIZ_ASSESSMENT = _QuizTemplate(
    "assessment", "assessment", Decimal(10), Decimal(100), 1, Decimal(80), 10, 3600, essay=True
)
_QUIZ_CHECK = _QuizTemplate("check", "knowledge check", Decimal(20), Decimal(10), 2, Decimal(0), 20)
_QUIZ_NO_MARKS = _QuizTemplate(
    "reflection", "reflection (not marked)", Decimal(0), Decimal(10), 0, Decimal(0), 3
)
_QUIZ_FINAL = _QuizTemplate("final", "final test", Decimal(8), Decimal(100), 0, Decimal(50), 8)
_QUIZ_UPCOMING = _QuizTemplate(
    "upcoming", "refresher", Decimal(10), Decimal(10), 2, Decimal(7), 10, opens_after_window=True
)
_SITE_QUIZ = _QuizTemplate(
    "welcome", "Learning Hub welcome quiz", Decimal(5), Decimal(10), 2, Decimal(0), 5
)
_FIRST_COURSE_QUIZZES = (_QUIZ_ASSESSMENT, _QUIZ_CHECK, _QUIZ_NO_MARKS, _QUIZ_FINAL, _QUIZ_UPCOMING)
_OTHER_COURSE_QUIZZES = (_QUIZ_CHECK, _QUIZ_FINAL, _QUIZ_ASSESSMENT)


@dataclass(frozen=True)
class _Quiz:
    id: int
    course_id: int
    name: str
    template: _QuizTemplate
    added: int
    timeopen: int


@dataclass(frozen=True)
class _QuizAttempt:
    """One attempt as the site holds it. `flow` says how it differs by release: 'pending' is
    still `submitted` (ungraded) on 5.0+ but graded on submission before; 'graded_by_task' is
    graded by 5.0's ad-hoc task minutes after submission; 'precreated' exists only on 5.0+."""

    quiz: _Quiz
    userid: int
    attempt: int
    state: str
    timestart: int
    timefinish: int
    timemodified: int
    sumgrades: Decimal | None
    preview: int = 0
    timecheckstate: int | None = None
    currentpage: int = 0
    graded_at: int | None = None
    flow: str = ""
    created: int = 0


def _fill_quizzes(site: _Site) -> None:
    """Quizzes with their grade items (pass marks), learners' attempts in every state, previews,
    a regrade and a manual grading on a later day, and the best grade per learner."""
    rng = site.rng("quiz")
    quizzes = _quizzes(site)
    site.copy_release_records("quiz", (_quiz_record(site, q) for q in quizzes))
    for q in quizzes:
        t = q.template
        site.activities.append(
            _Activity("quiz", q.id, q.course_id, q.name, q.added, 2, t.grade, t.gradepass)
        )
    planned = _quiz_attempts(site, rng, quizzes)
    attempts = [a for a in map(functools.partial(_attempt_on_release, site), planned) if a]
    attempts.sort(key=lambda a: (a.created, a.quiz.id, a.userid))
    with_notifications = site.release_at_least("4.0")
    site.copy_release_records(
        "quiz_attempts",
        (_attempt_record(n, a, with_notifications) for n, a in enumerate(attempts, start=1)),
    )
    site.copy_records("quiz_grades", _quiz_grades(attempts))


def _quizzes(site: _Site) -> list[_Quiz]:
    plan = [(site.course_ids[0], t) for t in _FIRST_COURSE_QUIZZES]
    plan += [
        (c, _OTHER_COURSE_QUIZZES[n % len(_OTHER_COURSE_QUIZZES)])
        for n, c in enumerate(site.course_ids[1:])
    ]
    plan.append((SITE_COURSE_ID, _SITE_QUIZ))
    opens = site.calendar.at(site.activity_days[-1] + datetime.timedelta(days=3), 9)
    quizzes = []
    for quiz_id, (course_id, template) in enumerate(plan, start=1):
        if course_id == SITE_COURSE_ID:
            name = f"{site.organisation} {template.suffix}"
        else:
            name = f"{_course_names(site, course_id)[0]}: {template.suffix}"
        added = _activity_added(course_id, site, 3, quiz_id % 5)
        timeopen = opens if template.opens_after_window else 0
        quizzes.append(_Quiz(quiz_id, course_id, name, template, added, timeopen))
    return quizzes


_REVIEW_ALWAYS = 0x11110  # during, immediately after, later while open, after close
_REVIEW_AFTER = 0x01110


def _quiz_record(site: _Site, quiz: _Quiz) -> dict[str, object]:
    t = quiz.template
    return {
        "id": quiz.id,
        "course": quiz.course_id,
        "name": quiz.name,
        "intro": f"<p>{quiz.name}.</p>",
        "introformat": 1,
        "timeopen": quiz.timeopen,
        "timeclose": 0,
        "timelimit": t.timelimit,
        "overduehandling": "graceperiod" if t.timelimit else "autoabandon",
        "graceperiod": 86400 if t.timelimit else 0,
        "preferredbehaviour": "deferredfeedback",
        "canredoquestions": 0,
        "attempts": 0,
        "attemptonlast": 0,
        "grademethod": 1,
        "decimalpoints": t.decimalpoints,
        "questiondecimalpoints": -1,
        "reviewattempt": _REVIEW_ALWAYS,
        "reviewcorrectness": _REVIEW_AFTER,
        "reviewmaxmarks": _REVIEW_ALWAYS,
        "reviewmarks": _REVIEW_AFTER,
        "reviewspecificfeedback": _REVIEW_AFTER,
        "reviewgeneralfeedback": _REVIEW_AFTER,
        "reviewrightanswer": _REVIEW_AFTER,
        "reviewoverallfeedback": _REVIEW_AFTER,
        "questionsperpage": 1,
        "navmethod": "free",
        "shuffleanswers": 1,
        "sumgrades": t.sumgrades,
        "grade": t.grade,
        "timecreated": quiz.added,
        "timemodified": quiz.added,
        "password": "",
        "subnet": "",
        "browsersecurity": "-",
        "delay1": 0,
        "delay2": 0,
        "showuserpicture": 0,
        "showblocks": 0,
        "completionattemptsexhausted": 0,
        "completionpass": 0,
        "completionminattempts": 0,
        "allowofflineattempts": 0,
        "precreateattempts": 1 if t.opens_after_window else None,
    }


def _quiz_attempts(site: _Site, rng: random.Random, quizzes: list[_Quiz]) -> list[_QuizAttempt]:
    first = {q.template.key: q for q in quizzes if q.course_id == site.course_ids[0]}
    named = _named_quiz_attempts(site, rng, first)
    forced = {(a.quiz.id, a.userid) for a in named}
    attempts = list(named)
    for quiz in quizzes:
        if quiz.template.opens_after_window:
            attempts += _precreated_attempts(site, quiz)
            continue
        if quiz.course_id == SITE_COURSE_ID:
            learners = site.learner_ids[:3]
        else:
            learners = site.learners_by_course[quiz.course_id]
        for user_id in learners:
            if (quiz.id, user_id) in forced:
                continue
            if quiz.course_id != SITE_COURSE_ID and rng.random() >= 0.5:
                continue
            attempts += _random_quiz_attempts(site, rng, quiz, user_id)
    _regrade(site, rng, first["assessment"], attempts, forced)
    return attempts


def _random_sumgrades(rng: random.Random, template: _QuizTemplate) -> Decimal:
    """Marks per question: right, wrong, or part-marked (thirds and halves, 5 decimals)."""
    if not template.sumgrades:
        return Decimal("0.00000")
    mark = template.sumgrades / template.slots
    fractions = rng.choices(_FRACTIONS, _FRACTION_WEIGHTS, k=template.slots)
    return sum(((mark * f).quantize(_MARK) for f in fractions), Decimal(0)).quantize(_MARK)


_MARK = Decimal("0.00001")
_FRACTIONS = (Decimal(1), Decimal(0), Decimal("0.5"), Decimal("0.3333333"), Decimal("0.6666667"))
_FRACTION_WEIGHTS = (68, 16, 8, 4, 4)


def _random_quiz_attempts(
    site: _Site, rng: random.Random, quiz: _Quiz, user_id: int
) -> list[_QuizAttempt]:
    t = quiz.template
    days = site.activity_days
    count = min(rng.choices((1, 2, 3), (60, 28, 12))[0], len(days))
    attempts = []
    for number, day in enumerate(sorted(rng.sample(days, count)), start=1):
        seconds = rng.randint(300, 2400)
        start = _fit_in_day(site, rng, day, seconds)
        sumgrades = _random_sumgrades(rng, t)
        roll, pending = rng.random(), rng.random() < 0.01
        if number == count and roll < 0.05 and not t.timelimit:
            attempts.append(
                _attempt_in_progress(quiz, user_id, number, start, rng.randint(60, seconds))
            )
        elif number == count and roll < 0.1 and t.timelimit:
            attempts.append(_timed_out(site, quiz, user_id, number, start))
        elif t.essay and 0.1 <= roll < 0.16:
            attempts.append(_finished(quiz, user_id, number, start, seconds, None))
        else:
            flow = "pending" if pending else ""
            attempts.append(_finished(quiz, user_id, number, start, seconds, sumgrades, flow))
    return attempts


def _finished(
    quiz: _Quiz,
    user_id: int,
    number: int,
    start: int,
    seconds: int,
    sumgrades: Decimal | None,
    flow: str = "",
    *,
    preview: int = 0,
) -> _QuizAttempt:
    """Submitted and graded at once; `sumgrades` None = a question waits for manual grading."""
    finish = start + seconds
    graded_at = finish if sumgrades is not None else None
    return _QuizAttempt(
        quiz, user_id, number, "finished", start, finish, finish, sumgrades, preview,
        currentpage=quiz.template.slots - 1, graded_at=graded_at, flow=flow, created=start,
    )  # fmt: skip


def _attempt_in_progress(
    quiz: _Quiz, user_id: int, number: int, start: int, saved_after: int
) -> _QuizAttempt:
    page = saved_after // 120 % quiz.template.slots
    return _QuizAttempt(
        quiz, user_id, number, "inprogress", start, 0, start + saved_after, None,
        currentpage=page, created=start,
    )  # fmt: skip


def _timed_out(site: _Site, quiz: _Quiz, user_id: int, number: int, start: int) -> _QuizAttempt:
    """Time limit passed unsubmitted: the cron makes it overdue, then abandoned once the grace
    period has gone too (quiz overduehandling 'graceperiod')."""
    overdue_at = start + quiz.template.timelimit
    abandon_at = overdue_at + 86400
    if abandon_at <= site.snapshot_at:
        return _QuizAttempt(
            quiz, user_id, number, "abandoned", start, 0, abandon_at, None, created=start
        )
    return _QuizAttempt(
        quiz, user_id, number, "overdue", start, 0, overdue_at, None,
        timecheckstate=abandon_at, created=start,
    )  # fmt: skip


def _precreated_attempts(site: _Site, quiz: _Quiz) -> list[_QuizAttempt]:
    """5.0's quiz_precreate_attempts task: attempts made ahead of `timeopen`, not started."""
    at = site.calendar.at(site.two_days[1], 4, 15)
    learners = [u for u in site.learners_by_course[quiz.course_id] if u != site.deleted_user_id]
    return [
        _QuizAttempt(
            quiz, u, 1, "notstarted", 0, 0, at + n, None, flow="precreated", created=at + n
        )
        for n, u in enumerate(learners)
    ]


def _named_quiz_attempts(
    site: _Site, rng: random.Random, quiz: dict[str, _Quiz]
) -> list[_QuizAttempt]:
    """The named learners' stories in the first course (see the module docstring)."""
    early, late = site.two_days
    mid = site.mid_day
    at = site.calendar.at
    u = site.named_user_ids
    a, check, reflection, final = (
        quiz["assessment"],
        quiz["check"],
        quiz["reflection"],
        quiz["final"],
    )
    attempts = [
        _finished(a, u["zoe"], 1, at(early, 10, 5), 1500, Decimal("6.125")),
        _finished(a, u["zoe"], 2, at(late, 11, 10), 1320, Decimal("8.00000")),
        _finished(check, u["zoe"], 1, at(mid, 14, 30), 900, Decimal("13.45")),
        _finished(final, u["zoe"], 1, at(mid, 16, 0), 1200, Decimal("5.32")),
        _finished(reflection, u["zoe"], 1, at(mid, 16, 40), 300, Decimal("0.00000")),
        _finished(a, u["quoted"], 1, at(mid, 10, 20), 2100, Decimal("7.996")),
        _timed_out(site, a, u["quoted"], 2, at(late, 14, 10)),
        _finished(a, u["obrien"], 1, at(early, 9, 40), 1800, Decimal("7.5")),
        _timed_out(site, a, u["obrien"], 2, at(early, 15, 0)),
        _finished(a, u["jose"], 1, at(mid, 13, 15), 2400, None),
        _manually_graded(
            _finished(check, u["jose"], 1, at(early, 10, 30), 1100, None),
            Decimal("15.5"),
            at(late, 11, 5),
        ),
        _finished(a, u["lukasz"], 1, at(early, 11, 45), 1600, Decimal("9.0")),
        _attempt_in_progress(final, u["lukasz"], 1, at(late, 13, 0), 700),
        _finished(a, u["deleted"], 1, at(early, 12, 20), 1400, Decimal("8.5")),
        _finished(check, u["deleted"], 1, at(late, 22, 40), 700, Decimal("12.0"), "pending"),
        _finished(a, u["suspended"], 1, at(mid, 9, 50), 1700, Decimal("8.25")),
        _finished(
            check, u["suspended"], 1, at(late, 23, 40), 1110, Decimal("17.0"), "graded_by_task"
        ),
        # Not a learner's: the feed leaves out the guest and the admin's previews.
        _finished(check, GUEST_USER_ID, 1, at(mid, 12, 0), 600, Decimal("10.0")),
    ]
    for n, q in enumerate((a, check, reflection, final)):
        sumgrades = _random_sumgrades(rng, q.template)
        attempts.append(
            _finished(q, ADMIN_USER_ID, 1, at(mid, 8, 30 + 5 * n), 240, sumgrades, preview=1)
        )
    return attempts


def _manually_graded(attempt: _QuizAttempt, sumgrades: Decimal, at: int) -> _QuizAttempt:
    """A teacher marks the essay later: sumgrades set, timemodified bumped, timefinish kept."""
    return dataclasses.replace(attempt, sumgrades=sumgrades, timemodified=at, graded_at=at)


def _regrade(
    site: _Site,
    rng: random.Random,
    quiz: _Quiz,
    attempts: list[_QuizAttempt],
    forced: set[tuple[int, int]],
) -> None:
    """A teacher fixes a question's answer key on the later day; the finished attempts it
    changes get one more mark and a new timemodified (timefinish stays)."""
    at = site.calendar.at(site.two_days[1], 15, 20)
    obrien = site.named_user_ids["obrien"]
    changed = 0
    for n, attempt in enumerate(attempts):
        sumgrades = attempt.sumgrades
        eligible = (
            attempt.quiz.id == quiz.id
            and attempt.state == "finished"
            and attempt.flow != "pending"
            and not attempt.preview
            and attempt.timefinish < at
        )
        if not eligible or sumgrades is None:
            continue
        lucky = rng.random() < 0.25 and (quiz.id, attempt.userid) not in forced
        if attempt.userid == obrien or lucky:
            regraded = min(sumgrades + 1, quiz.template.sumgrades).quantize(_MARK)
            attempts[n] = dataclasses.replace(
                attempt, sumgrades=regraded, timemodified=at + changed
            )
            changed += 1


def _attempt_on_release(site: _Site, attempt: _QuizAttempt) -> _QuizAttempt | None:
    """Moodle 5.0 submits first and grades in an ad-hoc task (state `submitted` until then) and
    pre-creates attempts (`notstarted`); earlier releases grade on submission."""
    modern = site.release_at_least("5.0")
    if attempt.flow == "precreated":
        return attempt if modern else None
    if attempt.flow == "pending" and modern:
        return dataclasses.replace(attempt, state="submitted", sumgrades=None, graded_at=None)
    if attempt.flow == "graded_by_task" and modern:
        graded = attempt.timefinish + 300
        return dataclasses.replace(attempt, timemodified=graded, graded_at=graded)
    return attempt


def _attempt_record(
    attempt_id: int, a: _QuizAttempt, with_notifications: bool
) -> dict[str, object]:
    layout = ",".join(f"{slot},0" for slot in range(1, a.quiz.template.slots + 1))
    return {
        "id": attempt_id,
        "quiz": a.quiz.id,
        "userid": a.userid,
        "attempt": a.attempt,
        # question_usages ids: one per attempt, in the same order, among other components' ones.
        "uniqueid": 1000 + 3 * attempt_id + attempt_id * 7 % 3,
        "layout": layout,
        "currentpage": a.currentpage,
        "preview": a.preview,
        "state": a.state,
        "timestart": a.timestart,
        "timefinish": a.timefinish,
        "timemodified": a.timemodified,
        "timemodifiedoffline": 0,
        "timecheckstate": a.timecheckstate,
        "sumgrades": a.sumgrades,
        "gradednotificationsenttime": a.graded_at if with_notifications else None,
    }


def _quiz_grades(attempts: list[_QuizAttempt]) -> Iterator[dict[str, object]]:
    """quiz_save_best_grade(): the highest rescaled grade per learner (grademethod 1)."""
    best: dict[tuple[int, int], tuple[Decimal, int, _Quiz]] = {}
    for a in attempts:
        if a.preview or a.state != "finished" or a.sumgrades is None:
            continue
        t = a.quiz.template
        grade = a.sumgrades * t.grade / t.sumgrades if t.sumgrades else Decimal(0)
        key = (a.quiz.id, a.userid)
        previous = best.get(key)
        if previous is None:
            best[key] = (grade, a.timemodified, a.quiz)
        else:
            best[key] = (max(grade, previous[0]), max(a.timemodified, previous[1]), a.quiz)
    for n, ((quiz_id, user_id), (grade, modified, _)) in enumerate(sorted(best.items()), 1):
        yield {
            "id": n,
            "quiz": quiz_id,
            "userid": user_id,
            "grade": grade.quantize(_MARK),
            "timemodified": modified,
        }


# Face-to-face (mod_facetoface) ----------------------------------------------------------------

F2F_USER_CANCELLED, F2F_DECLINED, F2F_REQUESTED, F2F_APPROVED = 10, 30, 40, 50
F2F_WAITLISTED, F2F_BOOKED, F2F_NO_SHOW, F2F_PARTIALLY_ATTENDED = 60, 70, 80, 90
F2F_FULLY_ATTENDED = 100
_ATTENDANCE_GRADES = {F2F_NO_SHOW: 0, F2F_PARTIALLY_ATTENDED: 50, F2F_FULLY_ATTENDED: 100}

_CLASS_TITLES = (
    "Fire Safety practical: extinguishers, alarms & evacuation",
    "Information Governance workshop",
    "Moving and Handling \N{EN DASH} practical assessment",
    'Infection Prevention "hands-on" skills lab',
    "Safeguarding Adults: case-study day",
    "Leadership workshop: Managing Conflict",
    "Basic Life Support (adult), classroom",
    "Equality and Diversity discussion group",
)
_VENUES = (
    ("London", "Education Centre", "Seminar Room 2"),
    ("Leeds", "St James's Training Hub", "Skills Lab, 3rd floor"),
    ("Bristol", "Learning & Development Suite", "Room 4"),
)
_CANCEL_NOTES = ("", "", "Clashes with a night shift", 'Off sick, "will rebook"', "Annual leave")


@dataclass(frozen=True)
class _Session:
    id: int
    facetoface: int
    kind: str
    dates: tuple[tuple[int, int], ...]
    created: int


@dataclass(frozen=True)
class _FaceToFace:
    id: int
    course_id: int
    name: str
    approval: bool
    added: int
    sessions: tuple[_Session, ...]

    def session(self, kind: str) -> _Session:
        return next(s for s in self.sessions if s.kind == kind)


class _Status(NamedTuple):
    code: int
    createdby: int
    at: int
    grade: int | None = None
    note: str = ""


# Each path is the learner's and the approver's actions in order (mod/facetoface/lib.php):
# facetoface_user_signup() writes 'requested' when the activity needs approval (or
# 'waitlisted' for a session without dates); facetoface_approve_requests() writes 'approved' and
# then the booking in the same request, so both rows share one timecreated (ids keep the order).
_SIGNUP_PATHS = {
    "request_book": ("request", "approve"),
    "request_decline": ("request", "decline"),
    "request_book_cancel": ("request", "approve", "cancel"),
    "request_pending": ("request",),
    "request_book_cancel_rebook": ("request", "approve", "cancel", "request", "approve"),
    "book": ("book",),
    "book_cancel": ("book", "cancel"),
    "book_cancel_rebook": ("book", "cancel", "book"),
    "waitlist": ("waitlist",),
    "waitlist_cancel": ("waitlist", "cancel"),
}


def _fill_facetoface(site: _Site) -> None:
    """Face-to-face activities, sessions (one over two days, one with dates not yet known),
    signups and their status history as the plugin writes it."""
    rng = site.rng("facetoface")
    activities = _facetofaces(site, rng)
    site.copy_release_records("facetoface", (_facetoface_record(f) for f in activities))
    sessions = [s for f in activities for s in f.sessions]
    site.copy_records("facetoface_sessions", (_session_record(s) for s in sessions))
    dates = ((s.id, start, finish) for s in sessions for start, finish in s.dates)
    site.copy(
        "facetoface_sessions_dates",
        ("id", "sessionid", "timestart", "timefinish"),
        ((n, *d) for n, d in enumerate(dates, start=1)),
    )
    _write_session_fields(site, sessions)
    for f in activities:
        site.activities.append(
            _Activity("facetoface", f.id, f.course_id, f.name, f.added, 0, Decimal(100))
        )
    signups = _signups(site, rng, activities)
    _write_signups(site, signups)


def _facetofaces(site: _Site, rng: random.Random) -> list[_FaceToFace]:
    """One per course; every third (the first included) needs a manager's approval."""
    early, late = site.two_days
    at, one_day = site.calendar.at, datetime.timedelta(days=1)
    activities, session_ids = [], itertools.count(1)
    for n, course_id in enumerate(site.course_ids):
        added = _activity_added(course_id, site, 4, 0)
        created = site.window_start - 20 * 86400 + n * 3600
        day_after, week_after = early + one_day, late + 7 * one_day
        plan: list[tuple[str, tuple[tuple[int, int], ...]]] = [
            ("single", ((at(site.mid_day, 9, 30), at(site.mid_day, 16, 30)),)),
            ("two-day", ((at(early, 9), at(early, 12)), (at(day_after, 9), at(day_after, 12)))),
            ("future", ((at(week_after, 9, 30), at(week_after, 16, 30)),)),
            ("no-dates", ()),
        ]
        for _ in range(len(site.learners_by_course[course_id]) // 40):
            day = rng.choice(site.activity_days)
            hour = rng.choice((9, 13))
            plan.append(("extra", ((at(day, hour, 30), at(day, hour + 3)),)))
        sessions = tuple(
            _Session(next(session_ids), n + 1, kind, dates, created + k * 600)
            for k, (kind, dates) in enumerate(plan)
        )
        if n < len(_CLASS_TITLES):
            title = _CLASS_TITLES[n]
        else:
            title = f"{_course_names(site, course_id)[0]} practical"
        activities.append(_FaceToFace(n + 1, course_id, title, n % 3 == 0, added, sessions))
    return activities


def _facetoface_record(f: _FaceToFace) -> dict[str, object]:
    return {
        "id": f.id,
        "course": f.course_id,
        "name": f.name,
        "intro": f"<p>{f.name}: book a place on one of the sessions below.</p>",
        "introformat": 1,
        "thirdparty": "",
        "thirdpartywaitlist": 0,
        "display": 6,
        "confirmationsubject": "Face-to-face booking confirmation: [facetofacename], [sessiondate]",
        "confirmationinstrmngr": None,
        "confirmationmessage": "This is to confirm that you are now booked on [facetofacename].",
        "confirmationmessageformat": 1,
        "waitlistedsubject": "Waitlisting advice for [facetofacename]",
        "waitlistedmessage": "You are on the waitlist for [facetofacename].",
        "cancellationsubject": "Face-to-face booking cancellation",
        "cancellationinstrmngr": None,
        "cancellationmessage": "Your booking for [facetofacename] has been cancelled.",
        "remindersubject": "Face-to-face booking reminder: [facetofacename], [sessiondate]",
        "reminderinstrmngr": None,
        "remindermessage": "This is a reminder that you are booked on [facetofacename].",
        "reminderperiod": 2,
        "requestsubject": "Face-to-face booking request: [facetofacename]",
        "requestinstrmngr": "Please approve this request.",
        "requestmessage": "Your request to book [facetofacename] has been sent to your manager.",
        "timecreated": f.added,
        "timemodified": f.added,
        "shortname": _ascii_word(f.name)[:32],
        "showoncalendar": 1,
        "approvalreqd": int(f.approval),
        "usercalentry": 1,
        "allowcancellationsdefault": 1,
        "signuptype": 0,
        "multiplesignupmethod": 0,
        "completionattendance": 0,
    }


def _session_record(s: _Session) -> dict[str, object]:
    minutes = sum(finish - start for start, finish in s.dates) // 60
    return {
        "id": s.id,
        "facetoface": s.facetoface,
        "capacity": 20,
        "allowoverbook": int(not s.dates),
        "details": "<p>Please bring your staff ID badge.</p>",
        "datetimeknown": int(bool(s.dates)),
        "duration": minutes or 360,
        "normalcost": 0,
        "discountcost": 0,
        "allowcancellations": 1,
        "timecreated": s.created,
        "timemodified": s.created,
    }


def _write_session_fields(site: _Site, sessions: list[_Session]) -> None:
    """The Location, Venue and Room custom fields admins add (the plugin's 2009112300 upgrade
    made the same three), with each session's values."""
    fields = [(1, "Location", "location", 1), (2, "Venue", "venue", 1), (3, "Room", "room", 0)]
    site.copy(
        "facetoface_session_field",
        ("id", "name", "shortname", "type", "required", "isfilter", "showinsummary"),
        ((i, name, short, 0, 1, 1, summary) for i, name, short, summary in fields),
    )
    values = (
        (s.id, field_id, _VENUES[s.id % len(_VENUES)][field_id - 1])
        for s in sessions
        for field_id in (1, 2, 3)
    )
    site.copy(
        "facetoface_session_data",
        ("id", "sessionid", "fieldid", "data"),
        ((n, *v) for n, v in enumerate(values, start=1)),
    )


@dataclass(frozen=True)
class _Signup:
    session: _Session
    user_id: int
    statuses: tuple[_Status, ...]


def _signups(site: _Site, rng: random.Random, activities: list[_FaceToFace]) -> list[_Signup]:
    first = activities[0]
    early, late = site.two_days

    def story(session: _Session, user_id: int, path: str, **how: Any) -> _Signup:
        statuses = _signup_statuses(site, rng, session, user_id, path, **how)
        return _Signup(session, user_id, tuple(statuses))

    def named(kind: str, session_kind: str, path: str, **how: Any) -> _Signup:
        return story(first.session(session_kind), site.named_user_ids[kind], path, **how)

    signups = [
        # requested, then approved and booked in one request, all on the first activity day
        named("zoe", "future", "request_book", first_day=site.activity_days[0], same_day=True),
        named("jose", "single", "request_decline"),
        # booked on one day, cancelled on a later one
        named("lukasz", "future", "request_book_cancel", first_day=early, cancel_day=late),
        named("obrien", "no-dates", "waitlist"),
        named("quoted", "two-day", "request_book_cancel_rebook", attendance=F2F_PARTIALLY_ATTENDED),
        named("deleted", "single", "request_book", attendance=F2F_NO_SHOW),
        named("suspended", "single", "request_book", attendance=F2F_FULLY_ATTENDED),
    ]
    scripted = {s.user_id for s in signups}
    for f in activities:
        for user_id in site.learners_by_course[f.course_id]:
            if (f is first and user_id in scripted) or rng.random() >= 0.3:
                continue
            session = rng.choices(f.sessions, [_SESSION_WEIGHTS[s.kind] for s in f.sessions])[0]
            if not session.dates:
                path = rng.choices(("waitlist", "waitlist_cancel"), (85, 15))[0]
            elif f.approval:
                path = rng.choices(_APPROVAL_PATHS, (60, 8, 12, 12, 8))[0]
            else:
                path = rng.choices(("book", "book_cancel", "book_cancel_rebook"), (75, 15, 10))[0]
            signups.append(story(session, user_id, path))
    return signups


_SESSION_WEIGHTS = {"single": 40, "two-day": 25, "future": 25, "no-dates": 8, "extra": 30}
_APPROVAL_PATHS = (
    "request_book",
    "request_decline",
    "request_book_cancel",
    "request_pending",
    "request_book_cancel_rebook",
)


def _signup_statuses(
    site: _Site,
    rng: random.Random,
    session: _Session,
    user_id: int,
    path: str,
    *,
    first_day: datetime.date | None = None,
    same_day: bool = False,
    cancel_day: datetime.date | None = None,
    attendance: int | None = None,
) -> list[_Status]:
    """One learner's status rows for a session: the path's steps before the session starts
    (some the same day, some on later days), then attendance once it has ended."""
    latest = site.snapshot_at - 3 * 3600
    if session.dates:
        latest = min(latest, session.dates[0][0] - 1800)
    t = _first_signup_time(site, rng, latest, first_day)
    statuses: list[_Status] = []
    for step, action in enumerate(_SIGNUP_PATHS[path]):
        if step:
            if action == "cancel" and cancel_day is not None:
                t = max(t + 60, _fit_in_day(site, rng, cancel_day, 3600))
            else:
                t = _later(site, rng, t, latest, same_day)
        if action == "request":
            statuses.append(_Status(F2F_REQUESTED, user_id, t))
        elif action == "approve":
            statuses.append(_Status(F2F_APPROVED, ADMIN_USER_ID, t))
            statuses.append(_Status(F2F_BOOKED, user_id, t))
        elif action == "decline":
            statuses.append(_Status(F2F_DECLINED, ADMIN_USER_ID, t))
        elif action == "book":
            statuses.append(_Status(F2F_BOOKED, user_id, t))
        elif action == "waitlist":
            statuses.append(_Status(F2F_WAITLISTED, user_id, t))
        else:
            note = rng.choice(_CANCEL_NOTES)
            statuses.append(_Status(F2F_USER_CANCELLED, user_id, t, note=note))
    ended = session.dates[-1][1] if session.dates else None
    if statuses[-1].code == F2F_BOOKED and ended is not None and ended + 600 < site.snapshot_at:
        code = attendance or rng.choices(tuple(_ATTENDANCE_GRADES), (17, 8, 75))[0]
        taken = min(ended + rng.randint(600, 5400), site.snapshot_at - 1)
        statuses.append(_Status(code, ADMIN_USER_ID, taken, _ATTENDANCE_GRADES[code]))
    return statuses


def _first_signup_time(
    site: _Site, rng: random.Random, latest: int, day: datetime.date | None
) -> int:
    """Mostly on an activity day, sometimes in the week before; always before `latest`."""
    if day is None:
        candidates = [
            d for d in _signup_days(site) if site.calendar.day_start(d) + 12 * 3600 < latest
        ]
        in_window = [d for d in candidates if d >= site.spec.start]
        day = rng.choice(in_window if in_window and rng.random() < 0.85 else candidates)
    t = site.calendar.moment(rng, day)
    room_until = min(latest, site.calendar.day_end(day)) - 2 * 3600
    return max(site.calendar.day_start(day) + 60, min(t, room_until))


def _signup_days(site: _Site) -> list[datetime.date]:
    """The activity days and the week before them."""
    week_before = [site.spec.start - datetime.timedelta(days=n) for n in range(7, 0, -1)]
    return week_before + site.activity_days


def _later(site: _Site, rng: random.Random, t: int, latest: int, same_day: bool) -> int:
    """The next step: later the same local day, or on a later day, never after `latest`."""
    day = site.calendar.local_day(t)
    if not same_day and rng.random() < 0.45:
        later = [
            d
            for d in _signup_days(site)
            if d > day and site.calendar.day_start(d) + 12 * 3600 < latest
        ]
        if later:
            d = rng.choice(later)
            t = min(site.calendar.moment(rng, d), latest - rng.randint(60, 3600))
            return max(site.calendar.day_start(d) + 60, t)
    room = min(site.calendar.day_end(day) - 1, latest) - t
    if room > 120:
        return t + rng.randint(60, min(4 * 3600, room - 1))
    return t + 1


def _write_signups(site: _Site, signups: list[_Signup]) -> None:
    """Signup ids in order of their first status; status ids in time order (rows of one request
    share a timecreated, the later action the higher id); all but the newest superceded."""
    signups = sorted(signups, key=lambda s: (s.statuses[0].at, s.session.id, s.user_id))
    site.copy(
        "facetoface_signups",
        ("id", "sessionid", "userid", "mailedreminder", "discountcode", "notificationtype"),
        ((n, s.session.id, s.user_id, 0, None, 3) for n, s in enumerate(signups, start=1)),
    )
    events = sorted(
        (status.at, signup_id, step, status, step == len(s.statuses) - 1)
        for signup_id, s in enumerate(signups, start=1)
        for step, status in enumerate(s.statuses)
    )
    site.copy(
        "facetoface_signups_status",
        (
            "id",
            "signupid",
            "statuscode",
            "superceded",
            "grade",
            "note",
            "advice",
            "createdby",
            "timecreated",
        ),
        (
            (n, signup_id, st.code, int(not newest), st.grade, st.note, None, st.createdby, at)
            for n, (at, signup_id, _, st, newest) in enumerate(events, start=1)
        ),
    )


# Course modules -------------------------------------------------------------------------------

_CORE_MODULES = (
    "assign", "book", "chat", "choice", "data", "feedback", "folder", "forum", "glossary",
    "h5pactivity", "imscp", "label", "lesson", "lti", "page", "quiz", "resource", "scorm",
    "survey", "url", "wiki", "workshop",
)  # fmt: skip


def _module_names(site: _Site) -> list[str]:
    """`modules` as an install of the release leaves it: core activities in install (name)
    order, then the third-party facetoface plugin added afterwards."""
    names = set(_CORE_MODULES)
    if site.release_at_least("4.5"):
        names.add("subsection")
    if site.release_at_least("5.0"):
        names |= {"qbank"}
        names -= {"chat", "survey"}  # moved out of core in 5.0
    return [*sorted(names), "facetoface"]


def _fill_course_modules(site: _Site) -> None:
    """modules, a course_modules row and module context per activity, and the grade items."""
    module_ids = {name: n for n, name in enumerate(_module_names(site), start=1)}
    site.copy(
        "modules",
        ("id", "name", "cron", "lastcron", "search", "visible"),
        ((n, name, 0, 0, "", 1) for name, n in module_ids.items()),
    )
    activities = sorted(site.activities, key=lambda a: (a.added, module_ids[a.module], a.instance))
    site.copy_release_records(
        "course_modules",
        (
            _course_module_record(cm_id, a, module_ids[a.module])
            for cm_id, a in enumerate(activities, start=1)
        ),
    )
    # Module contexts come after the ones _fill_contexts numbered 1..n; depth = one below the course.
    first_context = site.row_counts["context"] + 1
    contexts = []
    for cm_id, a in enumerate(activities, start=1):
        context_id = first_context + cm_id - 1
        parent = site.course_context_paths[a.course_id]
        contexts.append((context_id, 70, cm_id, f"{parent}/{context_id}", parent.count("/") + 1))
    site.copy("context", ("id", "contextlevel", "instanceid", "path", "depth"), contexts)
    site.copy_records("grade_items", _grade_items(site, activities))


def _course_module_record(cm_id: int, a: _Activity, module_id: int) -> dict[str, object]:
    graded = a.gradepass > 0
    return {
        "id": cm_id,
        "course": a.course_id,
        "module": module_id,
        "instance": a.instance,
        "section": a.course_id * 10 + 1,
        "idnumber": "",
        "added": a.added,
        "score": 0,
        "indent": 0,
        "visible": 1,
        "visibleoncoursepage": 1,
        "visibleold": 1,
        "groupmode": 0,
        "groupingid": 0,
        "completion": a.completion,
        "completiongradeitemnumber": 0 if graded else None,
        "completionview": 0,
        "completionexpected": 0,
        "completionpassgrade": int(graded),
        "showdescription": 0,
        "availability": None,
        "deletioninprogress": 0,
        "downloadcontent": 1,
        "lang": None,
    }


def _grade_items(site: _Site, activities: list[_Activity]) -> Iterator[dict[str, object]]:
    """A course total item per course (its iteminstance the course's grade category), then each
    graded activity's item (itemnumber 0) in the order they were made. A quiz's item holds its
    pass mark (`gradepass`, on the quiz.grade scale; 0 = none) and grademax = quiz.grade."""
    courses = [SITE_COURSE_ID, *site.course_ids]
    category = {course_id: n for n, course_id in enumerate(courses, start=1)}
    items: list[dict[str, object]] = []
    for course_id in courses:
        created = site.installed_at + (course_id - SITE_COURSE_ID) * 86400
        items.append(
            _grade_item(course_id, None, "course", None, category[course_id], None, created)
            | {"grademax": Decimal(100), "gradepass": Decimal(0)}
        )
    for a in activities:
        if a.grademax is None:
            continue
        item = _grade_item(
            a.course_id, category[a.course_id], "mod", a.name, a.instance, 0, a.added
        )
        items.append(
            item | {"itemmodule": a.module, "grademax": a.grademax, "gradepass": a.gradepass}
        )
    items.sort(key=operator.itemgetter("timecreated"))
    for n, item in enumerate(items, start=1):
        yield {"id": n, **item, "sortorder": n}


def _grade_item(
    course_id: int,
    category_id: int | None,
    itemtype: str,
    name: str | None,
    instance: int,
    itemnumber: int | None,
    created: int,
) -> dict[str, object]:
    return {
        "courseid": course_id,
        "categoryid": category_id,
        "itemname": name,
        "itemtype": itemtype,
        "itemmodule": None,
        "iteminstance": instance,
        "itemnumber": itemnumber,
        "idnumber": "" if itemtype == "mod" else None,
        "gradetype": 1,
        "grademax": Decimal(100),
        "grademin": Decimal(0),
        "gradepass": Decimal(0),
        "timecreated": created,
        "timemodified": created,
    }


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

_NAMED_LEARNERS = (
    ("zoe", "Zoë", "Ashworth"),
    ("jose", "José", "García"),
    ("lukasz", "Łukasz", "Wiśniewski"),
    ("obrien", "Siobhán", "O'Brien"),
    ("quoted", "John", 'Smith, "Jr"'),
    ("deleted", "Megan", "Price"),
    ("suspended", "Ravi", "Kapoor"),
)
_FIRST_NAMES = (
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Sophia", "Leo",
    "Grace", "Arthur", "Lily", "Muhammad", "Freya", "Oscar", "Emily", "Charlie", "Ella", "Jacob",
    "Poppy", "Thomas", "Evie", "Aisha", "Priya", "Rohan", "Chloe", "Daniel", "Hannah", "Liam",
    "Niamh", "Ciarán", "Mateusz", "Zofia", "Renée", "François", "Anaïs", "Björn", "Chidi",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Khan", "Jackson", "Wood", "Turner",
    "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Nguyen", "Kowalski", "Müller",
    "D'Souza", "Okafor", "Ó Súilleabháin",
)  # fmt: skip
_CITIES = (
    ("London", "GB"), ("Manchester", "GB"), ("Leeds", "GB"), ("Bristol", "GB"), ("Cardiff", "GB"),
    ("Glasgow", "GB"), ("Belfast", "GB"), ("Dublin", "IE"), ("Kraków", "PL"), ("Sevilla", "ES"),
)  # fmt: skip
_DEPARTMENTS = ("Nursing", "Estates", "Pharmacy", "Human Resources", "Finance", "Radiology", "A&E")
_COURSES = (
    ("Fire Safety Awareness", "FIRE-101"),
    ("Information Governance and Data Security", "IG-2026"),
    ("Moving and Handling", "MH-L1"),
    ('Infection Prevention, "Standard Precautions"', "IPC-L2"),
    ("Safeguarding Adults \N{EN DASH} Level 2", "SGA-L2"),
    ("Équipe Leadership: Managing Conflict", "LEAD-EQ"),
    ("Basic Life Support", "BLS"),
    ("Equality, Diversity and Human Rights", "EDHR"),
)
