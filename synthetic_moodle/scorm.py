"""SCORM: packages, their manifest items, and learners' tracking in the release's design."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import operator
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from synthetic_moodle.people import _ascii_word, _course_names
from synthetic_moodle.spec import (
    GUEST_USER_ID,
    SITE_COURSE_ID,
    _Activity,
    _activity_added,
    _fit_in_day,
    _Site,
)

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
