"""The nightly clock and the operator's commands, without a database: each time zone's schedule
ticks (03:00 and 05:00 local, DST days included, as the daemon computes them), the files sensor's
requests, the deadline's time and verdict, and `ods resend`/`rebuild` refusing bad requests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._utils.schedules import cron_string_iterator

from ods_local.demo import use_demo_dagster_home
from orchestration import cli
from orchestration.clients import ClientsConfig, load_clients
from orchestration.days import local_midnight as local_midnight_of
from orchestration.defs.code_location import build_definitions
from orchestration.defs.dbt_models import clients_to_build
from orchestration.defs.deadline import deadline_of, deadline_verdict
from orchestration.defs.feed_delivery import delivery_failure_metadata
from orchestration.defs.jobs import (
    CLIENT_FILES_JOB,
    CLIENTS_TAG,
    DAILY_MARTS_JOB,
    DEADLINE_JOB,
    FILES_FOLLOW_TAG,
    SFTP_HOST_TAG,
    TIMEZONE_TAG,
)
from orchestration.defs.partitions import day_is_over
from orchestration.defs.sensors import days_of_run, files_run_requests
from orchestration.delivery.sftp import HostKeyMismatch
from tests.e2e_support import write_clients_file

LONDON = ZoneInfo("Europe/London")
LOS_ANGELES = "America/Los_Angeles"
SYDNEY = "Australia/Sydney"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _client(
    schema: str, host: str, feeds: dict[str, Any], timezone: str | None = None
) -> dict[str, Any]:
    return {
        "name": schema,
        "moodle_schema": schema,
        **({"timezone": timezone} if timezone else {}),
        "feeds": feeds,
        "sftp": {
            "host": host,
            "username": schema,
            "directory": "/outbound",
            "private_key_env": f"ODS_TEST_{schema.upper()}_KEY",
            "host_key": HOST_KEY,
        },
    }


# Three London clients (globex and initech share a server), one in Los Angeles, one in Sydney.
CLIENTS = {
    "acme": _client("moodle_acme", "sftp.acme.example", {"completion": {}, "quiz": {}}),
    "globex": _client("moodle_globex", "files.shared.example", {"completion": {}}),
    "initech": _client("moodle_initech", "files.shared.example", {"completion": {}}),
    "zed": _client("moodle_zed", "sftp.zed.example", {"completion": {}}, LOS_ANGELES),
    "koala": _client("moodle_koala", "sftp.koala.example", {"scorm": {}}, SYDNEY),
}
LONDONERS = ["acme", "globex", "initech"]
# Each zone's days whose clocks change (23- and 25-hour days), and an ordinary day.
ZONE_DAYS = {
    "Europe/London": ["2026-03-29", "2026-10-25", "2026-06-10"],
    LOS_ANGELES: ["2026-03-08", "2026-11-01", "2026-06-10"],
    SYDNEY: ["2026-04-05", "2026-10-04", "2026-06-10"],
}
ZONE_DAY_CASES = [(zone, day) for zone, days in ZONE_DAYS.items() for day in days]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("operations")
    clients_file = write_clients_file(
        tmp / "clients.yaml", CLIENTS, archive_dir=str(tmp / "archive")
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ODS_CLIENTS_FILE", str(clients_file))
        env.setenv("DAGSTER_HOME", str(tmp / "dagster"))
        (tmp / "dagster").mkdir()
        defs = build_definitions()
        yield {
            "defs": defs,
            "repository": defs.get_repository_def(),
            "tmp": tmp,
            "config": load_clients(),
        }


def _tick(setup: dict[str, Any], name: str, at: dt.datetime) -> list[dg.RunRequest]:
    schedule = setup["defs"].resolve_schedule_def(name)
    # The module's instance (DAGSTER_HOME): the 05:00 schedule reads its deliveries.
    # The context is closed after the tick: the instance it opens for the schedule (the 05:00
    # schedule reads deliveries) would otherwise stay Dagster's current one after it is gone.
    with (
        dg.DagsterInstance.get() as instance,
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=at, repository_def=setup["repository"]
        ) as context,
    ):
        return list(schedule.evaluate_tick(context).run_requests or [])


def _zone_schedule(setup: dict[str, Any], kind: str, zone: str) -> dg.ScheduleDefinition:
    """The `kind` schedule (daily_marts, deadline) of the clients in `zone`, by its name:
    `<kind>_<zone in lower case, / as _>` (daily_marts_europe_london)."""
    return setup["defs"].resolve_schedule_def(f"{kind}_{zone.lower().replace('/', '_')}")


def _clients_in(zone: str) -> list[str]:
    """CLIENTS whose time zone is `zone` (Europe/London when they name none), sorted."""
    return sorted(c for c, e in CLIENTS.items() if e.get("timezone", "Europe/London") == zone)


def _ticks(schedule: dg.ScheduleDefinition, after: dt.datetime, before: dt.datetime):
    """The schedule's ticks between two instants, as the daemon computes them."""
    for tick in cron_string_iterator(
        after.timestamp(), schedule.cron_schedule, schedule.execution_timezone
    ):
        if tick >= before:
            return
        yield tick


