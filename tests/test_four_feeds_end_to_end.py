"""All four feeds end to end for two clients on different Moodle versions, over a backfill.

acme runs Moodle 4.2 (SCORM in `mdl_scorm_scoes_track`, prefix `mdl_`), globex Moodle 5.0
(`m_scorm_attempt` + `m_scorm_scoes_value` + `m_scorm_element`, prefix `m_`). Both are generated
from the same seed, so their learners' activity is identical (only the schema name, in e-mail
addresses and the site course, differs). Both take all four feeds; acme has SCORM with
`records: all` and its own face-to-face columns, globex the default SCORM records
(completed_or_passed) and its own quiz columns.

On both sites one activity of each kind (SCORM 2, quiz 2, face-to-face 2) is being deleted
(course_modules.deletioninprogress = 1, set after generating): its rows must stay out of the files.

The daily marts are built for three days around 2026-10-25 (Europe/London leaves summer time:
25 hours) in one run, a backfill of days never built; then each feed's file for each client and
day. Every file is downloaded over SFTP and compared with the rows worked out in Python from the
raw Moodle tables (tests/expected_feeds.py): the file of day D holds D's events. Then the
25-hour day is run again (marts, then every file): each file comes back byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ods_local.sftp_server import LocalSftpServer
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB
from orchestration.feeds import FEEDS as FEED_CATALOG
from synthetic_moodle import SiteSpec, generate_site
from tests.e2e_support import (
    ods_environment,
    parse_csv,
    run_each_clients_files,
    run_requested,
    sensor_requests,
    sftp_session,
    site_clients,
    start_sftp_server,
    write_clients_file,
)
from tests.expected_feeds import DEFAULT_COLUMNS, EXPECTED, SCORM_RECORDS, expected_scorm

TZ = "Europe/London"
# 2026-10-25 is the 25-hour day on which Europe/London leaves summer time.
DAYS = [dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 26)]
FEEDS = ("scorm", "f2f", "quiz", "completion")
RERUN_DAY = DAYS[1]
# Activities whose course module is being deleted (module name -> instance id), on both sites.
BEING_DELETED = {"scorm": 2, "quiz": 2, "facetoface": 2}
PREFIXES = {"scorm": "SCORM", "f2f": "F2F", "quiz": "Quiz", "completion": "Completion"}


def _site(schema: str, release: str, prefix: str) -> SiteSpec:
    return SiteSpec(
        schema=schema,
        release=release,
        prefix=prefix,
        seed=31,
        learners=24,
        courses=3,
        start=DAYS[0],
        days=len(DAYS),
    )


SITES = {
    "acme": _site("moodle_acme", "4.2", "mdl_"),
    "globex": _site("moodle_globex", "5.0", "m_"),
}

ACME_F2F_COLUMNS = {
    "user_id": "Learner",
    "username": "Login",
    "course_id": "Course",
    "course_shortname": "Course Code",
    "class_title": "Class",
    "session_id": "Session",
    "session_date": "Date",
    "session_start": "Starts",
    "status": "Booking Status",
    "status_changed_at": "Changed",
}
GLOBEX_QUIZ_COLUMNS = {
    "user_id": "User ID",
    "idnumber": "Employee ID",
    "course_id": "Course ID",
    "quiz_id": "Quiz ID",
    "quiz_name": "Assessment",
    "attempt": "Attempt",
    "score": "Result %",
    "max_score": "Out Of",
    "status": "Outcome",
    "started_at": "Started",
    "finished_at": "Submitted",
}
FEED_SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "acme": {
        "scorm": {"records": "all"},
        "f2f": {"columns": ACME_F2F_COLUMNS},
        "quiz": {},
        "completion": {},
    },
    "globex": {
        "scorm": {},
        "f2f": {},
        "quiz": {"columns": GLOBEX_QUIZ_COLUMNS},
        "completion": {},
    },
}


def _columns(client_id: str, feed: str) -> list[tuple[str, str]]:
    """The client's (canonical column, header) pairs for a feed, in file order."""
    custom = FEED_SETTINGS[client_id][feed].get("columns")
    return list(custom.items()) if custom else DEFAULT_COLUMNS[feed]


def _file_name(feed: str, day: dt.date) -> str:
    return f"{PREFIXES[feed]}{day + dt.timedelta(days=1):%Y%m%d}.csv"


