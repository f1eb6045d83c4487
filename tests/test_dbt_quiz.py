"""The Quiz mart, built by `dbt build` over two real Moodle schemas on a real PostgreSQL.

Expected rows are worked out here, in Python with Decimal (ROUND_HALF_UP) and zoneinfo, from the
rows the fixture inserts: quiz_rescale_grade(), the pass mark of the quiz's grade item, and which
attempt states are sent, independently of the SQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.feeds import QUIZ
from orchestration.moodle.union_views import MoodleSource, create_union_views
from synthetic_moodle import insert_rows
from tests.dbt_people import (
    COURSES,
    USERS,
    Site,
    create_site_with_people,
    identity_values,
    local_epoch,
)
from tests.dbt_support import (
    assert_build_passed,
    assert_mart_columns_are_canonical_and_documented,
    run_dbt,
)

MART = "marts.quiz_attempts"
# The quiz mart and everything it reads (with their unit and data tests), not the other feeds.
SELECT = "+quiz_attempts"
LONDON, NEW_YORK = "Europe/London", "America/New_York"
ALMOST_ZERO = Decimal("0.000005")  # grade_calculator::ALMOST_ZERO in Moodle's quiz_rescale_grade()


ACME = Site(MoodleSource("acme", "moodle_acme", "mdl_", LONDON), "4.5")
GLOBEX = Site(MoodleSource("globex", "moodle_globex", "m_", NEW_YORK), "5.0")
SITES = {site.source.client_id: site for site in (ACME, GLOBEX)}


@dataclass(frozen=True)
class Quiz:
    client: str
    id: int
    course: int
    name: str
    grade: Decimal  # quiz.grade: the maximum grade
    sumgrades: Decimal  # quiz.sumgrades: the raw maximum of marks
    decimalpoints: int
    gradepass: Decimal | None  # gradepass of its main grade item; None: no grade item
    being_deleted: bool = False  # its course module has deletioninprogress = 1


QUIZZES = [
    Quiz("acme", 1, 2, "Fire Theory", Decimal(100), Decimal(10), 1, Decimal(60)),
    Quiz("acme", 2, 3, "Lifting Drill", Decimal(10), Decimal(10), 0, None),
    Quiz("acme", 3, 2, "Survey", Decimal(10), Decimal(0), 2, Decimal(0)),  # no marks
    Quiz("acme", 4, 1, "Front Page Quiz", Decimal(10), Decimal(10), 2, None),  # site course
    Quiz("acme", 5, 3, "Essay", Decimal(20), Decimal(8), 2, Decimal(12)),
    Quiz("acme", 6, 2, "Retired Quiz", Decimal(10), Decimal(10), 2, None, being_deleted=True),
    Quiz("globex", 1, 2, "Forklift Theory", Decimal(100), Decimal(3), 2, Decimal("66.67")),
    Quiz("globex", 2, 3, "Pallet Drill", Decimal(10), Decimal(10), 1, Decimal(5)),
]


@dataclass(frozen=True)
class Attempt:
    client: str
    id: int
    quiz: int
    user: int
    attempt: int
    state: str
    sumgrades: Decimal | None
    timestart: int
    timefinish: int  # 0 while not submitted
    preview: int = 0

    @property
    def timemodified(self) -> int:
        return self.timefinish or self.timestart


def _attempt(
    client: str,
    attempt_id: int,
    quiz: int,
    user: int,
    number: int,
    state: str,
    sumgrades: str | None,
    finished: str | None,
    *,
    fold: int = 0,
    preview: int = 0,
) -> Attempt:
    """An attempt started 20 minutes before it was finished (or `finished` is its start)."""
    timezone = SITES[client].source.timezone
    marks = None if sumgrades is None else Decimal(sumgrades)
    if finished is None:
        return Attempt(client, attempt_id, quiz, user, number, state, marks, 0, 0, preview)
    end = local_epoch(finished, timezone, fold)
    if state in ("finished", "submitted"):
        return Attempt(
            client, attempt_id, quiz, user, number, state, marks, end - 1200, end, preview
        )
    return Attempt(client, attempt_id, quiz, user, number, state, marks, end, 0, preview)


ATTEMPTS = [
    # Around Europe/London's 25-hour day 2026-10-25.
    _attempt("acme", 1, 1, 3, 1, "finished", "6.125", "2026-10-25 00:30"),  # 61.25 → 61.3, passed
    _attempt("acme", 2, 1, 3, 2, "finished", "5.996", "2026-10-25 01:30", fold=1),  # 59.96 fails
    _attempt("acme", 3, 1, 5, 1, "finished", "6", "2026-10-24 23:30"),  # suspended; exactly 60
    _attempt("acme", 4, 2, 6, 1, "finished", "2.5", "2026-10-26 00:30"),  # 0 decimals: 3
    _attempt("acme", 5, 3, 7, 1, "finished", "0", "2026-10-25 12:00"),  # quiz without marks
    _attempt("acme", 6, 5, 3, 1, "finished", None, "2026-10-25 15:00"),  # needs grading
    _attempt("acme", 7, 1, 6, 1, "inprogress", None, "2026-10-25 10:00"),
    _attempt("acme", 8, 1, 7, 1, "overdue", None, "2026-10-25 10:00"),
    _attempt("acme", 9, 1, 2, 1, "abandoned", None, "2026-10-25 10:00"),
    _attempt("acme", 10, 1, 2, 2, "finished", "10", "2026-10-25 11:00", preview=1),
    _attempt("acme", 11, 1, 1, 1, "finished", "7", "2026-10-25 11:00"),  # guest
    _attempt("acme", 12, 1, 4, 1, "finished", "7", "2026-10-25 11:00"),  # deleted user
    _attempt("acme", 13, 4, 3, 1, "finished", "5", "2026-10-25 11:00"),  # site course
    _attempt("acme", 14, 2, 3, 1, "finished", "9.5", "2026-06-01 12:00"),
    _attempt("acme", 15, 5, 6, 1, "finished", "7.2", "2026-10-27 09:00"),  # 18.00 ≥ 12
    _attempt("acme", 18, 6, 3, 1, "finished", "5", "2026-10-25 11:00"),  # quiz being deleted
    # Moodle 5.0 site in New York.
    _attempt("globex", 1, 1, 3, 1, "finished", "2", "2026-10-24 19:30"),  # 66.666…: 66.67, failed
    _attempt("globex", 2, 1, 5, 1, "submitted", None, "2026-10-25 10:00"),  # awaiting grading task
    _attempt("globex", 3, 1, 6, 1, "notstarted", None, None),  # pre-created
    _attempt("globex", 4, 2, 7, 1, "finished", "5", "2026-11-01 01:30", fold=1),  # = pass mark
    _attempt("globex", 5, 2, 3, 1, "finished", "4.99", "2026-10-26 09:00"),  # shows 5.0, failed
    _attempt("globex", 6, 1, 2, 1, "finished", "3", "2026-10-25 11:00", preview=1),
    _attempt("globex", 7, 2, 6, 1, "abandoned", None, "2026-10-25 10:00"),
    _attempt("globex", 8, 99, 3, 1, "finished", "5", "2026-10-25 11:00"),  # its quiz is gone
]


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "quiz": attempt.quiz,
        "userid": attempt.user,
        "attempt": attempt.attempt,
        "uniqueid": attempt.id,
        "layout": "1,0",
        "preview": attempt.preview,
        "state": attempt.state,
        "timestart": attempt.timestart,
        "timefinish": attempt.timefinish,
        "timemodified": attempt.timemodified,
        "sumgrades": attempt.sumgrades,
    }


def _grade_item_rows(client: str) -> list[dict[str, Any]]:
    rows = [
        {
            "courseid": quiz.course,
            "itemtype": "mod",
            "itemmodule": "quiz",
            "iteminstance": quiz.id,
            "itemnumber": 0,
            "itemname": quiz.name,
            "grademax": quiz.grade,
            "gradepass": quiz.gradepass,
        }
        for quiz in QUIZZES
        if quiz.client == client and quiz.gradepass is not None
    ]
    # Not pass marks of quiz 2: the course total, a SCORM with the same instance id and, on
    # 4.3 and later, a quiz grade item (itemnumber 1).
    rows.append({"courseid": 3, "itemtype": "course", "iteminstance": 3, "gradepass": 1})
    rows.append(
        {"courseid": 3, "itemtype": "mod", "itemmodule": "scorm", "iteminstance": 2}
        | {"itemnumber": 0, "gradepass": 9}
    )
    rows.append(
        {"courseid": 3, "itemtype": "mod", "itemmodule": "quiz", "iteminstance": 2}
        | {"itemnumber": 1, "gradepass": 9}
    )
    return rows


# mdl_modules ids differ per site (the installer numbers them in order of installation).
QUIZ_MODULE_IDS = {"acme": 16, "globex": 17}
SCORM_MODULE_ID = 18


def _course_module_rows(client: str) -> list[dict[str, Any]]:
    rows = [
        {
            "course": quiz.course,
            "module": QUIZ_MODULE_IDS[client],
            "instance": quiz.id,
            "deletioninprogress": int(quiz.being_deleted),
        }
        for quiz in QUIZZES
        if quiz.client == client
    ]
    # A SCORM being deleted whose instance id is also a quiz's: not that quiz.
    rows.append({"course": 2, "module": SCORM_MODULE_ID, "instance": 1, "deletioninprogress": 1})
    return rows


def _table(site: Site, table: str) -> str:
    return f"{site.source.moodle_schema}.{site.source.table_prefix}{table}"


@pytest.fixture(scope="module")
def warehouse(module_pg: LocalPostgres) -> Iterator[psycopg.Connection]:
    """Two client schemas (4.5 with mdl_, 5.0 with m_), filled by hand, and the union views."""
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for site in (ACME, GLOBEX):
            source = site.source
            client = source.client_id

            def insert(
                table: str, rows: list[dict[str, Any]], source: MoodleSource = source
            ) -> None:
                insert_rows(conn, source.moodle_schema, table, rows, prefix=source.table_prefix)

            create_site_with_people(conn, site)
            insert(
                "quiz",
                [
                    {
                        "id": quiz.id,
                        "course": quiz.course,
                        "name": quiz.name,
                        "grade": quiz.grade,
                        "sumgrades": quiz.sumgrades,
                        "decimalpoints": quiz.decimalpoints,
                    }
                    for quiz in QUIZZES
                    if quiz.client == client
                ],
            )
            insert("grade_items", _grade_item_rows(client))
            insert(
                "modules",
                [
                    {"id": QUIZ_MODULE_IDS[client], "name": "quiz"},
                    {"id": SCORM_MODULE_ID, "name": "scorm"},
                ],
            )
            insert("course_modules", _course_module_rows(client))
            insert("quiz_attempts", [_attempt_row(a) for a in ATTEMPTS if a.client == client])
        create_union_views(conn, [ACME.source, GLOBEX.source])
        yield conn


def _run(
    pg: LocalPostgres, dirs: Path, dbt_vars: dict[str, Any] | None, select: str = SELECT
) -> None:
    """`dbt run`: the models only; their unit and data tests run once, in `first_build`."""
    run_dbt("run", dirs, pg.libpq_env(), dbt_vars, "--select", select)


def _one_day(day: str, *, record: bool = False) -> dict[str, Any]:
    """The window Dagster passes for one partition (and whether the build records the day)."""
    next_day = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    return {"min_date": day, "max_date": next_day, "record_days_built": record}


def _quantum(decimalpoints: int) -> Decimal:
    return Decimal(1).scaleb(-decimalpoints)


def expected_row(attempt: Attempt, report_date: dt.date) -> tuple[Any, ...] | None:
    """The mart row of an attempt on a report day, or None when the attempt is never sent."""
    users = {user[0]: user for user in USERS}
    courses = {course[0]: course for course in COURSES}
    quizzes = {(q.client, q.id): q for q in QUIZZES}
    quiz = quizzes.get((attempt.client, attempt.quiz))
    _, username, deleted, _ = users[attempt.user]
    if (
        attempt.state != "finished"
        or attempt.preview
        or quiz is None
        or quiz.being_deleted
        or deleted
        or username == "guest"
        or courses[quiz.course][1] == "site"
    ):
        return None
    if attempt.sumgrades is None:
        unrounded, score, status = None, None, "needs grading"
    else:
        unrounded = (
            Decimal(0)
            if quiz.sumgrades < ALMOST_ZERO
            else attempt.sumgrades * quiz.grade / quiz.sumgrades
        )
        score = str(unrounded.quantize(_quantum(quiz.decimalpoints), ROUND_HALF_UP))
        if quiz.gradepass:
            status = "passed" if unrounded >= quiz.gradepass else "failed"
        else:
            status = "finished"
    timezone = ZoneInfo(SITES[attempt.client].source.timezone)

    def local(epoch: int) -> dt.datetime | None:
        return dt.datetime.fromtimestamp(epoch, timezone).replace(tzinfo=None) if epoch else None

    return (
        attempt.client,
        report_date,
        *identity_values(attempt.user, quiz.course),
        quiz.id,
        quiz.name,
        attempt.attempt,
        score,
        str(quiz.grade.quantize(_quantum(quiz.decimalpoints), ROUND_HALF_UP)),
        status,
        local(attempt.timestart),
        local(attempt.timefinish),
    )


def sent_row(attempt: Attempt, report_date: dt.date) -> tuple[Any, ...]:
    """The mart row of an attempt that is sent."""
    row = expected_row(attempt, report_date)
    assert row is not None, attempt
    return row


def expected_first_build(min_date: str, max_date: str) -> list[tuple[Any, ...]]:
    """A first build's rows: every sent attempt on the local day it was finished."""
    first, end = dt.date.fromisoformat(min_date), dt.date.fromisoformat(max_date)
    rows = []
    for attempt in ATTEMPTS:
        timezone = ZoneInfo(SITES[attempt.client].source.timezone)
        day = dt.datetime.fromtimestamp(attempt.timefinish, timezone).date()
        row = expected_row(attempt, day)
        if row is not None and first <= day < end:
            rows.append(row)
    return sorted(rows)


