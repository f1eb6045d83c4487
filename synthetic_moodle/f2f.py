"""Face-to-face (mod_facetoface): activities, sessions, signups and their status history."""

from __future__ import annotations

import datetime
import itertools
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from synthetic_moodle.people import _ascii_word, _course_names
from synthetic_moodle.spec import (
    ADMIN_USER_ID,
    _Activity,
    _activity_added,
    _fit_in_day,
    _Site,
)

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
