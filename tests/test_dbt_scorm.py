"""The SCORM mart, built by dbt over two real Moodle schemas on a real PostgreSQL.

One client is on Moodle 4.2 (tracking in `mdl_scorm_scoes_track`, prefix mdl_), the other on 4.3
(`m_scorm_attempt` + `m_scorm_scoes_value` + `m_scorm_element`, prefix m_, element ids of its
own), and both hold the same SCORM activity. Expected rows are worked out here, in Python with
zoneinfo, from the tracking rows the fixture inserts (independently of the SQL): the SCORM 1.2 and
2004 status rules of DESIGN.md "Feeds", the latest change over all elements of a SCO-attempt, and
the learners, courses and activities that are left out.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.feeds import SCORM
from orchestration.moodle.union_views import MoodleSource
from tests.dbt_people import Site, identity_values, insert_site_rows
from tests.dbt_support import (
    assert_build_passed,
    assert_mart_columns_are_canonical_and_documented,
    run_dbt,
    sent,
    sites_with_people,
)

MART = "marts.scorm_sco_attempts"
# The SCORM mart and everything it reads (with their unit and data tests), not the other feeds.
SELECT = "+scorm_sco_attempts"
LONDON = "Europe/London"


# The same time zone for both, so that their rows must be identical apart from client_id.
LEGACY = Site(MoodleSource("acme", "moodle_acme", "mdl_", LONDON), "4.2")
NORMALISED = Site(MoodleSource("globex", "moodle_globex", "m_", LONDON), "4.3")
SITES = (LEGACY, NORMALISED)


class Scorm(NamedTuple):
    id: int
    course: int
    name: str
    version: str
    being_deleted: bool = False  # its course module has deletioninprogress = 1


SCORMS = {
    s.id: s
    for s in (
        Scorm(1, 2, "Fire Safety e-learning", "SCORM_1.2"),
        Scorm(2, 2, "Fire Safety scenarios", "SCORM_1.3"),
        Scorm(3, 3, "Old induction", "SCORM_1.2", being_deleted=True),
        Scorm(4, 1, "Site tour", "SCORM_1.2"),  # on the site front page
    )
}


class Sco(NamedTuple):
    id: int
    scorm: int
    type: str  # scorm_scoes.scormtype: 'sco', 'asset', or '' for the organisation row
    title: str


SCOES = {
    s.id: s
    for s in (
        Sco(1, 1, "", "Fire Safety e-learning"),
        Sco(2, 1, "sco", "Introduction"),
        Sco(3, 1, "sco", "Knowledge check"),
        Sco(4, 1, "asset", "Glossary"),
        Sco(5, 2, "", "Fire Safety scenarios"),
        Sco(6, 2, "sco", "Welcome"),
        Sco(7, 2, "sco", 'Final "assessment"'),
        Sco(8, 3, "sco", "Welcome"),
        Sco(9, 4, "sco", "Tour"),
    )
}
SCORM_MODULE_ID, QUIZ_MODULE_ID = 18, 16


def _epoch(local: str) -> int:
    return int(dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(LONDON)).timestamp())


class Track(NamedTuple):
    """One tracking row: user × SCORM × SCO × attempt × CMI element, at a local London time."""

    user: int
    scorm: int
    sco: int
    attempt: int
    element: str
    value: str
    at: str

    @property
    def epoch(self) -> int:
        return _epoch(self.at)


def _started(user: int, scorm: int, sco: int, attempt: int, at: str) -> Track:
    """The row Moodle writes when a SCO attempt starts: x.start.time, whose value is the epoch of
    that same moment."""
    return Track(user, scorm, sco, attempt, "x.start.time", str(_epoch(at)), at)


D1, D2, D3 = dt.date(2026, 6, 1), dt.date(2026, 6, 2), dt.date(2026, 6, 3)

TRACKS = [
    # alice, SCORM 1.2: SCO 2 completed; SCO 3 failed in attempt 1 and passed in attempt 2 on
    # the next day; she opens the Glossary asset, for which Moodle writes 'completed'.
    _started(3, 1, 2, 1, "2026-06-01 08:55"),
    Track(3, 1, 2, 1, "cmi.core.lesson_status", "completed", "2026-06-01 09:00"),
    Track(3, 1, 2, 1, "cmi.core.session_time", "00:05:00", "2026-06-01 09:00"),
    _started(3, 1, 3, 1, "2026-06-01 09:01"),
    Track(3, 1, 3, 1, "cmi.core.lesson_status", "failed", "2026-06-01 09:10"),
    Track(3, 1, 3, 1, "cmi.core.score.raw", "55", "2026-06-01 09:10"),
    _started(3, 1, 4, 1, "2026-06-01 09:12"),
    Track(3, 1, 4, 1, "cmi.core.lesson_status", "completed", "2026-06-01 09:12"),
    _started(3, 1, 3, 2, "2026-06-02 10:00"),
    Track(3, 1, 3, 2, "cmi.core.lesson_status", "passed", "2026-06-02 10:20"),
    Track(3, 1, 3, 2, "cmi.core.score.raw", "90", "2026-06-02 10:20"),
    # alice, SCORM 2004: completed but failed; the raw score as stored, not the scaled one.
    Track(3, 2, 7, 1, "cmi.completion_status", "completed", "2026-06-01 14:00"),
    Track(3, 2, 7, 1, "cmi.success_status", "failed", "2026-06-01 14:00"),
    Track(3, 2, 7, 1, "cmi.score.raw", "40.50", "2026-06-01 14:00"),
    Track(3, 2, 7, 1, "cmi.score.scaled", "0.405", "2026-06-01 14:00"),
    # carol (suspended), SCORM 2004: success 'unknown' falls back to the completion status. Her
    # SCO 7 status is from late on 1 June, but its suspend data was written after local
    # midnight: the attempt belongs to 2 June.
    Track(5, 2, 6, 1, "cmi.completion_status", "completed", "2026-06-01 23:30"),
    Track(5, 2, 6, 1, "cmi.success_status", "unknown", "2026-06-01 23:30"),
    Track(5, 2, 7, 1, "cmi.completion_status", "incomplete", "2026-06-01 23:50"),
    Track(5, 2, 7, 1, "cmi.success_status", "unknown", "2026-06-01 23:50"),
    Track(5, 2, 7, 1, "cmi.suspend_data", "slide=12", "2026-06-02 00:10"),
    # dan: incomplete (he comes back to it in the revisit test) and browsed.
    Track(6, 1, 2, 1, "cmi.core.lesson_status", "incomplete", "2026-06-01 11:00"),
    Track(6, 1, 2, 1, "cmi.suspend_data", "page=3", "2026-06-01 11:00"),
    Track(6, 1, 3, 1, "cmi.core.lesson_status", "browsed", "2026-06-01 11:05"),
    # erin: 'not attempted'; and a pass in a SCORM whose activity is being deleted.
    _started(7, 1, 2, 1, "2026-06-01 12:00"),
    Track(7, 1, 2, 1, "cmi.core.lesson_status", "not attempted", "2026-06-01 12:00"),
    Track(7, 3, 8, 1, "cmi.core.lesson_status", "passed", "2026-06-01 12:30"),
    # admin: a learner like any other; and the site front page's package, never reported.
    Track(2, 1, 2, 1, "cmi.core.lesson_status", "passed", "2026-06-01 16:00"),
    Track(2, 4, 9, 1, "cmi.core.lesson_status", "completed", "2026-06-01 16:05"),
    # The guest and a deleted user: never reported.
    Track(1, 1, 2, 1, "cmi.core.lesson_status", "completed", "2026-06-01 17:00"),
    Track(4, 1, 2, 1, "cmi.core.lesson_status", "passed", "2026-06-01 17:30"),
    # Long before the window: never read for it.
    Track(6, 1, 3, 2, "cmi.core.lesson_status", "passed", "2026-04-01 10:00"),
]
# Element names used before any of the above, so that the 4.3 site's element ids are its own.
EARLIER_ELEMENTS = ["cmi.core.exit", "cmi.core.lesson_location", "cmi.interactions_0.id"]
# dan goes back to his attempt on 2 June and completes it; Moodle updates the row in place.
REVISIT = Track(6, 1, 2, 1, "cmi.core.lesson_status", "completed", "2026-06-02 15:00")


def _table(site: Site, table: str) -> str:
    return f"{site.source.moodle_schema}.{site.source.table_prefix}{table}"


def _insert_tracking(conn: psycopg.Connection, site: Site, tracks: list[Track]) -> None:
    """The same tracking rows in the site's own design, as Moodle would have written them."""
    if site is LEGACY:
        rows = [
            {
                "userid": t.user,
                "scormid": t.scorm,
                "scoid": t.sco,
                "attempt": t.attempt,
                "element": t.element,
                "value": t.value,
                "timemodified": t.epoch,
            }
            for t in tracks
        ]
        insert_site_rows(conn, site, "scorm_scoes_track", rows)
        return
    names = EARLIER_ELEMENTS + sorted({t.element for t in tracks}, reverse=True)
    element_ids = {name: 40 + i for i, name in enumerate(names)}
    attempts = sorted({(t.user, t.scorm, t.attempt) for t in tracks}, reverse=True)
    attempt_ids = {key: 700 + i for i, key in enumerate(attempts)}
    insert_site_rows(
        conn, site, "scorm_element", [{"id": i, "element": n} for n, i in element_ids.items()]
    )
    insert_site_rows(
        conn,
        site,
        "scorm_attempt",
        [
            {"id": i, "userid": user, "scormid": scorm, "attempt": attempt}
            for (user, scorm, attempt), i in attempt_ids.items()
        ],
    )
    values = [
        {
            "scoid": t.sco,
            "attemptid": attempt_ids[(t.user, t.scorm, t.attempt)],
            "elementid": element_ids[t.element],
            "value": t.value,
            "timemodified": t.epoch,
        }
        for t in tracks
    ]
    insert_site_rows(conn, site, "scorm_scoes_value", values)


