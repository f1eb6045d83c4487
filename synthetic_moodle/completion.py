"""Course completions: done on the activity days, in progress, the peak day, the edge cases."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from synthetic_moodle.people import _peak_enrolled_at, _peak_pairs
from synthetic_moodle.spec import GUEST_USER_ID, SITE_COURSE_ID, _Enrolment, _Site

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
