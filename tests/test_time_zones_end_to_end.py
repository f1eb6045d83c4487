"""Clients in four time zones, each served by its own 03:00: every file holds its client's local day.

london (Europe/London), angeles (America/Los_Angeles) and sydney (Australia/Sydney) each take all
four feeds for a day whose clocks change in their zone (25, 25 and 23 hours long). Each zone's
night runs as the daemon runs it: the zone's marts schedule evaluated at 03:00 local on the
morning after, its request run, the files sensor's requests for that marts run, each run. Every
file is compared with the rows worked out in Python from the raw Moodle tables for the client's
own local day (tests/expected_feeds.py).

`early` lives in whichever whole-hour zone it is between 01:00 and 04:00 right now, so its
yesterday is over and its 05:00 deadline is still ahead: its files, delivered now, are on time
and the deadline check passes — the on-time path, for real (late and missing ones fail in
tests/test_operations_delivery.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from orchestration.defs.code_location import build_definitions
from orchestration.defs.schedules import marts_schedule_name
from orchestration.feeds import FEEDS as CATALOG
from synthetic_moodle import SiteSpec, generate_site
from tests.e2e_support import (
    ods_environment,
    parse_csv,
    run_requested,
    sensor_requests,
    site_clients,
    start_sftp_server,
    write_clients_file,
)
from tests.expected_feeds import EXPECTED, expected_scorm

FEEDS = ("scorm", "f2f", "quiz", "completion")
PREFIXES = {"scorm": "SCORM", "f2f": "F2F", "quiz": "Quiz", "completion": "Completion"}


def _early_zone(now: dt.datetime) -> str:
    """A whole-hour zone where it is now between 01:00 and 04:00 (POSIX signs are reversed)."""
    for offset in range(-12, 15):
        if 1 <= (now + dt.timedelta(hours=offset)).hour <= 3:
            return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    raise AssertionError(f"no whole-hour zone is between 01:00 and 04:00 at {now}")


NOW = dt.datetime.now(dt.UTC)
EARLY_ZONE = _early_zone(NOW)
CLIENTS = {
    "london": ("Europe/London", dt.date(2026, 10, 25), "4.2", "mdl_"),
    "angeles": ("America/Los_Angeles", dt.date(2026, 11, 1), "4.5", "m_"),
    "sydney": ("Australia/Sydney", dt.date(2026, 10, 4), "5.0", "mdl_"),
    "early": (
        EARLY_ZONE,
        NOW.astimezone(ZoneInfo(EARLY_ZONE)).date() - dt.timedelta(days=1),
        "4.3",
        "mdl_",
    ),
}


def _spec(client_id: str) -> SiteSpec:
    zone, day, release, prefix = CLIENTS[client_id]
    return SiteSpec(
        schema=f"moodle_{client_id}",
        release=release,
        prefix=prefix,
        seed=51,
        learners=12,
        courses=2,
        start=day - dt.timedelta(days=1),
        days=3,
        timezone=zone,
    )


def _night(defs: dg.Definitions, instance: dg.DagsterInstance, client_id: str) -> dict[str, Any]:
    """The client's zone's night: its 03:00 tick, that run, the sensor's files runs."""
    zone, day, _, _ = CLIENTS[client_id]
    schedule = defs.resolve_schedule_def(marts_schedule_name(zone))
    tick = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(3), tzinfo=ZoneInfo(zone))
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests or []
    marts = defs.resolve_job_def(request.job_name or "daily_marts_job").execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags
    )
    assert marts.success
    files_requests = sensor_requests(defs, instance, marts)
    runs = [run_requested(defs, instance, r) for r in files_requests]
    return {"request": request, "files_requests": files_requests, "runs": runs}


