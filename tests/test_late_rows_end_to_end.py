"""Nothing is lost: rows that become visible after their day was delivered, through Dagster.

Build D, D+1 and D+2 in order, as the nightly runs would. A completion back-dated into D that
appears only after D was delivered (Moodle's cron back-dates timecompleted) goes into D+1's file,
once; a re-run of D gives D's original bytes; a backfill of days never delivered gives one file
per day with that day's rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest
from day_bounds import day_epoch_bounds

from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB
from synthetic_moodle import generate_site, insert_rows
from tests.e2e_support import (
    client_entry,
    client_site,
    download,
    expected_completions,
    list_remote,
    ods_environment,
    parse_csv,
    start_sftp_server,
    write_clients_file,
)

D = dt.date(2026, 11, 10)
SPEC = client_site(
    "late", release="4.3", seed=5, learners=20, courses=4, start=D - dt.timedelta(days=3), days=10
)
TZ = "Europe/London"
COMPLETION_MART = dg.AssetKey(["marts", "course_completions"])


def _name(day: dt.date) -> str:
    return f"Completion{day + dt.timedelta(days=1):%Y%m%d}.csv"


@pytest.fixture(scope="module")
def site(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("late")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        generate_site(conn, SPEC)
    server, keys = start_sftp_server(tmp, ["late"])
    key = keys["late"]
    clients = {"late": client_entry("moodle_late", server, "late", key)}
    clients_file = write_clients_file(
        tmp / "clients.yaml", clients, archive_dir=str(tmp / "archive")
    )
    with ods_environment(module_pg, clients_file):
        yield {
            "defs": build_definitions(),
            "instance": dg.DagsterInstance.ephemeral(),
            "server": server,
            "key": key,
            "pg": module_pg,
        }
    server.stop()


def _build(site: dict[str, Any], first: dt.date, last: dt.date | None = None) -> None:
    """The marts for first..last in one run (a backfill), then the file of each day.

    The views are made by the first build; later builds select the marts alone, which saves
    a dbt invocation each and changes nothing (the views do not depend on the day).
    """
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    last = last or first
    marts = (
        site["defs"]
        .resolve_job_def(DAILY_MARTS_JOB)
        .execute_in_process(
            instance=site["instance"],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            },
            asset_selection=[COMPLETION_MART] if site.get("views_made") else None,
        )
    )
    assert marts.success
    site["views_made"] = True
    files = site["defs"].resolve_job_def("client_files_job")
    day = first
    while day <= last:
        key = dg.MultiPartitionKey({"date": day.isoformat(), "client": "late"})
        assert files.execute_in_process(instance=site["instance"], partition_key=key).success
        day += dt.timedelta(days=1)


def _file(site: dict[str, Any], day: dt.date) -> bytes:
    return download(site["server"], site["key"], "late", f"/outbound/{_name(day)}")


def _usernames(data: bytes) -> list[str]:
    return [row[0] for row in parse_csv(data)[1:]]


def _expected(site: dict[str, Any], day: dt.date) -> list[dict[str, Any]]:
    with psycopg.connect(site["pg"].conninfo()) as conn:
        return expected_completions(conn, SPEC.schema, "mdl_", TZ, day)


def _usernames_of(rows: list[dict[str, Any]]) -> list[str]:
    return [row["username"] for row in sorted(rows, key=lambda r: (r["user_id"], r["course_id"]))]


def test_a_back_dated_completion_goes_into_the_next_day_once(site):
    _build(site, D)
    original_d = _file(site, D)
    assert _usernames(original_d) == _usernames_of(_expected(site, D))

    # After D was delivered, cron marks a learner complete with a time back-dated into D.
    with psycopg.connect(site["pg"].conninfo(), autocommit=True) as conn:
        user_id, course_id = conn.execute(
            """select u.id, c.id from moodle_late.mdl_user u
               cross join moodle_late.mdl_course c
               where u.deleted = 0 and u.username not in ('guest', 'admin') and c.format <> 'site'
                 and not exists (select 1 from moodle_late.mdl_course_completions cc
                                 where cc.userid = u.id and cc.course = c.id)
               order by u.id, c.id limit 1"""
        ).fetchone()
        start, _ = day_epoch_bounds(D, TZ)
        insert_rows(
            conn,
            SPEC.schema,
            "course_completions",
            [
                {
                    "userid": user_id,
                    "course": course_id,
                    "timeenrolled": start - 86400,
                    "timestarted": start - 86400,
                    "timecompleted": start + 10 * 3600,
                },
            ],
        )
    late = [r for r in _expected(site, D) if (r["user_id"], r["course_id"]) == (user_id, course_id)]
    assert len(late) == 1

    _build(site, D + dt.timedelta(days=1))
    _build(site, D + dt.timedelta(days=2))
    assert _usernames(_file(site, D + dt.timedelta(days=1))) == _usernames_of(
        [*_expected(site, D + dt.timedelta(days=1)), *late]
    )
    assert _usernames(_file(site, D + dt.timedelta(days=2))) == _usernames_of(
        _expected(site, D + dt.timedelta(days=2))
    )

    _build(site, D)
    assert _file(site, D) == original_d


def test_a_backfill_of_three_undelivered_days_makes_three_files_with_their_rows(site):
    first = D + dt.timedelta(days=4)
    _build(site, first, first + dt.timedelta(days=2))
    names = list_remote(site["server"], site["key"], "late", "/outbound")
    for offset in range(3):
        day = first + dt.timedelta(days=offset)
        assert _name(day) in names
        assert _usernames(_file(site, day)) == _usernames_of(_expected(site, day))
