"""The Face to face mart, built by `dbt build` over two real Moodle schemas on a real PostgreSQL.

Two clients: a Moodle 3.11 site (prefix mdl_, Europe/London) and a 4.3 site (prefix m_,
America/New_York), each with hand-made face-to-face activities, sessions (several dates, none),
signups and status histories. Expected rows are worked out here, in Python with zoneinfo, from
the rows the fixture inserts: a signup is in local day D when a status row was created in D, with
the last of D (latest timecreated, then highest id).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml

from ods_local.postgres import LocalPostgres
from orchestration.feeds import F2F
from orchestration.moodle.union_views import MoodleSource
from orchestration.paths import DBT_PROJECT_DIR
from tests.dbt_people import Site, identity_values, insert_site_rows, local_epoch
from tests.dbt_support import (
    assert_build_passed,
    assert_mart_columns_are_canonical_and_documented,
    sent,
    sites_with_people,
)
from tests.dbt_support import run_dbt as shared_run_dbt
from tests.expected_feeds import F2F_STATUS_NAMES

MART = "marts.f2f_signup_status_changes"
LONDON, NEW_YORK = "Europe/London", "America/New_York"
STATUS_TABLE = "facetoface_signups_status"


ACME = Site(MoodleSource("acme", "moodle_acme", "mdl_", LONDON), "3.11")
GLOBEX = Site(MoodleSource("globex", "moodle_globex", "m_", NEW_YORK), "4.3")
SITES = {site.source.client_id: site for site in (ACME, GLOBEX)}

# facetoface id -> course, name (the class title)
ACTIVITIES = {
    1: (2, "Fire Warden Workshop"),
    2: (3, "Manual Handling Practical"),
    3: (1, "Site Induction"),  # in the site course: never sent
    4: (2, "Retired Workshop"),  # its course module is being deleted: never sent
}
BEING_DELETED = {4}
# mdl_modules ids differ per site; a quiz being deleted has the same instance id as activity 1.
F2F_MODULE_ID, QUIZ_MODULE_ID = 21, 16


@dataclass(frozen=True)
class Session:
    id: int
    facetoface: int
    starts: tuple[str, ...]  # local start of each date (3 hours each), in the order written
    datetime_known: bool = True


# The same sessions at both clients, in each client's own time zone.
SESSIONS = [
    # Two days, the later one written first; the first starts on London's 25-hour day.
    Session(10, 1, ("2026-10-26 09:00", "2026-10-25 13:00")),
    Session(11, 1, (), datetime_known=False),  # wait-list only: no dates
    # 00:30 local: in London (BST) the day before in UTC; in New York the same UTC day.
    Session(12, 2, ("2026-06-10 00:30",)),
    # 21:00 local: the next UTC day in New York.
    Session(14, 2, ("2026-06-12 21:00", "2026-06-13 21:00")),
    Session(13, 3, ("2026-11-02 09:00",)),
    Session(15, 4, ("2026-10-30 09:00",)),
]
SIGNUPS = [  # client, signup id, session id, user id
    ("acme", 100, 10, 3),
    ("acme", 101, 11, 5),
    ("acme", 102, 12, 6),
    ("acme", 103, 13, 3),  # site course
    ("acme", 104, 10, 4),  # deleted user
    ("acme", 105, 10, 1),  # guest
    ("acme", 106, 10, 7),
    ("acme", 107, 15, 6),  # activity being deleted
    ("globex", 200, 10, 3),
    ("globex", 201, 11, 6),
    ("globex", 202, 14, 5),
    ("globex", 203, 12, 7),
    ("globex", 204, 15, 3),  # activity being deleted
]


@dataclass(frozen=True)
class Status:
    client: str
    id: int
    signup: int
    local: str  # local time of timecreated in the client's time zone
    code: int
    fold: int = 0  # 1: the second of a repeated local time (clocks going back)

    @property
    def timezone(self) -> str:
        return SITES[self.client].source.timezone

    @property
    def epoch(self) -> int:
        return local_epoch(self.local, self.timezone, self.fold)

    @property
    def local_time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.epoch, ZoneInfo(self.timezone)).replace(tzinfo=None)


D0, D1, D2 = dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 26)
END = dt.date(2026, 10, 27)  # the fixture's window: D0 <= D < END
STATUSES = [
    # acme (London): requested, then approved and booked in the same second (highest id wins),
    # cancelled in the second 01:30 of 2026-10-25 (GMT), booked again the day after.
    Status("acme", 1001, 100, "2026-10-24 09:00", 40),
    Status("acme", 1002, 100, "2026-10-24 11:00", 50),
    Status("acme", 1003, 100, "2026-10-24 11:00", 70),
    Status("acme", 1004, 100, "2026-10-25 01:30", 10, fold=1),
    Status("acme", 1005, 100, "2026-10-26 10:00", 70),
    Status("acme", 1010, 101, "2026-10-24 23:30", 60),  # suspended learner, 23:30 BST
    Status("acme", 1020, 102, "2026-10-25 00:30", 70),  # 2026-10-24T23:30Z
    Status("acme", 1021, 102, "2026-10-25 23:30", 100),  # hour 25 of the day: last
    Status("acme", 1022, 102, "2026-10-25 12:00", 90),  # higher id, earlier: not last
    Status("acme", 1030, 103, "2026-10-25 10:00", 70),  # site course
    Status("acme", 1040, 104, "2026-10-25 10:00", 70),  # deleted user
    Status("acme", 1050, 105, "2026-10-25 10:00", 70),  # guest
    Status("acme", 1060, 106, "2026-10-23 23:59:59", 70),  # the day before the window
    Status("acme", 1061, 106, "2026-10-27 00:00", 30),  # the day after it
    Status("acme", 1062, 106, "2026-06-01 10:00", 40),
    Status("acme", 1070, 107, "2026-10-25 14:00", 70),  # activity being deleted
    # globex (New York): 19:30 EDT on 2026-10-24 is 00:30 on 2026-10-25 in London.
    Status("globex", 2001, 200, "2026-10-24 19:30", 70),
    Status("globex", 2002, 200, "2026-10-24 21:00", 10),
    Status("globex", 2010, 201, "2026-10-25 08:00", 60),
    Status("globex", 2011, 201, "2026-10-26 08:00", 70),
    Status("globex", 2020, 202, "2026-10-26 10:00", 40),
    Status("globex", 2021, 202, "2026-10-26 10:00", 30),  # same second, higher id: declined
    Status("globex", 2030, 203, "2026-10-25 23:59:59", 80),
    Status("globex", 2031, 203, "2026-10-26 00:00", 90),
    Status("globex", 2040, 204, "2026-10-25 14:00", 70),  # activity being deleted
]
# Rows replicated late: created on D0 after that day's last row of their signup, seen after D0
# was built. Signup 100 also changed on D1; the others did not.
LATE_STATUSES = [
    Status("acme", 1100, 100, "2026-10-24 15:00", 10),
    Status("acme", 1101, 101, "2026-10-24 23:45", 70),
    Status("globex", 2100, 200, "2026-10-24 22:00", 70),
]


def _status_rows(statuses: list[Status]) -> list[dict[str, Any]]:
    """Status rows as the plugin leaves them: all but each signup's newest row superceded."""
    newest: dict[tuple[str, int], Status] = {}
    for status in statuses:
        key = (status.client, status.signup)
        if key not in newest or (status.epoch, status.id) > (newest[key].epoch, newest[key].id):
            newest[key] = status
    return [
        {
            "id": status.id,
            "signupid": status.signup,
            "statuscode": status.code,
            "superceded": int(newest[(status.client, status.signup)] != status),
            "grade": {80: 0, 90: 50, 100: 100}.get(status.code),
            "createdby": 2,
            "timecreated": status.epoch,
        }
        for status in statuses
    ]


