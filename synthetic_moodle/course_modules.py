"""Course modules: `modules`, a `course_modules` row and module context per activity, and
the grade items."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from decimal import Decimal

from synthetic_moodle.spec import SITE_COURSE_ID, _Activity, _Site

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
