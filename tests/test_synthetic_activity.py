"""The synthetic site's SCORM, quiz and face-to-face activity: the stories the feeds depend on."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from synthetic_moodle import SiteSpec, generate_site

LONDON = ZoneInfo("Europe/London")
# 2026-03-29 is the 23-hour day when London moves to BST.
START = datetime.date(2026, 3, 28)
DAYS = 4
# SCORM rows in both designs (reference/moodle-schema.md §4.2).
TRACKS_UP_TO_42 = """
    select t.userid, t.scormid, t.scoid, t.attempt, t.element, t.value, t.timemodified
    from {schema}.mdl_scorm_scoes_track as t
"""
TRACKS_FROM_43 = """
    select a.userid, a.scormid, v.scoid, a.attempt, e.element, v.value, v.timemodified
    from {schema}.mdl_scorm_scoes_value as v
    join {schema}.mdl_scorm_attempt as a on a.id = v.attemptid
    join {schema}.mdl_scorm_element as e on e.id = v.elementid
"""
STATUS_ELEMENTS = ("cmi.core.lesson_status", "cmi.completion_status")


def _spec(schema: str, release: str, **changes: Any) -> SiteSpec:
    settings: dict[str, Any] = {"start": START, "days": DAYS, "seed": 7} | changes
    return SiteSpec(schema, release=release, **settings)


@pytest.fixture(scope="module")
def conn(module_pg: LocalPostgres) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as connection:
        generate_site(connection, _spec("moodle_v42", "4.2"))
        generate_site(connection, _spec("moodle_v50", "5.0"))
        yield connection


def _rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def _local_date(epoch: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(epoch, LONDON).date()


def _user_id(conn: psycopg.Connection[Any], schema: str, lastname: str) -> int:
    query = f"select id from {schema}.mdl_user where lastname = %s"
    [(user_id,)] = conn.execute(query, [lastname]).fetchall()
    return int(user_id)


# SCORM ----------------------------------------------------------------------------------------


def test_a_42_and_a_43_site_of_one_spec_hold_the_same_scorm_tracking(pg: LocalPostgres) -> None:
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        generate_site(connection, _spec("moodle_acme", "4.2"))
        legacy = _rows(connection, TRACKS_UP_TO_42.format(schema="moodle_acme"))
        legacy_users = _rows(connection, "select * from moodle_acme.mdl_user order by id")
        generate_site(connection, _spec("moodle_acme", "4.3"))
        normalised = _rows(connection, TRACKS_FROM_43.format(schema="moodle_acme"))
        normalised_users = _rows(connection, "select * from moodle_acme.mdl_user order by id")
        [(attempts, distinct_attempts)] = _rows(
            connection,
            "select count(*), count(distinct (userid, scormid, attempt))"
            " from moodle_acme.mdl_scorm_attempt",
        )
        old_table = _rows(connection, "select to_regclass('moodle_acme.mdl_scorm_scoes_track')")
    assert len(legacy) > 1000
    assert len(set(legacy)) == len(legacy)
    assert set(normalised) == set(legacy)
    assert len(normalised) == len(legacy)
    assert normalised_users == legacy_users
    assert attempts == distinct_attempts == len({(u, s, a) for u, s, _, a, *_ in legacy})
    assert old_table == [(None,)]


def test_scorm_element_ids_differ_from_site_to_site(pg: LocalPostgres) -> None:
    ids = []
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        for seed in (1, 2, 3):
            spec = _spec("moodle_x", "4.5", seed=seed, learners=10, days=2, courses=2)
            generate_site(connection, spec)
            ids.append(
                dict(_rows(connection, "select element, id from moodle_x.mdl_scorm_element"))
            )
    used = set(STATUS_ELEMENTS) & set(ids[0])
    assert len({tuple(sorted((e, site[e]) for e in used)) for site in ids}) > 1


def test_packages_list_the_organization_then_scos_and_assets(
    conn: psycopg.Connection[Any],
) -> None:
    scoes = _rows(
        conn,
        "select s.scorm, p.version, s.scormtype, s.launch, s.sortorder"
        " from moodle_v42.mdl_scorm_scoes as s join moodle_v42.mdl_scorm as p on p.id = s.scorm"
        " order by s.scorm, s.sortorder",
    )
    by_package: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for scorm_id, _, kind, launch, _ in scoes:
        by_package[scorm_id].append((kind, launch))
    versions = {version for _, version, *_ in scoes}
    assert versions == {"SCORM_1.2", "SCORM_1.3"}
    for items in by_package.values():
        assert items[0] == ("", "")
        assert {kind for kind, _ in items[1:]} <= {"sco", "asset"}
        assert all(launch for _, launch in items[1:])
    assert any(kind == "asset" for items in by_package.values() for kind, _ in items)


def test_opened_assets_carry_only_the_completed_status_moodle_writes_for_them(
    conn: psycopg.Connection[Any],
) -> None:
    rows = _rows(
        conn,
        "select t.element, t.value from moodle_v42.mdl_scorm_scoes_track as t"
        " join moodle_v42.mdl_scorm_scoes as s on s.id = t.scoid where s.scormtype = 'asset'",
    )
    statuses = {(element, value) for element, value in rows if element != "x.start.time"}
    assert rows
    assert statuses == {(e, "completed") for e in STATUS_ELEMENTS}


def test_scorm_statuses_cover_both_versions_with_and_without_scores(
    conn: psycopg.Connection[Any],
) -> None:
    values = defaultdict(set)
    for element, value in _rows(
        conn, "select distinct element, value from moodle_v42.mdl_scorm_scoes_track"
    ):
        values[element].add(value)
    assert values["cmi.core.lesson_status"] == {
        "passed", "completed", "failed", "incomplete", "browsed", "not attempted",
    }  # fmt: skip
    assert values["cmi.completion_status"] == {
        "completed",
        "incomplete",
        "not attempted",
        "unknown",
    }
    assert values["cmi.success_status"] == {"passed", "failed", "unknown"}
    assert {"cmi.core.score.raw", "cmi.score.raw", "cmi.score.scaled"} <= set(values)
    assert {"x.start.time", "cmi.suspend_data", "cmi.core.total_time", "cmi.total_time"} <= set(
        values
    )
    [(without_score,)] = _rows(
        conn,
        """
        select count(*) from moodle_v42.mdl_scorm_scoes_track as t
        where t.element = 'cmi.core.lesson_status' and not exists (
            select from moodle_v42.mdl_scorm_scoes_track as s
            where (s.userid, s.scoid, s.attempt) = (t.userid, t.scoid, t.attempt)
                and s.element = 'cmi.core.score.raw')
        """,
    )
    assert without_score > 0


def test_learners_have_several_attempts_and_one_revisits_an_attempt_a_day_later(
    conn: psycopg.Connection[Any],
) -> None:
    days: dict[tuple[int, int, int], set[datetime.date]] = defaultdict(set)
    elements_on_first_day: dict[tuple[int, int, int], set[str]] = defaultdict(set)
    rows = _rows(
        conn,
        "select userid, scoid, attempt, element, timemodified from moodle_v42.mdl_scorm_scoes_track",
    )
    for user_id, sco_id, attempt, _, modified in rows:
        days[(user_id, sco_id, attempt)].add(_local_date(modified))
    revisited = {key for key, seen in days.items() if len(seen) > 1}
    for user_id, sco_id, attempt, element, modified in rows:
        if (user_id, sco_id, attempt) in revisited and _local_date(modified) == min(
            days[(user_id, sco_id, attempt)]
        ):
            elements_on_first_day[(user_id, sco_id, attempt)].add(element)
    lukasz = _user_id(conn, "moodle_v42", "Wiśniewski")
    assert any(user_id == lukasz for user_id, _, _ in revisited)
    assert all("x.start.time" in elements_on_first_day[key] for key in revisited)
    assert max(attempt for _, _, attempt in days) >= 2


# Quiz -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("moodle_v42", {"finished", "inprogress", "overdue", "abandoned"}),
        (
            "moodle_v50",
            {"finished", "inprogress", "overdue", "abandoned", "notstarted", "submitted"},
        ),
    ],
)
def test_quiz_attempt_states_are_the_releases_own(
    conn: psycopg.Connection[Any], schema: str, expected: set[str]
) -> None:
    states = {
        state for (state,) in _rows(conn, f"select distinct state from {schema}.mdl_quiz_attempts")
    }
    assert states == expected


def test_5_0_submitted_attempts_wait_for_grading_and_not_started_ones_have_no_times(
    conn: psycopg.Connection[Any],
) -> None:
    rows = _rows(
        conn,
        "select state, timestart, timefinish, sumgrades from moodle_v50.mdl_quiz_attempts"
        " where state in ('submitted', 'notstarted')",
    )
    assert all(sumgrades is None for *_, sumgrades in rows)
    assert all(finish > 0 for state, _, finish, _ in rows if state == "submitted")
    assert all(
        (start, finish) == (0, 0) for state, start, finish, _ in rows if state == "notstarted"
    )


def test_previews_are_finished_attempts_of_the_admin(conn: psycopg.Connection[Any]) -> None:
    previews = _rows(
        conn, "select userid, state from moodle_v42.mdl_quiz_attempts where preview = 1"
    )
    assert previews
    assert set(previews) == {(2, "finished")}


def test_a_regraded_attempt_changes_on_a_later_local_day_than_it_finished(
    conn: psycopg.Connection[Any],
) -> None:
    obrien = _user_id(conn, "moodle_v42", "O'Brien")
    rows = _rows(
        conn,
        "select userid, timefinish, timemodified, sumgrades from moodle_v42.mdl_quiz_attempts"
        " where state = 'finished' and sumgrades is not null",
    )
    later = [
        (user_id, sumgrades)
        for user_id, finish, modified, sumgrades in rows
        if _local_date(modified) > _local_date(finish)
    ]
    assert (obrien, Decimal("8.50000")) in later


def test_quizzes_exercise_rescaling_half_up_rounding_pass_marks_and_no_marks(
    conn: psycopg.Connection[Any],
) -> None:
    quizzes = {
        quiz_id: (sumgrades, grade, decimals, gradepass)
        for quiz_id, sumgrades, grade, decimals, gradepass in _rows(
            conn,
            "select q.id, q.sumgrades, q.grade, q.decimalpoints, g.gradepass"
            " from moodle_v42.mdl_quiz as q join moodle_v42.mdl_grade_items as g"
            " on g.itemtype = 'mod' and g.itemmodule = 'quiz' and g.iteminstance = q.id"
            " and g.itemnumber = 0 and g.courseid = q.course and g.grademax = q.grade",
        )
    }
    attempts = _rows(
        conn,
        "select quiz, sumgrades from moodle_v42.mdl_quiz_attempts"
        " where state = 'finished' and preview = 0",
    )
    ties = []
    for quiz_id, sumgrades in attempts:
        raw_max, grade, decimals, _ = quizzes[quiz_id]
        if sumgrades is None or not raw_max:
            continue
        scaled = sumgrades * grade / raw_max
        step = Decimal(1).scaleb(-decimals)
        if scaled.quantize(step, ROUND_HALF_UP) != scaled.quantize(step):
            ties.append((quiz_id, scaled))
    assert len(quizzes) == len(_rows(conn, "select id from moodle_v42.mdl_quiz"))
    assert (1, Decimal("61.25")) in ties
    assert {d for _, _, d, _ in quizzes.values()} == {0, 1, 2}
    assert any(p > 0 for *_, p in quizzes.values()) and any(p == 0 for *_, p in quizzes.values())
    assert [s for s, *_ in quizzes.values()].count(0) == 1
    assert any(sumgrades is None for _, sumgrades in attempts)


def test_attempt_numbers_and_question_usages_are_unique(conn: psycopg.Connection[Any]) -> None:
    for schema in ("moodle_v42", "moodle_v50"):
        [(count, keys, usages)] = _rows(
            conn,
            f"select count(*), count(distinct (quiz, userid, attempt)), count(distinct uniqueid)"
            f" from {schema}.mdl_quiz_attempts",
        )
        assert count == keys == usages


# Face-to-face ---------------------------------------------------------------------------------


def _status_history(conn: psycopg.Connection[Any]) -> dict[int, list[tuple[Any, ...]]]:
    history: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in _rows(
        conn,
        "select signupid, id, statuscode, superceded, grade, timecreated"
        " from moodle_v42.mdl_facetoface_signups_status order by signupid, timecreated, id",
    ):
        history[row[0]].append(row[1:])
    return history


def test_only_the_latest_status_of_a_signup_is_not_superceded(
    conn: psycopg.Connection[Any],
) -> None:
    history = _status_history(conn)
    signups = {
        signup_id
        for (signup_id,) in _rows(conn, "select id from moodle_v42.mdl_facetoface_signups")
    }
    assert set(history) == signups
    for rows in history.values():
        assert [superceded for _, _, superceded, _, _ in rows] == [1] * (len(rows) - 1) + [0]


def test_status_codes_and_attendance_grades_are_the_plugins(conn: psycopg.Connection[Any]) -> None:
    rows = [row for rows in _status_history(conn).values() for row in rows]
    codes = {code for _, code, *_ in rows}
    grades = {(code, grade) for _, code, _, grade, _ in rows}
    assert codes == {10, 30, 40, 50, 60, 70, 80, 90, 100}
    assert {(c, g) for c, g in grades if c >= 80} == {
        (80, Decimal(0)), (90, Decimal(50)), (100, Decimal(100)),
    }  # fmt: skip
    assert all(g is None for c, g in grades if c < 80)


def test_signups_change_several_times_in_one_day_and_across_days(
    conn: psycopg.Connection[Any],
) -> None:
    history = _status_history(conn)
    same_day, across_days, same_second = 0, 0, 0
    for rows in history.values():
        days = [_local_date(t) for *_, t in rows]
        same_day += len(days) != len(set(days))
        across_days += len(set(days)) > 1
        times = [t for *_, t in rows]
        same_second += len(times) != len(set(times))
    zoe = _user_id(conn, "moodle_v42", "Ashworth")
    [zoe_signup] = [
        s
        for (s,) in _rows(
            conn, f"select id from moodle_v42.mdl_facetoface_signups where userid = {zoe}"
        )
    ]
    zoe_rows = history[zoe_signup]
    assert same_day and across_days and same_second
    assert [code for _, code, *_ in zoe_rows] == [40, 50, 70]
    assert len({_local_date(t) for *_, t in zoe_rows}) == 1
    assert zoe_rows[1][-1] == zoe_rows[2][-1] and zoe_rows[1][0] < zoe_rows[2][0]


def test_sessions_have_one_date_several_dates_or_none(conn: psycopg.Connection[Any]) -> None:
    rows = _rows(
        conn,
        "select s.datetimeknown, count(d.id) from moodle_v42.mdl_facetoface_sessions as s"
        " left join moodle_v42.mdl_facetoface_sessions_dates as d on d.sessionid = s.id"
        " group by s.id, s.datetimeknown",
    )
    assert (0, 0) in rows
    assert (1, 1) in rows
    assert any(known == 1 and dates > 1 for known, dates in rows)
    assert all(dates > 0 for known, dates in rows if known)


# Everyone and everything ----------------------------------------------------------------------


def test_deleted_and_suspended_learners_have_activity_of_every_kind(
    conn: psycopg.Connection[Any],
) -> None:
    for user_filter in ("deleted = 1", "suspended = 1"):
        [(user_id,)] = _rows(conn, f"select id from moodle_v42.mdl_user where {user_filter}")
        [counts] = _rows(
            conn,
            f"""
            select
                (select count(*) from moodle_v42.mdl_scorm_scoes_track where userid = {user_id}),
                (select count(*) from moodle_v42.mdl_quiz_attempts where userid = {user_id}),
                (select count(*) from moodle_v42.mdl_facetoface_signups where userid = {user_id})
            """,
        )
        assert all(counts), (user_filter, counts)


def test_every_activity_has_a_course_module_and_a_module_context(
    conn: psycopg.Connection[Any],
) -> None:
    instances = set(
        _rows(
            conn,
            "select 'scorm', id, course from moodle_v42.mdl_scorm"
            " union all select 'quiz', id, course from moodle_v42.mdl_quiz"
            " union all select 'facetoface', id, course from moodle_v42.mdl_facetoface",
        )
    )
    modules = _rows(
        conn,
        "select m.name, cm.instance, cm.course, cm.deletioninprogress,"
        " c.path = cc.path || '/' || c.id and c.depth = cc.depth + 1"
        " from moodle_v42.mdl_course_modules as cm"
        " join moodle_v42.mdl_modules as m on m.id = cm.module"
        " join moodle_v42.mdl_context as c on c.contextlevel = 70 and c.instanceid = cm.id"
        " join moodle_v42.mdl_context as cc on cc.contextlevel = 50 and cc.instanceid = cm.course",
    )
    assert {(name, instance, course) for name, instance, course, *_ in modules} == instances
    assert len(modules) == len(instances)
    assert {deleting for *_, deleting, _ in modules} == {0}
    assert all(under_course for *_, under_course in modules)


def test_the_guest_and_the_site_course_have_activity_for_the_feeds_to_leave_out(
    conn: psycopg.Connection[Any],
) -> None:
    [(guest_tracks, guest_attempts, site_tracks, site_attempts)] = _rows(
        conn,
        """
        select
            (select count(*) from moodle_v42.mdl_scorm_scoes_track where userid = 1),
            (select count(*) from moodle_v42.mdl_quiz_attempts where userid = 1),
            (select count(*) from moodle_v42.mdl_scorm_scoes_track as t
                join moodle_v42.mdl_scorm as s on s.id = t.scormid where s.course = 1),
            (select count(*) from moodle_v42.mdl_quiz_attempts as a
                join moodle_v42.mdl_quiz as q on q.id = a.quiz where q.course = 1)
        """,
    )
    assert guest_tracks and guest_attempts and site_tracks and site_attempts


_ACTIVITY_TABLES = (
    "scorm",
    "scorm_scoes",
    "scorm_attempt",
    "scorm_element",
    "scorm_scoes_value",
    "quiz",
    "quiz_attempts",
    "grade_items",
    "course_modules",
    "facetoface_sessions_dates",
    "facetoface_signups",
    "facetoface_signups_status",
)


def test_same_seed_gives_the_same_activity_and_another_seed_different_activity(
    pg: LocalPostgres,
) -> None:
    def snapshot(connection: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
        return {
            t: _rows(connection, f"select * from moodle_a.mdl_{t} order by id")
            for t in _ACTIVITY_TABLES
        }

    spec = _spec("moodle_a", "4.4", learners=15, days=2, courses=3)
    with psycopg.connect(pg.conninfo(), autocommit=True) as connection:
        generate_site(connection, spec)
        first = snapshot(connection)
        generate_site(connection, SiteSpec(**{**spec.__dict__, "seed": 8}))
        other = snapshot(connection)
        generate_site(connection, spec)
        again = snapshot(connection)
    assert again == first
    assert other["scorm_scoes_value"] != first["scorm_scoes_value"]
    assert other["quiz_attempts"] != first["quiz_attempts"]
    assert other["facetoface_signups_status"] != first["facetoface_signups_status"]


def test_activity_falls_in_the_window_or_the_week_before_and_before_the_nightly_read(
    conn: psycopg.Connection[Any],
) -> None:
    first_day = START - datetime.timedelta(days=7)
    window_end = START + datetime.timedelta(days=DAYS)
    nightly_read = datetime.datetime.combine(window_end, datetime.time(3), LONDON).timestamp()
    [(oldest, newest)] = _rows(
        conn,
        """
        select min(t), max(t) from (
            select timemodified as t from moodle_v50.mdl_scorm_scoes_value
            union all select timemodified from moodle_v50.mdl_quiz_attempts
            union all select timecreated from moodle_v50.mdl_facetoface_signups_status
        ) as activity
        """,
    )
    assert _local_date(oldest) >= first_day
    assert newest < nightly_read