def test_every_time_zone_clients_use_has_its_own_0300_and_0500_schedule(setup):
    names = {s.name: s for s in setup["repository"].schedule_defs}
    assert set(names) == {
        f"{kind}_{slug}"
        for kind in ("daily_marts", "deadline", "folder_reconciliation")
        for slug in ("europe_london", "america_los_angeles", "australia_sydney")
    }
    for zone, slug in (
        ("Europe/London", "europe_london"),
        (LOS_ANGELES, "america_los_angeles"),
        (SYDNEY, "australia_sydney"),
    ):
        marts, deadline = names[f"daily_marts_{slug}"], names[f"deadline_{slug}"]
        assert (marts.cron_schedule, marts.execution_timezone) == ("0 3 * * *", zone)
        assert (deadline.cron_schedule, deadline.execution_timezone) == ("0 5 * * *", zone)
        assert marts.job_name == DAILY_MARTS_JOB and deadline.job_name == DEADLINE_JOB
        assert marts.default_status == deadline.default_status == dg.DefaultScheduleStatus.RUNNING


@pytest.mark.parametrize(("zone", "day"), ZONE_DAY_CASES)
def test_each_zones_day_is_built_at_0300_there_once_it_is_over_dst_days_included(setup, zone, day):
    day = dt.date.fromisoformat(day)
    schedule = _zone_schedule(setup, "daily_marts", zone)
    start_of_day = local_midnight_of(day, zone)
    two_days_on = local_midnight_of(day + dt.timedelta(days=2), zone)
    ticks = list(_ticks(schedule, start_of_day, two_days_on))
    # One tick a local day, at 03:00 local, however long the day (23, 24 or 25 hours).
    assert [t.astimezone(ZoneInfo(zone)).time() for t in ticks] == [dt.time(3, 0)] * 2
    builds_day = ticks[1]  # 03:00 on the morning after
    assert builds_day.astimezone(ZoneInfo(zone)).date() == day + dt.timedelta(days=1)
    (request,) = _tick(setup, schedule.name, builds_day)
    assert request.partition_key == day.isoformat()
    assert request.tags[TIMEZONE_TAG] == zone
    # It runs only once the day is over there, and builds that zone's clients only.
    assert day_is_over(day, zone, builds_day)
    expected = _clients_in(zone)
    config = setup["config"]
    assert clients_to_build(config, request.tags, day, builds_day) == expected


@pytest.mark.parametrize("zone", list(ZONE_DAYS))
def test_no_build_of_a_day_starts_before_that_day_is_over_in_its_zone(setup, zone):
    day = dt.date(2026, 10, 25)
    config = setup["config"]
    last_second = local_midnight_of(day + dt.timedelta(days=1), zone) - dt.timedelta(seconds=1)
    with pytest.raises(dg.Failure, match=f"2026-10-25 is not over yet in {zone}"):
        clients_to_build(config, {TIMEZONE_TAG: zone}, day, last_second)
    # A run without a zone (an operator's, from the UI) needs the day over for every client.
    sydney_is_done = local_midnight_of(day + dt.timedelta(days=1), SYDNEY)
    with pytest.raises(dg.Failure, match=f"not over yet in .*{LOS_ANGELES}"):
        clients_to_build(config, {}, day, sydney_is_done)
    everyone_done = local_midnight_of(day + dt.timedelta(days=1), "Pacific/Pago_Pago")
    assert clients_to_build(config, {}, day, everyone_done) == sorted(CLIENTS)
    assert clients_to_build(config, {CLIENTS_TAG: "zed"}, day, everyone_done) == ["zed"]