def _expected(conn: psycopg.Connection, client_id: str, feed: str, day: dt.date) -> list[dict]:
    spec = SITES[client_id]
    if feed == "scorm":
        records = FEED_SETTINGS[client_id]["scorm"].get("records", "completed_or_passed")
        return expected_scorm(conn, spec.schema, spec.prefix, TZ, day, records=records)
    return EXPECTED[feed](conn, spec.schema, spec.prefix, TZ, day)


@pytest.fixture(scope="module")
def delivered(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Generate both sites, build the marts for DAYS in one run, then every file; download all."""
    tmp = tmp_path_factory.mktemp("four_feeds")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for spec in SITES.values():
            generate_site(conn, spec)
            _mark_being_deleted(conn, spec)
        deleted_activity = _activity_in_days(conn, SITES["acme"])
    server, keys = start_sftp_server(tmp, SITES)
    try:
        clients = site_clients(SITES, server, keys)
        for client_id, feeds in FEED_SETTINGS.items():
            clients[client_id]["feeds"] = feeds
        archive = tmp / "archive"
        clients_file = write_clients_file(tmp / "clients.yaml", clients, archive_dir=str(archive))
        with ods_environment(module_pg, clients_file):
            defs = build_definitions()
            instance = dg.DagsterInstance.ephemeral()
            marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
                instance=instance,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: DAYS[0].isoformat(),
                    ASSET_PARTITION_RANGE_END_TAG: DAYS[-1].isoformat(),
                },
            )
            assert marts.success
            # The files follow as in production: the sensor's requests, one run per client-day.
            requests = sensor_requests(defs, instance, marts)
            logins_before = dict(server.logins)
            for request in requests:
                assert run_requested(defs, instance, request).success, request.partition_key
            logins = {c: server.logins[c] - logins_before.get(c, 0) for c in SITES}
            files_runs = instance.get_runs(filters=dg.RunsFilter(job_name="client_files_job"))
            remote, files = _download(server, keys, DAYS)
            delivery_metadata = _delivery_metadata(instance, "acme", RERUN_DAY)

            # The same day again, as an operator re-runs a delivered day: its marts (the views
            # are as they were), then each feed's file for each client.
            rerun = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
                instance=instance,
                partition_key=RERUN_DAY.isoformat(),
                asset_selection=[dg.AssetKey(["marts", f.mart]) for f in FEED_CATALOG.values()],
            )
            assert rerun.success
            run_each_clients_files(defs, instance, RERUN_DAY, SITES)
            _, files_again = _download(server, keys, [RERUN_DAY])
        with psycopg.connect(module_pg.conninfo()) as conn:
            expected = {
                (client_id, feed, day): _expected(conn, client_id, feed, day)
                for client_id, feed, day in itertools.product(SITES, FEEDS, DAYS)
            }
            scorm_all = {
                (client_id, day): expected_scorm(
                    conn, spec.schema, spec.prefix, TZ, day, records="all"
                )
                for client_id, spec in SITES.items()
                for day in DAYS
            }
        yield {
            "requests": requests,
            "files_runs": files_runs,
            "logins": logins,
            "remote": remote,
            "files": files,
            "files_again": files_again,
            "delivery_metadata": delivery_metadata,
            "expected": expected,
            "scorm_all": scorm_all,
            "archive": archive,
            "deleted_activity": deleted_activity,
        }
    finally:
        server.stop()


def _mark_being_deleted(conn: psycopg.Connection, spec: SiteSpec) -> None:
    """Flag BEING_DELETED's course modules as Moodle does when a teacher deletes an activity."""
    table = f"{spec.schema}.{spec.prefix}"
    for module, instance in BEING_DELETED.items():
        updated = conn.execute(
            f"update {table}course_modules set deletioninprogress = 1"
            f" where instance = %s and module = (select id from {table}modules where name = %s)",
            (instance, module),
        ).rowcount
        assert updated == 1, (spec.schema, module, instance)


def _activity_in_days(conn: psycopg.Connection, spec: SiteSpec) -> dict[str, int]:
    """How many raw Moodle rows of DAYS belong to the activities being deleted, per feed: what
    the files must leave out."""
    table = f"{spec.schema}.{spec.prefix}"
    start = int(dt.datetime(2026, 10, 23, tzinfo=dt.UTC).timestamp())
    end = int(dt.datetime(2026, 10, 28, tzinfo=dt.UTC).timestamp())
    tracking = (
        f"select count(*) from {table}scorm_scoes_track where scormid = %s"
        " and timemodified between %s and %s"
    )
    return {
        "scorm": conn.execute(tracking, (BEING_DELETED["scorm"], start, end)).fetchone()[0],
        "quiz": conn.execute(
            f"select count(*) from {table}quiz_attempts where quiz = %s"
            " and timefinish between %s and %s",
            (BEING_DELETED["quiz"], start, end),
        ).fetchone()[0],
        "f2f": conn.execute(
            f"select count(*) from {table}facetoface_signups_status as st"
            f" join {table}facetoface_signups as su on su.id = st.signupid"
            f" join {table}facetoface_sessions as se on se.id = su.sessionid"
            " where se.facetoface = %s and st.timecreated between %s and %s",
            (BEING_DELETED["facetoface"], start, end),
        ).fetchone()[0],
    }


def _download(
    server: LocalSftpServer, keys: dict[str, Path], days: list[dt.date]
) -> tuple[dict[str, list[str]], dict[tuple[str, str, dt.date], bytes]]:
    """Each client's folder listing, and the bytes of each feed's file of the days found there."""
    remote: dict[str, list[str]] = {}
    files: dict[tuple[str, str, dt.date], bytes] = {}
    for client_id in SITES:
        with sftp_session(server, keys[client_id], client_id) as sftp:
            remote[client_id] = sorted(sftp.listdir("/outbound"))
            for feed, day in itertools.product(FEEDS, days):
                name = _file_name(feed, day)
                if name in remote[client_id]:
                    with sftp.open(f"/outbound/{name}", "rb") as handle:
                        files[(client_id, feed, day)] = handle.read()
    return remote, files


def _delivery_metadata(
    instance: dg.DagsterInstance, client_id: str, day: dt.date
) -> dict[str, dict[str, Any]]:
    """Each feed's latest delivery materialisation metadata for a client-day."""
    key = dg.MultiPartitionKey({"date": day.isoformat(), "client": client_id})
    metadata = {}
    for feed in FEEDS:
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(f"{feed}_delivery"), asset_partitions=[str(key)]
            ),
            limit=1,
        ).records
        materialization = record.asset_materialization
        assert materialization is not None
        metadata[feed] = {name: value.value for name, value in materialization.metadata.items()}
    return metadata