def _insert_statuses(conn: psycopg.Connection, statuses: list[Status]) -> None:
    for client, site in SITES.items():
        insert_site_rows(
            conn, site, STATUS_TABLE, _status_rows([s for s in statuses if s.client == client])
        )


def _delete_statuses(conn: psycopg.Connection, statuses: list[Status]) -> None:
    for status in statuses:
        site = SITES[status.client].source
        conn.execute(
            f"delete from {site.moodle_schema}.{site.table_prefix}{STATUS_TABLE} where id = %s",
            (status.id,),
        )


@pytest.fixture(scope="module")
def warehouse(module_pg: LocalPostgres) -> Iterator[psycopg.Connection]:
    """Two client schemas (3.11 with mdl_, 4.3 with m_), filled by hand, and the union views."""
    with sites_with_people(module_pg, [ACME, GLOBEX]) as conn:
        for client, site in SITES.items():
            insert_site_rows(
                conn,
                site,
                "facetoface",
                [{"id": i, "course": c, "name": n} for i, (c, n) in ACTIVITIES.items()],
            )
            insert_site_rows(
                conn,
                site,
                "modules",
                [
                    {"id": F2F_MODULE_ID, "name": "facetoface"},
                    {"id": QUIZ_MODULE_ID, "name": "quiz"},
                ],
            )
            insert_site_rows(
                conn,
                site,
                "course_modules",
                [
                    {
                        "course": course,
                        "module": F2F_MODULE_ID,
                        "instance": activity,
                        "deletioninprogress": int(activity in BEING_DELETED),
                    }
                    for activity, (course, _) in ACTIVITIES.items()
                ]
                + [{"course": 3, "module": QUIZ_MODULE_ID, "instance": 1, "deletioninprogress": 1}],
            )
            insert_site_rows(
                conn,
                site,
                "facetoface_sessions",
                [
                    {
                        "id": s.id,
                        "facetoface": s.facetoface,
                        "datetimeknown": int(s.datetime_known),
                        "capacity": 10,
                    }
                    for s in SESSIONS
                ],
            )
            tz = site.source.timezone
            insert_site_rows(
                conn,
                site,
                "facetoface_sessions_dates",
                [
                    {
                        "sessionid": s.id,
                        "timestart": local_epoch(start, tz),
                        "timefinish": local_epoch(start, tz) + 3 * 3600,
                    }
                    for s in SESSIONS
                    for start in s.starts
                ],
            )
            insert_site_rows(
                conn,
                site,
                "facetoface_signups",
                [
                    {"id": signup, "sessionid": session, "userid": user, "notificationtype": 3}
                    for c, signup, session, user in SIGNUPS
                    if c == client
                ],
            )
            # What the warehouse adds on the replica: Moodle has no index on timecreated.
            schema, prefix = site.source.moodle_schema, site.source.table_prefix
            conn.execute(
                f"create index {prefix}f2f_status_timecreated"
                f" on {schema}.{prefix}{STATUS_TABLE} (timecreated)"
            )
        _insert_statuses(conn, STATUSES)
        yield conn