@pytest.mark.parametrize(("zone", "day"), ZONE_DAY_CASES)
def test_each_zones_deadline_is_checked_at_0500_there_for_its_missing_files_only(setup, zone, day):
    day = dt.date.fromisoformat(day)
    schedule = _zone_schedule(setup, "deadline", zone)
    after = local_midnight_of(day + dt.timedelta(days=1), zone)
    (tick,) = list(_ticks(schedule, after, after + dt.timedelta(hours=12)))
    assert tick == deadline_of(day, zone)
    requests = _tick(setup, schedule.name, tick)
    # Nothing was delivered in this empty instance: every client of the zone is checked.
    clients = _clients_in(zone)
    assert [r.tags["dagster/partition/client"] for r in requests] == clients
    assert {r.tags["dagster/partition/date"] for r in requests} == {day.isoformat()}
    for request in requests:
        client = request.tags["dagster/partition/client"]
        assert sorted((k.asset_key.path[-1], k.name) for k in request.asset_check_keys) == sorted(
            (f"{feed}_delivery", "delivered_by_0500") for feed in CLIENTS[client]["feeds"]
        )


def test_the_deadline_is_0500_local_on_the_morning_after_the_day():
    # 2026-10-25 is 25 hours long; the morning after is in GMT again.
    assert deadline_of(dt.date(2026, 10, 25), "Europe/London") == dt.datetime(
        2026, 10, 26, 5, 0, tzinfo=LONDON
    )
    assert deadline_of(dt.date(2026, 3, 28), "Europe/London").utcoffset() == dt.timedelta(hours=1)
    assert deadline_of(dt.date(2026, 11, 1), LOS_ANGELES) == dt.datetime(
        2026, 11, 2, 13, 0, tzinfo=dt.UTC
    )
    assert deadline_of(dt.date(2026, 10, 4), SYDNEY) == dt.datetime(
        2026, 10, 4, 18, 0, tzinfo=dt.UTC
    )


def test_late_is_a_failure_and_the_first_delivery_decides():
    deadline = deadline_of(dt.date(2026, 11, 1), LOS_ANGELES)
    minute = dt.timedelta(minutes=1)
    assert deadline_verdict(deadline - minute, deadline) == (True, "on time")  # 04:59
    assert deadline_verdict(deadline, deadline) == (True, "on time")  # 05:00 sharp
    assert deadline_verdict(deadline + minute, deadline) == (False, "late")  # 05:01
    assert deadline_verdict(None, deadline) == (False, "missing")


def _sensor_requests(setup: dict[str, Any], tags: dict[str, str]) -> Any:
    """Evaluate the files sensor for a marts run that succeeded with these tags."""
    run = dg.DagsterRun(job_name=DAILY_MARTS_JOB, run_id=str(uuid.uuid4()), tags=tags)
    event = dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name=DAILY_MARTS_JOB)
    sensor = setup["defs"].resolve_sensor_def("files_after_marts_sensor")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=event,
            dagster_instance=instance,
            dagster_run=run,
            repository_def=setup["repository"],
        )
        return run.run_id, sensor(context)


def test_a_marts_range_is_followed_by_one_files_run_per_client_and_day(setup):
    run_id, requests = _sensor_requests(
        setup,
        {
            ASSET_PARTITION_RANGE_START_TAG: "2026-10-24",
            ASSET_PARTITION_RANGE_END_TAG: "2026-10-26",
        },
    )
    days = ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert [(r.job_name, _client_and_date(r)) for r in requests] == [
        (CLIENT_FILES_JOB, (client, day)) for day in days for client in sorted(CLIENTS)
    ]
    assert all(isinstance(r.partition_key, dg.MultiPartitionKey) for r in requests)
    assert len({r.run_key for r in requests}) == len(requests) == 15
    assert all(run_id in r.run_key for r in requests)
    hosts = {_client_and_date(r)[0]: r.tags[SFTP_HOST_TAG] for r in requests}
    assert hosts["globex"] == hosts["initech"] == "files.shared.example"
    assert hosts["acme"] == "sftp.acme.example"


def test_a_zones_marts_run_is_followed_for_that_zones_clients_only(setup):
    _, requests = _sensor_requests(
        setup, {"dagster/partition": "2026-11-01", TIMEZONE_TAG: LOS_ANGELES}
    )
    assert [_client_and_date(r) for r in requests] == [("zed", "2026-11-01")]
    _, requests = _sensor_requests(
        setup, {"dagster/partition": "2026-11-01", TIMEZONE_TAG: "Europe/London"}
    )
    assert [_client_and_date(r)[0] for r in requests] == LONDONERS