def _update_track(conn: psycopg.Connection, site: Site, track: Track) -> None:
    """Write a new value over an element's row, as Moodle's scorm_insert_track() does."""
    if site is LEGACY:
        conn.execute(
            f"update {_table(site, 'scorm_scoes_track')} set value = %s, timemodified = %s"
            " where userid = %s and scormid = %s and scoid = %s and attempt = %s"
            " and element = %s",
            (track.value, track.epoch, *track[:5]),
        )
        return
    conn.execute(
        f"update {_table(site, 'scorm_scoes_value')} as v set value = %s, timemodified = %s"
        f" from {_table(site, 'scorm_attempt')} as a, {_table(site, 'scorm_element')} as e"
        " where v.attemptid = a.id and v.elementid = e.id and a.userid = %s and a.scormid = %s"
        " and v.scoid = %s and a.attempt = %s and e.element = %s",
        (track.value, track.epoch, *track[:5]),
    )


@pytest.fixture(scope="module")
def warehouse(module_pg: LocalPostgres) -> Iterator[psycopg.Connection]:
    """Two client schemas (4.2 with mdl_, 4.3 with m_) with the same activity, and the views."""
    course_modules = [
        {
            "course": s.course,
            "module": SCORM_MODULE_ID,
            "instance": s.id,
            "deletioninprogress": int(s.being_deleted),
        }
        for s in SCORMS.values()
    ]
    # A quiz being deleted with the same instance id as SCORM 1: it must not count.
    course_modules.append(
        {"course": 2, "module": QUIZ_MODULE_ID, "instance": 1, "deletioninprogress": 1}
    )
    with sites_with_people(module_pg, SITES) as conn:
        for site in SITES:
            insert_site_rows(
                conn,
                site,
                "modules",
                [{"id": QUIZ_MODULE_ID, "name": "quiz"}, {"id": SCORM_MODULE_ID, "name": "scorm"}],
            )
            insert_site_rows(conn, site, "course_modules", course_modules)
            insert_site_rows(
                conn,
                site,
                "scorm",
                [
                    {"id": s.id, "course": s.course, "name": s.name, "version": s.version}
                    for s in SCORMS.values()
                ],
            )
            insert_site_rows(
                conn,
                site,
                "scorm_scoes",
                [
                    {
                        "id": s.id,
                        "scorm": s.scorm,
                        "scormtype": s.type,
                        "title": s.title,
                        "launch": "" if s.type == "" else f"sco{s.id}.html",
                        "sortorder": s.id,
                    }
                    for s in SCOES.values()
                ],
            )
            _insert_tracking(conn, site, TRACKS)
        yield conn


