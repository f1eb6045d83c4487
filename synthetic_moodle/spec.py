"""What to generate (`SiteSpec`), what was generated (`SiteSummary`), and what the fill
functions share: Moodle's fixed ids, the site's calendar, the `_Site` context and the
helpers every activity uses."""

from __future__ import annotations

import bisect
import datetime
import itertools
import operator
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from orchestration.moodle.schema import create_moodle_indexes, moodle_tables, release_key
from synthetic_moodle.names import _NAMED_LEARNERS
from synthetic_moodle.rows import _Table

GUEST_USER_ID = 1
ADMIN_USER_ID = 2
SITE_COURSE_ID = 1
STUDENT_ROLE_ID = 5
# The fewest learners a site can have: the named edge-case learners of the scripted stories.
MIN_LEARNERS = len(_NAMED_LEARNERS)


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
        if self.learners < MIN_LEARNERS:
            raise ValueError(
                f"learners must be at least {MIN_LEARNERS} (the named edge-case learners), "
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