SCORE, MAX_SCORE = 2 + QUIZ.column_names.index("score"), 2 + QUIZ.column_names.index("max_score")


def mart_rows(conn: psycopg.Connection, where: str = "true") -> list[tuple[Any, ...]]:
    """The mart's report day and canonical columns, scores in their text form (61.3, 3, 0.00)."""
    columns = ", ".join(["client_id", "report_date", *QUIZ.column_names])
    rows = conn.execute(f"select {columns} from {MART} where {where}").fetchall()
    return sorted(
        tuple(
            str(value) if i in (SCORE, MAX_SCORE) and value is not None else value
            for i, value in enumerate(row)
        )
        for row in rows
    )


WINDOW = {"min_date": "2026-10-24", "max_date": "2026-11-02"}


@pytest.fixture(scope="module")
def first_build(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> dict[str, Any]:
    """A first `dbt build` of WINDOW (unit tests, models, data tests): the mart's rows and results."""
    warehouse.execute(f"drop table if exists {MART}")
    run_dbt("build", dbt_dirs, module_pg.libpq_env(), WINDOW, "--select", SELECT)
    results = json.loads((dbt_dirs / "target" / "run_results.json").read_text())["results"]
    return {"rows": mart_rows(warehouse), "results": results}


def test_first_build_of_a_window_has_the_attempts_finished_on_its_local_days(
    first_build: dict[str, Any],
) -> None:
    rows = first_build["rows"]

    assert rows == expected_first_build(**WINDOW)
    # Spot checks of the rules, in case both sides got one wrong the same way.
    by_attempt = {(r[0], r[2], r[11], r[13]): r for r in rows}
    result = {key: (row[1], *row[14:17]) for key, row in by_attempt.items()}
    october = dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 26)
    assert result[("acme", 3, 1, 1)] == (october[1], "61.3", "100.0", "passed")  # 61.25
    assert result[("acme", 3, 1, 2)] == (october[1], "60.0", "100.0", "failed")  # 59.96 < 60
    assert by_attempt[("acme", 3, 1, 2)][18] == dt.datetime(2026, 10, 25, 1, 30)  # GMT 01:30
    assert result[("acme", 5, 1, 1)] == (october[0], "60.0", "100.0", "passed")  # 23:30 BST
    assert result[("acme", 6, 2, 1)] == (october[2], "3", "10", "finished")  # 2.5 at 0 d.p.
    assert result[("acme", 7, 3, 1)] == (october[1], "0.00", "10.00", "finished")  # no marks
    assert result[("acme", 3, 5, 1)] == (october[1], None, "20.00", "needs grading")
    assert result[("globex", 3, 1, 1)] == (october[0], "66.67", "100.00", "failed")  # 66.666…
    assert result[("globex", 7, 2, 1)] == (dt.date(2026, 11, 1), "5.0", "10.0", "passed")
    assert result[("globex", 3, 2, 1)] == (october[2], "5.0", "10.0", "failed")  # 4.99 < 5
    assert {(r[0], r[3]) for r in rows} == {
        ("acme", "alice"),
        ("acme", "carol"),
        ("acme", "dan"),
        ("acme", "erin"),
        ("globex", "alice"),
        ("globex", "erin"),
    }


