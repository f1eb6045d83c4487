"""Courses and categories, users (the installer's guest and admin, then the learners),
contexts, and enrolments."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import unicodedata
from collections.abc import Iterable, Iterator

from synthetic_moodle.names import (
    _CITIES,
    _COURSES,
    _DEPARTMENTS,
    _FIRST_NAMES,
    _LAST_NAMES,
    _NAMED_LEARNERS,
)
from synthetic_moodle.spec import (
    ADMIN_USER_ID,
    GUEST_USER_ID,
    SITE_COURSE_ID,
    STUDENT_ROLE_ID,
    _Enrolment,
    _Site,
)


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