def _window(first: dt.date, end: dt.date, *, record: bool = False) -> dict[str, Any]:
    return {"min_date": first.isoformat(), "max_date": end.isoformat(), "record_days_built": record}


def _latest_values(tracks: Iterable[Track]) -> dict[str, str]:
    values: dict[str, tuple[int, str]] = {}
    for t in tracks:
        if t.element not in values or t.epoch >= values[t.element][0]:
            values[t.element] = (t.epoch, t.value)
    return {element: value for element, (_, value) in values.items()}


def expected_rows(tracks: list[Track], first: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
    """Every client's mart rows for report days first <= D < end, from the tracking rows."""
    sco_attempts: dict[tuple[int, int, int, int], list[Track]] = {}
    for t in tracks:
        sco_attempts.setdefault((t.user, t.scorm, t.sco, t.attempt), []).append(t)
    rows = []
    for (user_id, scorm_id, sco_id, attempt), its_tracks in sco_attempts.items():
        scorm, sco = SCORMS[scorm_id], SCOES[sco_id]
        if sco.type != "sco" or scorm.being_deleted or not sent(user_id, scorm.course):
            continue
        values = _latest_values(its_tracks)
        if scorm.version == "SCORM_1.3":
            success = values.get("cmi.success_status")
            status = (
                success if success in ("passed", "failed") else values.get("cmi.completion_status")
            )
            score = values.get("cmi.score.raw")
        else:
            status = values.get("cmi.core.lesson_status")
            score = values.get("cmi.core.score.raw")
        local = dt.datetime.fromtimestamp(max(t.epoch for t in its_tracks), ZoneInfo(LONDON))
        if not first <= local.date() < end:
            continue
        for site in SITES:
            rows.append(
                (
                    site.source.client_id,
                    local.date(),
                    *identity_values(user_id, scorm.course),
                    scorm_id,
                    scorm.name,
                    sco_id,
                    sco.title,
                    status or None,
                    attempt,
                    score or None,
                    local.replace(tzinfo=None),
                )
            )
    return sorted(rows)


def mart_rows(conn: psycopg.Connection, where: str = "true") -> list[tuple[Any, ...]]:
    """The mart's report day and canonical columns (not the change bookkeeping)."""
    columns = ", ".join(["client_id", "report_date", *SCORM.column_names])
    return sorted(conn.execute(f"select {columns} from {MART} where {where}").fetchall())


REVISITED = [t if t[:5] != REVISIT[:5] else REVISIT for t in TRACKS]


@pytest.fixture(scope="module")
def day_by_day(
    warehouse: psycopg.Connection, module_pg: LocalPostgres, dbt_dirs: Path
) -> Iterator[dict[str, Any]]:
    """Built as Dagster does, recording each day: a first build of 1 June with every unit and
    data test; then dan goes back to his attempt and completes it on 2 June, and 2 June is built.
    Yields the first build's run results."""
    warehouse.execute(f"drop table if exists {MART}")
    env = module_pg.libpq_env()
    run_dbt("build", dbt_dirs, env, _window(D1, D2, record=True), "--select", SELECT)
    results = json.loads((dbt_dirs / "target" / "run_results.json").read_text())
    original = next(t for t in TRACKS if t[:5] == REVISIT[:5])
    for site in SITES:
        _update_track(warehouse, site, REVISIT)
    try:
        # Only the mart: the views it reads were made by the first build.
        run_dbt(
            "run", dbt_dirs, env, _window(D2, D3, record=True), "--select", "scorm_sco_attempts"
        )
        yield results
    finally:
        for site in SITES:
            _update_track(warehouse, site, original)


def test_a_day_has_each_sco_attempt_whose_last_change_was_on_that_local_day(
    warehouse: psycopg.Connection, day_by_day: dict[str, Any]
) -> None:
    first_day = mart_rows(warehouse, f"report_date = '{D1}'")

    assert first_day == expected_rows(TRACKS, D1, D2)
    # Spot checks of the rules, in case both sides got one wrong the same way.
    acme = {(r[2], r[13], r[16]): r for r in first_day if r[0] == "acme"}
    assert acme[(3, 7, 1)][15:18] == ("failed", 1, "40.50")  # 2004: failed beats completed
    assert acme[(5, 6, 1)][15] == "completed"  # 2004: success 'unknown' falls back
    assert acme[(3, 3, 1)][15:18] == ("failed", 1, "55")
    assert acme[(3, 2, 1)][17] is None  # no score written
    assert (5, 7, 1) not in acme  # its status is from 23:50, but it changed again after midnight
    assert {r[13] for r in first_day} == {2, 3, 6, 7}  # not the asset, the deleted or site SCORMs
    assert {r[3] for r in first_day} == {"admin", "alice", "carol", "dan", "erin"}


def test_the_next_day_has_the_attempts_that_last_changed_on_it(
    warehouse: psycopg.Connection, day_by_day: dict[str, Any]
) -> None:
    next_day = mart_rows(warehouse, f"report_date = '{D2}'")

    assert next_day == expected_rows(REVISITED, D2, D3)
    acme = {(r[2], r[13], r[16]): r for r in next_day if r[0] == "acme"}
    assert acme[(5, 7, 1)][15] == "incomplete"  # suspend data at 00:10 moved it to 2 June
    assert acme[(5, 7, 1)][18] == dt.datetime(2026, 6, 2, 0, 10)
    assert acme[(3, 3, 2)][15:18] == ("passed", 2, "90")  # a second attempt


def test_a_revisit_on_a_later_day_sends_the_attempt_again_on_that_day(
    warehouse: psycopg.Connection, day_by_day: dict[str, Any]
) -> None:
    sent = warehouse.execute(
        f"select client_id, report_date, entity_key, change_key, status, modified_at"
        f" from {MART} where user_id = 6 and sco_id = 2 and attempt = 1"
        " order by client_id, report_date"
    ).fetchall()

    first_key = f"6:2:1:{_epoch('2026-06-01 11:00')}"
    second_key = f"6:2:1:{REVISIT.epoch}"
    assert sent == [
        (client, day, "6:2:1", key, status, at)
        for client in ("acme", "globex")
        for day, key, status, at in (
            (D1, first_key, "incomplete", dt.datetime(2026, 6, 1, 11, 0)),
            (D2, second_key, "completed", dt.datetime(2026, 6, 2, 15, 0)),
        )
    ]


def test_both_tracking_designs_give_the_same_rows(
    warehouse: psycopg.Connection, day_by_day: dict[str, Any]
) -> None:
    columns = "report_date, change_key, entity_key, " + ", ".join(SCORM.column_names)
    by_client = {
        site.source.client_id: sorted(
            warehouse.execute(
                f"select {columns} from {MART} where client_id = %s", (site.source.client_id,)
            ).fetchall()
        )
        for site in SITES
    }

    assert by_client["acme"]
    assert by_client["acme"] == by_client["globex"]


def test_the_build_ran_every_scorm_unit_and_data_test(day_by_day: dict[str, Any]) -> None:
    assert len(assert_build_passed(day_by_day["results"], "scorm")) >= 13


def test_the_mart_has_the_canonical_scorm_columns(
    warehouse: psycopg.Connection, day_by_day: dict[str, Any]
) -> None:
    assert_mart_columns_are_canonical_and_documented(warehouse, SCORM)


def _scans(plan: str, table: str) -> list[str]:
    """Each scan of `table` in an EXPLAIN text: its node line and the lines that describe it."""
    lines = plan.splitlines()
    scans = []
    for i, line in enumerate(lines):
        if re.search(rf"Scan\b.* on {re.escape(table)}\b", line):
            detail = [line]
            for following in lines[i + 1 :]:
                if "->" in following:
                    break
                detail.append(following)
            scans.append("\n".join(detail))
    return scans


def test_a_one_day_build_reads_tracking_through_indexes_only(
    warehouse: psycopg.Connection, dbt_dirs: Path, day_by_day: dict[str, Any]
) -> None:
    """A one-day build finds the day's SCO-attempts by timemodified, then reads just those."""
    compiled = dbt_dirs / "target/compiled/outbound_data_sync/models/marts/scorm"
    query = (compiled / "scorm_sco_attempts.sql").read_text()  # the build of 2 June
    with warehouse.transaction():
        for site in SITES:
            # A site's history: thousands of attempts long before the window, so that the plan
            # is one for a real site, where only an index on timemodified narrows the scan.
            # Moodle has none (moodle-schema.md §4.1a); the warehouse adds it.
            if site is LEGACY:
                table = _table(site, "scorm_scoes_track")
                warehouse.execute(
                    f"insert into {table}"
                    " (userid, scormid, scoid, attempt, element, value, timemodified)"
                    " select 7, 1, 3, 100 + n, 'cmi.core.lesson_status', 'incomplete',"
                    " 1735000000 + n * 600 from generate_series(1, 5000) as n"
                )
            else:
                table = _table(site, "scorm_scoes_value")
                warehouse.execute(
                    f"insert into {_table(site, 'scorm_attempt')} (id, userid, scormid, attempt)"
                    " select 10000 + n, 7, 1, 100 + n from generate_series(1, 5000) as n"
                )
                warehouse.execute(
                    f"insert into {table} (scoid, attemptid, elementid, value, timemodified)"
                    " select 3, 10000 + n, e.id, 'incomplete', 1735000000 + n * 600"
                    f" from generate_series(1, 5000) as n, {_table(site, 'scorm_element')} as e"
                    " where e.element = 'cmi.core.lesson_status'"
                )
            warehouse.execute(
                f"create index {site.source.table_prefix}test_timemodified_ix"
                f" on {table} (timemodified)"
            )
            warehouse.execute(f"analyze {table}")
        # The mart's own planner settings (its pre-hooks), and no sequential scan where an
        # index would do: the fixture's tables are small.
        warehouse.execute("set local enable_nestloop = off")
        warehouse.execute("set local enable_mergejoin = off")
        warehouse.execute("set local enable_seqscan = off")
        plan = "\n".join(row[0] for row in warehouse.execute(f"explain {query}").fetchall())
        raise psycopg.Rollback()

    # How each tracking table may be read: the day's range of timemodified, or one SCO-attempt
    # at a time through Moodle's own indexes (scorm_scoes_track's unique (userid, scormid,
    # scoid, attempt, element), scorm_scoes_value's attemptid, scorm_attempt's primary key).
    conditions = {
        "mdl_scorm_scoes_track": "timemodified >=|userid =",
        "m_scorm_scoes_value": "timemodified >=|attemptid =",
        "m_scorm_attempt": "id =",
    }
    for table, condition in conditions.items():
        scans = _scans(plan, table)
        assert scans, plan
        for scan in scans:
            assert re.search(rf"(Index|Recheck) Cond: \(+({condition}) ", scan), scan
    for site in SITES:
        timemodified = f"{site.source.table_prefix}test_timemodified_ix"
        assert re.search(rf"Scan using {timemodified} on ", plan), plan