def test_a_backfill_runs_one_files_run_per_client_and_day_carrying_all_its_feeds(delivered):
    requests = delivered["requests"]
    assert sorted(
        (r.partition_key.keys_by_dimension["client"], r.partition_key.keys_by_dimension["date"])
        for r in requests
    ) == sorted((c, d.isoformat()) for c in SITES for d in DAYS)
    for request in requests:
        assert {key.path[-1] for key in request.asset_selection} == {
            f"{feed}_{kind}" for feed in FEEDS for kind in ("file", "delivery")
        }
    # From the run records: 2 clients x 3 days, not 2 x 3 x 4 feeds.
    assert len(delivered["files_runs"]) == len(SITES) * len(DAYS)
    # And on the server: one SSH session per client-day, for its four files and retention.
    assert delivered["logins"] == {client_id: len(DAYS) for client_id in SITES}


def test_a_backfill_of_three_days_delivers_one_file_per_feed_and_day_and_nothing_else(
    delivered,
):
    for client_id in SITES:
        assert delivered["remote"][client_id] == sorted(
            _file_name(feed, day) for feed in FEEDS for day in DAYS
        ), f"{client_id}: one file per feed per day, no temporary file left"
    left_over = [p for p in Path(delivered["archive"]).rglob("*") if p.name.endswith(".part")]
    assert not left_over


@pytest.mark.parametrize("feed", FEEDS)
@pytest.mark.parametrize("client_id", list(SITES))
def test_each_file_holds_its_days_rows_in_the_clients_columns(delivered, client_id, feed):
    columns = _columns(client_id, feed)
    for day in DAYS:
        data = delivered["files"][(client_id, feed, day)]
        assert data.startswith(b'"') and data.endswith(b'"\r\n'), (feed, client_id, day)
        rows = parse_csv(data)
        assert rows[0] == [header for _, header in columns], (feed, client_id, day)
        expected = [
            [row[column] for column, _ in columns]
            for row in delivered["expected"][(client_id, feed, day)]
        ]
        got = rows[1:]
        assert got == expected, (
            f"{feed} {client_id} {day}: {_first_difference(expected, got, columns)}"
        )


def _first_difference(expected: list[list[str]], got: list[list[str]], columns) -> str:
    names = [column for column, _ in columns]
    for index, (want, have) in enumerate(zip(expected, got, strict=False), start=1):
        if want != have:
            want_row = dict(zip(names, want, strict=False))
            have_row = dict(zip(names, have, strict=False))
            return f"row {index}: expected {want_row}, got {have_row}"
    return f"{len(expected)} rows expected, {len(got)} in the file"