def test_the_build_ran_every_quiz_unit_and_data_test(first_build: dict[str, Any]) -> None:
    assert len(assert_build_passed(first_build["results"], "quiz")) == 10


def test_the_mart_has_the_canonical_quiz_columns(
    warehouse: psycopg.Connection, first_build: dict[str, Any]
) -> None:
    assert_mart_columns_are_canonical_and_documented(warehouse, QUIZ)


def test_the_day_filter_can_use_indexes_on_timefinish_and_timemodified(
    warehouse: psycopg.Connection, dbt_dirs: Path, first_build: dict[str, Any]
) -> None:
    compiled = dbt_dirs / "target/compiled/outbound_data_sync/models/marts/quiz/quiz_attempts.sql"
    indexes = []
    with warehouse.transaction():
        for site in (ACME, GLOBEX):
            table = _table(site, "quiz_attempts")
            for column in ("timefinish", "timemodified"):
                # Moodle has no index on either column (moodle-schema.md §5); the warehouse
                # adds them.
                name = f"{site.source.table_prefix}quiz_attempts_{column}_test_ix"
                warehouse.execute(f"create index {name} on {table} ({column})")
                indexes.append(name)
            # A site's history: thousands of finished attempts long before the window, so
            # that an index on state is no help and only the time indexes narrow the scan.
            warehouse.execute(
                f"insert into {table} (quiz, userid, attempt, uniqueid, layout, state,"
                " timestart, timefinish, timemodified, sumgrades)"
                " select 1, 3, 100 + n, 100000 + n, '', 'finished', e - 600, e, e, 5"
                " from generate_series(1, 5000) as n,"
                " lateral (select 1700000000 + n * 600 as e) as epochs"
            )
            warehouse.execute(f"analyze {table}")
        warehouse.execute("set local enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in warehouse.execute(f"explain {compiled.read_text()}").fetchall()
        )
        raise psycopg.Rollback()  # the indexes and the history were only for the plan

    for name in indexes:
        assert f"Index Scan on {name}" in plan, plan


