"""A synthetic Moodle site: the real tables of a chosen release, filled with seeded, realistic data.

The local default run, the tests and the benchmarks need Moodle sites that behave like real ones
where the feeds are fragile: the guest user (id 1) and the site course (id 1) that every feed must
skip, a deleted user whose identity Moodle has overwritten, a suspended user who still counts,
names that exercise CSV quoting and UTF-8, and completions just either side of local midnight.

Everything is derived from `SiteSpec` alone (no wall clock), so a seed always gives the same rows.
Each area of the site (people, courses, enrolments, completions, ...) is one fill function with its
own random stream, so adding an area later does not change the rows of the others. Rows go in with
COPY and the indexes are built afterwards, which keeps a million completions well under a minute.
"""

from __future__ import annotations

import bisect
import datetime
import hashlib
import itertools
import math
import operator
import random
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property
from typing import Any
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

    def day_start(self, day: datetime.date) -> int:
        return int(datetime.datetime.combine(day, datetime.time(0), self.zone).timestamp())

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
    for course_id in site.course_ids:
        parent, context_id = category_context[site.category_of_course[course_id]], next(ids)
        rows.append((context_id, 50, course_id, f"/1/{parent}/{context_id}", 3))
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


_FILLS: tuple[Callable[[_Site], None], ...] = (
    _fill_courses,
    _fill_users,
    _fill_contexts,
    _fill_enrolments,
    _fill_completions,
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