@pytest.fixture(scope="module")
def zones_night(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("zones")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for client_id in CLIENTS:
            generate_site(conn, _spec(client_id))
    server, keys = start_sftp_server(tmp, CLIENTS)
    try:
        sites = {client_id: _spec(client_id) for client_id in CLIENTS}
        clients = site_clients(sites, server, keys, feeds={feed: {} for feed in FEEDS})
        for client_id, (zone, _, _, _) in CLIENTS.items():
            clients[client_id]["timezone"] = zone
        clients_file = write_clients_file(
            tmp / "clients.yaml", clients, archive_dir=str(tmp / "archive")
        )
        with ods_environment(module_pg, clients_file):
            defs = build_definitions()
            instance = dg.DagsterInstance.ephemeral()
            nights = {client_id: _night(defs, instance, client_id) for client_id in CLIENTS}
        files = {
            (client_id, feed): parse_csv(
                (
                    server.root
                    / client_id
                    / "outbound"
                    / f"{PREFIXES[feed]}{CLIENTS[client_id][1] + dt.timedelta(days=1):%Y%m%d}.csv"
                ).read_bytes()
            )
            for client_id, feed in itertools.product(CLIENTS, FEEDS)
        }
        with psycopg.connect(module_pg.conninfo()) as conn:
            expected = {
                (client_id, feed): _expected(conn, client_id, feed)
                for client_id, feed in itertools.product(CLIENTS, FEEDS)
            }
        yield {"nights": nights, "files": files, "expected": expected}
    finally:
        server.stop()


def _expected(conn: psycopg.Connection, client_id: str, feed: str) -> list[dict[str, str]]:
    zone, day, _, prefix = CLIENTS[client_id]
    schema = f"moodle_{client_id}"
    if feed == "scorm":
        rows = expected_scorm(conn, schema, prefix, zone, day, records="completed_or_passed")
    else:
        rows = EXPECTED[feed](conn, schema, prefix, zone, day)
    headers = CATALOG[feed].default_headers()
    return [{header: row[column] for column, header in headers.items()} for row in rows]


def _rows(file: list[list[str]]) -> list[dict[str, str]]:
    header, *rows = file
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_each_zones_0300_run_builds_its_own_clients_local_day(zones_night, client_id):
    night = zones_night["nights"][client_id]
    zone, day, _, _ = CLIENTS[client_id]
    assert night["request"].partition_key == day.isoformat()
    assert night["request"].tags["ods/timezone"] == zone
    # Its files runs are its own clients' only: one per client of the zone, all feeds in it.
    assert [r.partition_key.keys_by_dimension["client"] for r in night["files_requests"]] == [
        client_id
    ]
    assert all(run.success for run in night["runs"])


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_each_file_holds_exactly_its_clients_local_day(zones_night, client_id):
    for feed in FEEDS:
        got = _rows(zones_night["files"][client_id, feed])
        assert got == zones_night["expected"][client_id, feed], (client_id, feed)
    assert any(zones_night["expected"][client_id, feed] for feed in FEEDS), client_id


def test_a_file_delivered_before_0500_in_its_clients_zone_passes_the_deadline_check(zones_night):
    (run,) = zones_night["nights"]["early"]["runs"]
    evaluations = [
        e for e in run.get_asset_check_evaluations() if e.check_name == "delivered_by_0500"
    ]
    assert len(evaluations) == len(FEEDS)
    for evaluation in evaluations:
        assert evaluation.passed, evaluation.description
        assert evaluation.metadata["state"].value == "on time"
        assert evaluation.metadata["timezone"].value == EARLY_ZONE


def test_the_dst_days_are_the_lengths_their_zones_make_them():
    """The premise: these are the days whose clocks change in each zone."""
    hours = {}
    for client_id in ("london", "angeles", "sydney"):
        zone, day, _, _ = CLIENTS[client_id]
        start = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(zone))
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(zone))
        # Aware datetimes of one zone subtract as wall-clock times: compare instants in UTC.
        hours[client_id] = (
            end.astimezone(dt.UTC) - start.astimezone(dt.UTC)
        ).total_seconds() / 3600
    assert hours == {"london": 25, "angeles": 25, "sydney": 23}