def run_dbt(
    command: str, dirs: Path, env: dict[str, str], dbt_vars: dict[str, Any], *extra: str
) -> Path:
    """Run dbt; returns its target folder, one per set of vars.

    dbt parses the whole project again whenever the vars differ from its last run in the same
    target folder (no partial parsing), which takes seconds; builds that repeat a window reuse
    their folder's parse.
    """
    key = "_".join(f"{name}-{value}" for name, value in sorted(dbt_vars.items()))
    target = dirs / f"target_{key}"
    shared_run_dbt(command, dirs, env, dbt_vars, *extra, target=target)
    return target


def build(
    pg: LocalPostgres, dirs: Path, first: dt.date, end: dt.date, *, record: bool = False
) -> None:
    """Build the F2F mart alone (its upstream views exist) for report days first <= D < end."""
    dbt_vars = {"min_date": first.isoformat(), "max_date": end.isoformat()}
    run_dbt("run", dirs, pg.libpq_env(), {**dbt_vars, "record_days_built": record}, "-s", F2F.mart)


@dataclass(frozen=True)
class FirstBuild:
    results: list[dict[str, Any]]
    compiled_mart: str


@pytest.fixture(scope="module")
def first_build(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> FirstBuild:
    """`dbt build` of the mart and everything upstream for D0 <= D < END, with all their tests."""
    warehouse.execute(f"drop table if exists {MART}")
    window = {"min_date": D0.isoformat(), "max_date": END.isoformat()}
    target = run_dbt("build", dbt_dirs, module_pg.libpq_env(), window, "-s", f"+{F2F.mart}")
    compiled = target / "compiled/outbound_data_sync/models/marts/f2f" / f"{F2F.mart}.sql"
    return FirstBuild(
        results=json.loads((target / "run_results.json").read_text())["results"],
        compiled_mart=compiled.read_text(),
    )


def _row(client: str, report_date: dt.date, status: Status) -> tuple[Any, ...] | None:
    """The mart row (report day and canonical columns) that sends `status`; None if never sent."""
    _, _, session_id, user_id = next(s for s in SIGNUPS if s[0] == client and s[1] == status.signup)
    session = next(s for s in SESSIONS if s.id == session_id)
    course_id, class_title = ACTIVITIES[session.facetoface]
    if not sent(user_id, course_id) or session.facetoface in BEING_DELETED:
        return None
    tz = ZoneInfo(SITES[client].source.timezone)
    starts = [
        dt.datetime.fromtimestamp(local_epoch(start, tz.key), tz).replace(tzinfo=None)
        for start in session.starts
    ]
    session_start = min(starts) if session.datetime_known and starts else None
    return (
        client,
        report_date,
        f"{status.signup}:{status.id}",
        str(status.signup),
        *identity_values(user_id, course_id),
        class_title,
        session_id,
        session_start.date() if session_start else None,
        session_start,
        F2F_STATUS_NAMES[status.code],
        status.local_time,
    )


def expected_rows(
    first: dt.date, end: dt.date, statuses: list[Status] = STATUSES
) -> list[tuple[Any, ...]]:
    """Each signup on each local day first <= D < end with status rows, with the day's last."""
    last_of_day: dict[tuple[str, int, dt.date], Status] = {}
    for status in statuses:
        key = (status.client, status.signup, status.local_time.date())
        latest = last_of_day.get(key)
        if latest is None or (status.epoch, status.id) > (latest.epoch, latest.id):
            last_of_day[key] = status
    rows = [
        _row(client, day, status)
        for (client, _, day), status in last_of_day.items()
        if first <= day < end
    ]
    return sorted(row for row in rows if row is not None)


def mart_rows(conn: psycopg.Connection, day: dt.date | None = None) -> list[tuple[Any, ...]]:
    columns = ", ".join(["client_id", "report_date", "change_key", "entity_key", *F2F.column_names])
    where = "" if day is None else " where report_date = %s"
    return sorted(
        conn.execute(f"select {columns} from {MART}{where}", () if day is None else (day,))
    )


def _one_day(day: dt.date) -> tuple[dt.date, dt.date]:
    return day, day + dt.timedelta(days=1)


def test_the_build_ran_every_unit_and_data_test(first_build: FirstBuild) -> None:
    assert len(assert_build_passed(first_build.results, "f2f")) >= 11


def test_first_build_of_a_window_sends_each_signup_with_its_last_status_of_each_day(
    warehouse: psycopg.Connection, first_build: FirstBuild
) -> None:
    rows = mart_rows(warehouse)

    assert rows == expected_rows(D0, END)
    # Spot checks of the rules, in case both sides got one wrong the same way.
    by_key = {(r[0], r[2]): r for r in rows}
    assert {key for key in by_key if key[1].startswith("100:")} == {
        ("acme", "100:1003"),  # booked: same second as approved, higher id
        ("acme", "100:1004"),  # cancelled at the second 01:30 of 2026-10-25
        ("acme", "100:1005"),
    }
    assert by_key["acme", "100:1003"][1] == D0
    cancelled = by_key["acme", "100:1004"]
    assert (cancelled[1], cancelled[-1]) == (D1, dt.datetime(2026, 10, 25, 1, 30))
    # The earlier of the session's two dates, though written second.
    assert cancelled[15:17] == (dt.date(2026, 10, 25), dt.datetime(2026, 10, 25, 13, 0))
    attended = by_key["acme", "102:1021"]  # 23:30 GMT, hour 25 of the day
    assert (attended[1], attended[-2]) == (D1, "fully attended")
    assert attended[15:17] == (dt.date(2026, 6, 10), dt.datetime(2026, 6, 10, 0, 30))
    assert by_key["acme", "101:1010"][15:18] == (None, None, "waitlisted")  # no dates
    assert by_key["globex", "200:2002"][1] == D0  # 21:00 EDT on 2026-10-24
    declined = by_key["globex", "202:2021"]
    assert (declined[-2], declined[15]) == ("declined", dt.date(2026, 6, 12))  # 21:00 EDT
    assert {r[3] for r in rows if r[0] == "acme"} == {"100", "101", "102"}  # 103-105 never
    assert not [r for r in rows if r[3] == "106"]  # outside the window


def test_a_status_row_seen_after_its_day_was_built_goes_into_the_next_day_built(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path, first_build: FirstBuild
) -> None:
    warehouse.execute(f"drop table if exists {MART}")
    build(module_pg, dbt_dirs, *_one_day(D0), record=True)
    d0_as_delivered = mart_rows(warehouse)
    assert d0_as_delivered == expected_rows(*_one_day(D0))

    _insert_statuses(warehouse, LATE_STATUSES)
    try:
        build(module_pg, dbt_dirs, *_one_day(D1), record=True)

        # Signups 101 and 200 did not change on D1: they come with their late D0 status.
        # Signup 100 changed on D1 too: the day holds it once, with its D1 status.
        late_rows = [_row(s.client, D1, s) for s in LATE_STATUSES if s.signup != 100]
        d1_expected = sorted([*expected_rows(*_one_day(D1)), *filter(None, late_rows)])
        assert mart_rows(warehouse, D1) == d1_expected
        assert mart_rows(warehouse, D0) == d0_as_delivered
        d1_keys = {(r[0], r[2]) for r in d1_expected}
        assert {("acme", "101:1101"), ("globex", "200:2100"), ("acme", "100:1004")} <= d1_keys

        # D2 sends its own changes only: 100's late D0 status is older than the D1 status
        # already sent, so it is never sent (it would set the signup back).
        build(module_pg, dbt_dirs, *_one_day(D2), record=True)
        assert mart_rows(warehouse, D2) == expected_rows(*_one_day(D2))

        # Re-running delivered days reproduces them; D0 does not take in its late rows.
        build(module_pg, dbt_dirs, *_one_day(D0), record=True)
        assert mart_rows(warehouse) == sorted(
            [*d0_as_delivered, *d1_expected, *expected_rows(*_one_day(D2))]
        )
    finally:
        _delete_statuses(warehouse, LATE_STATUSES)


def test_a_backfill_of_a_day_never_built_has_that_days_rows(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path, first_build: FirstBuild
) -> None:
    warehouse.execute(f"drop table if exists {MART}")
    build(module_pg, dbt_dirs, *_one_day(D1), record=True)

    build(module_pg, dbt_dirs, *_one_day(D0), record=True)

    assert mart_rows(warehouse) == expected_rows(D0, D2)


def test_the_mart_has_the_canonical_f2f_columns(
    warehouse: psycopg.Connection, first_build: FirstBuild
) -> None:
    assert_mart_columns_are_canonical_and_documented(warehouse, F2F)
    documented = yaml.safe_load(
        (DBT_PROJECT_DIR / "models/marts/f2f/_f2f__models.yml").read_text()
    )["models"][0]["columns"]
    status = next(column for column in documented if column["name"] == "status")
    accepted = next(t for t in status["data_tests"] if isinstance(t, dict))["accepted_values"]
    assert accepted["arguments"]["values"] == list(F2F_STATUS_NAMES.values())


def test_the_day_filter_can_use_an_index_on_timecreated(
    warehouse: psycopg.Connection, first_build: FirstBuild
) -> None:
    with warehouse.transaction():
        # The fixture's tables are tiny; forbid sequential scans to see whether an index *can*
        # be used, which is what matters on a real site.
        warehouse.execute("set local enable_seqscan = off")
        plan = "\n".join(
            row[0] for row in warehouse.execute(f"explain {first_build.compiled_mart}").fetchall()
        )

    for site in SITES.values():
        prefix = site.source.table_prefix
        # The window's status rows by timecreated (the warehouse's index), and each one's day
        # among its signup's rows by signupid (Moodle's own index, mdl_facesignstat_sig_ix).
        for index in (f"{prefix}f2f_status_timecreated", f"{prefix}facesignstat_sig_ix"):
            assert f"Index Scan using {index}" in plan or f"Index Scan on {index}" in plan, plan


def test_an_activity_being_deleted_is_never_sent(
    warehouse: psycopg.Connection, first_build: FirstBuild
) -> None:
    sessions = {row[0] for row in warehouse.execute(f"select session_id from {MART}")}
    assert 15 not in sessions
    assert {10, 12} <= sessions  # activity 1 stays: the quiz being deleted is another module