# The "nothing lost" rules for grades: built day by day as Dagster does, recording each day.
REGRADED = _attempt("acme", 16, 1, 7, 2, "finished", "5.5", "2026-11-10 14:00")  # 55.0 failed
GRADED_LATER = _attempt("acme", 17, 5, 7, 1, "finished", None, "2026-11-10 16:00")  # essay
SUBMITTED = _attempt("globex", 9, 2, 5, 1, "submitted", None, "2026-11-10 23:50")


def _update_attempt(conn: psycopg.Connection, attempt: Attempt, **changes: Any) -> None:
    """Change an attempt's columns as Moodle would."""
    assignments = ", ".join(f"{name} = %s" for name in changes)
    conn.execute(
        f"update {_table(SITES[attempt.client], 'quiz_attempts')} set {assignments} where id = %s",
        (*changes.values(), attempt.id),
    )


def _replace(attempt: Attempt, **changes: Any) -> Attempt:
    return Attempt(**{**attempt.__dict__, **changes})


def test_a_regraded_attempt_is_sent_again_on_the_day_the_new_grade_is_seen(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> None:
    day, next_day, day_after = dt.date(2026, 11, 10), dt.date(2026, 11, 11), dt.date(2026, 11, 12)
    new_attempts = (REGRADED, GRADED_LATER, SUBMITTED)
    for attempt in new_attempts:
        site = SITES[attempt.client].source
        insert_rows(
            warehouse,
            site.moodle_schema,
            "quiz_attempts",
            [_attempt_row(attempt)],
            prefix=site.table_prefix,
        )
    try:
        warehouse.execute(f"drop table if exists {MART}")
        _run(module_pg, dbt_dirs, _one_day(day.isoformat(), record=True))
        on_day = mart_rows(warehouse, f"report_date = '{day}'")
        assert on_day == sorted([sent_row(REGRADED, day), sent_row(GRADED_LATER, day)])
        assert [row[14:17] for row in on_day] == [
            ("55.0", "100.0", "failed"),
            (None, "20.00", "needs grading"),
        ]

        # On D + 1: a regrade (recompute_all_attempt_sumgrades() bumps timemodified, not
        # timefinish), a manual grading, and Moodle 5's grading task finishing an attempt
        # submitted on D (in New York) after D was built.
        seen = local_epoch("2026-11-11 09:00", LONDON)
        _update_attempt(warehouse, REGRADED, sumgrades=Decimal("6.5"), timemodified=seen)
        _update_attempt(warehouse, GRADED_LATER, sumgrades=Decimal("6"), timemodified=seen)
        _update_attempt(
            warehouse, SUBMITTED, state="finished", sumgrades=Decimal("8"), timemodified=seen
        )
        regraded = _replace(REGRADED, sumgrades=Decimal("6.5"))
        graded = _replace(GRADED_LATER, sumgrades=Decimal("6"))
        finished = _replace(SUBMITTED, state="finished", sumgrades=Decimal("8"))

        _run(module_pg, dbt_dirs, _one_day(next_day.isoformat(), record=True), "quiz_attempts")

        on_next_day = mart_rows(warehouse, f"report_date = '{next_day}'")
        assert on_next_day == sorted(
            [
                sent_row(regraded, next_day),
                sent_row(graded, next_day),
                sent_row(finished, next_day),
            ]
        )
        assert [row[14:17] for row in on_next_day] == [
            ("65.0", "100.0", "passed"),
            ("15.00", "20.00", "passed"),
            ("8.0", "10.0", "passed"),
        ]
        assert mart_rows(warehouse, f"report_date = '{day}'") == on_day  # D as delivered

        _run(module_pg, dbt_dirs, _one_day(day_after.isoformat(), record=True), "quiz_attempts")

        assert mart_rows(warehouse, f"report_date = '{day_after}'") == []
        keys = warehouse.execute(f"select client_id, change_key from {MART}").fetchall()
        assert len(keys) == len(set(keys)) == 5  # every grade once
    finally:
        for attempt in new_attempts:
            warehouse.execute(
                f"delete from {_table(SITES[attempt.client], 'quiz_attempts')} where id = %s",
                (attempt.id,),
            )