def test_the_days_exercise_the_feed_rules(delivered):
    """The comparison above means something: the days hold the stories the rules are about."""
    expected, scorm_all = delivered["expected"], delivered["scorm_all"]
    for client_id in SITES:
        for feed in FEEDS:
            assert all(expected[(client_id, feed, day)] for day in DAYS[1:]), (client_id, feed)
        scorm_statuses = {r["status"] for day in DAYS for r in scorm_all[(client_id, day)]}
        assert {"passed", "completed", "failed", "incomplete"} <= scorm_statuses
        sent = {r["status"] for day in DAYS for r in expected[(client_id, "scorm", day)]}
        records = FEED_SETTINGS[client_id]["scorm"].get("records", "completed_or_passed")
        assert sent == (set(SCORM_RECORDS[records] or scorm_statuses))
        quiz = [r for day in DAYS for r in expected[(client_id, "quiz", day)]]
        assert {"passed", "failed", "finished", "needs grading"} <= {r["status"] for r in quiz}
        assert any(r["status"] == "needs grading" and r["score"] == "" for r in quiz)
        f2f = [r for day in DAYS for r in expected[(client_id, "f2f", day)]]
        assert any(r["session_date"] == "" for r in f2f), "a session without dates"
        assert len({r["status"] for r in f2f}) >= 4
    # The activities being deleted had activity on these days, which the files leave out.
    assert all(delivered["deleted_activity"].values()), delivered["deleted_activity"]


def test_scorm_on_moodle_4_2_and_5_0_gives_the_same_rows_for_the_same_activity(delivered):
    """acme (scoes_track, records all) and globex (attempt + scoes_value, completed_or_passed)
    hold the same activity; their files agree on every column but the e-mail address, which
    carries the site's name."""
    for day in DAYS:
        acme = [
            dict(zip([c for c, _ in DEFAULT_COLUMNS["scorm"]], row, strict=True))
            for row in parse_csv(delivered["files"][("acme", "scorm", day)])[1:]
        ]
        globex = [
            dict(zip([c for c, _ in DEFAULT_COLUMNS["scorm"]], row, strict=True))
            for row in parse_csv(delivered["files"][("globex", "scorm", day)])[1:]
        ]
        assert globex, day
        assert all(row["email"].endswith("@globex.example.org") for row in globex)
        completed_or_passed = _without_email(
            row for row in acme if row["status"] in ("completed", "passed")
        )
        assert completed_or_passed == _without_email(globex), day
        assert len(acme) > len(completed_or_passed), "acme gets every status"
    # The premise: with every status, both sites' raw tracking gives the same SCO-attempts.
    for day in DAYS:
        assert _without_email(delivered["scorm_all"][("acme", day)]) == _without_email(
            delivered["scorm_all"][("globex", day)]
        ), day


def _without_email(rows) -> list[dict[str, str]]:
    return [{key: value for key, value in row.items() if key != "email"} for row in rows]


def test_a_rerun_of_a_delivered_day_gives_byte_identical_files(delivered):
    again = delivered["files_again"]
    assert set(again) == {(client_id, feed, RERUN_DAY) for client_id in SITES for feed in FEEDS}
    for key, data in again.items():
        assert data == delivered["files"][key], key


def test_no_row_of_one_client_is_in_the_others_files(delivered):
    """Both sites hold the same activity; only the e-mail addresses carry the site's name. So a
    row from the other client's Moodle would show as an address of the other domain."""
    seen = 0
    for (client_id, feed, day), data in delivered["files"].items():
        headers = dict(_columns(client_id, feed))
        if "email" not in headers:
            continue
        rows = parse_csv(data)
        position = rows[0].index(headers["email"])
        for row in rows[1:]:
            assert row[position].endswith(f"@{client_id}.example.org"), (client_id, feed, day)
            seen += 1
    assert seen > 20


def test_deliveries_carry_rows_bytes_sha256_and_remote_path(delivered):
    for feed, metadata in delivered["delivery_metadata"].items():
        data = delivered["files"][("acme", feed, RERUN_DAY)]
        name = _file_name(feed, RERUN_DAY)
        assert metadata["remote_path"] == f"/outbound/{name}", feed
        assert metadata["rows"] == len(delivered["expected"][("acme", feed, RERUN_DAY)]), feed
        assert metadata["bytes"] == len(data), feed
        assert metadata["sha256"] == hashlib.sha256(data).hexdigest(), feed