def test_one_files_run_carries_every_feed_the_client_takes_and_nothing_else():
    config = ClientsConfig.model_validate(
        {
            "clients": {
                "acme": _client("moodle_acme", "a.example", {"completion": {}, "quiz": {}}),
                "globex": _client("moodle_globex", "g.example", {"scorm": {}}),
            }
        }
    )
    requests = files_run_requests(config, [dt.date(2026, 10, 25)], ["acme", "globex"], "run-1")
    selection = {
        _client_and_date(r)[0]: sorted(k.path[-1] for k in r.asset_selection or [])
        for r in requests
    }
    assert selection == {
        "acme": ["completion_delivery", "completion_file", "quiz_delivery", "quiz_file"],
        "globex": ["scorm_delivery", "scorm_file"],
    }
    assert {r.job_name for r in requests} == {CLIENT_FILES_JOB}
    checks = {
        _client_and_date(r)[0]: sorted(
            f"{k.asset_key.path[-1]}:{k.name}" for k in r.asset_check_keys or []
        )
        for r in requests
    }
    assert checks["globex"] == [
        "scorm_delivery:delivered_by_0500",
        "scorm_file:header_matches_config",
        "scorm_file:rows_match_mart",
    ]


def _client_and_date(request: dg.RunRequest) -> tuple[str, str]:
    key = request.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    return key.keys_by_dimension["client"], key.keys_by_dimension["date"]


def test_a_single_day_marts_run_is_followed_for_that_day_only(setup):
    _, requests = _sensor_requests(setup, {"dagster/partition": "2026-10-25"})
    assert {_client_and_date(r) for r in requests} == {(c, "2026-10-25") for c in CLIENTS}


def test_an_ods_rebuild_marts_run_names_its_client(setup):
    _, requests = _sensor_requests(setup, {"dagster/partition": "2026-10-25", CLIENTS_TAG: "zed"})
    assert [_client_and_date(r) for r in requests] == [("zed", "2026-10-25")]


def test_a_marts_run_of_ods_rebuild_is_not_followed(setup):
    _, result = _sensor_requests(
        setup, {"dagster/partition": "2026-10-25", FILES_FOLLOW_TAG: "false"}
    )
    assert isinstance(result, dg.SkipReason)


def test_days_of_run_reads_the_partition_or_the_range():
    assert days_of_run({"dagster/partition": "2026-10-25"}) == [dt.date(2026, 10, 25)]
    assert days_of_run(
        {ASSET_PARTITION_RANGE_START_TAG: "2026-10-31", ASSET_PARTITION_RANGE_END_TAG: "2026-11-01"}
    ) == [dt.date(2026, 10, 31), dt.date(2026, 11, 1)]
    assert days_of_run({}) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--client", "nobody"],
            "unknown client 'nobody'; clients: acme, globex, initech, koala, zed",
        ),
        (
            ["--client", "globex", "--feed", "quiz"],
            "client 'globex' does not get the quiz feed; its feeds: completion",
        ),
        (
            ["--client", "zed", "--from", "2999-01-01"],
            "2999-01-01 is not over yet in America/Los_Angeles (client zed's time zone)",
        ),
        (["--client", "acme", "--to", "2026-10-20"], "--to 2026-10-20 is before --from 2026-10-25"),
        (["--client", "acme", "--from", "2025-12-31"], "before the first day, 2026-01-01"),
        (["--client", "acme", "--from", "2999-01-01"], "2999-01-01 is not over yet"),
        (
            ["--client", "acme", "--to", "2026-10-26"],
            "no archived file Quiz20261026.csv (quiz, day 2026-10-25), "
            "Quiz20261027.csv (quiz, day 2026-10-26), "
            "Completion20261026.csv (completion, day 2026-10-25), "
            "Completion20261027.csv (completion, day 2026-10-26)",
        ),
    ],
)
def test_ods_resend_refuses_a_request_it_cannot_carry_out(setup, capsys, args, message):
    if "--from" not in args:
        args = [*args, "--from", "2026-10-25"]
    assert cli.main(["resend", *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ")
    assert message in error


def test_ods_rebuild_refuses_an_unknown_client_before_running_anything(setup, capsys):
    assert cli.main(["rebuild", "--client", "umbrella", "--from", "2026-10-25"]) == 2
    assert "unknown client 'umbrella'" in capsys.readouterr().err


def test_the_demo_instance_limits_concurrent_runs_per_sftp_host(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ODS_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    use_demo_dagster_home()
    with dg.DagsterInstance.get() as instance:
        queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    assert queue.tag_concurrency_limits == [
        {"key": SFTP_HOST_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 2}
    ]


def test_a_changed_host_key_puts_both_fingerprints_in_the_failures_metadata():
    changed = HostKeyMismatch("host key changed", expected="SHA256:a", presented="SHA256:b")
    assert not changed.retryable
    assert delivery_failure_metadata(changed) == {
        "pinned_fingerprint": "SHA256:a",
        "presented_fingerprint": "SHA256:b",
    }
