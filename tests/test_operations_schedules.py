"""The nightly clock and the operator's commands, without a database: schedule ticks, the files
sensor's requests, the deadline's time, and `ods resend`/`rebuild` refusing bad requests."""

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

from orchestration import cli
from orchestration.clients import ClientsConfig
from orchestration.defs.code_location import build_definitions
from orchestration.defs.deadline import deadline_of
from orchestration.defs.feed_delivery import delivery_failure
from orchestration.defs.jobs import DAILY_MARTS_JOB, FILES_FOLLOW_TAG, SFTP_HOST_TAG
from orchestration.defs.sensors import days_of_run, files_run_requests
from orchestration.delivery.sftp import DeliveryError, HostKeyMismatch
from orchestration.local.demo import use_demo_dagster_home
from tests.e2e_support import write_clients_file

LONDON = ZoneInfo("Europe/London")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _client(schema: str, host: str, feeds: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": schema,
        "moodle_schema": schema,
        "feeds": feeds,
        "sftp": {
            "host": host,
            "username": schema,
            "directory": "/outbound",
            "private_key_env": f"ODS_TEST_{schema.upper()}_KEY",
            "host_key": HOST_KEY,
        },
    }


# Definitions need each feed's mart in dbt's manifest, so the code location here subscribes to the
# completion feed only; the fan-out over several feeds is tested on `files_run_requests` below.
# globex and initech share a server.
CLIENTS = {
    "acme": _client("moodle_acme", "sftp.acme.example", {"completion": {}}),
    "globex": _client("moodle_globex", "files.shared.example", {"completion": {}}),
    "initech": _client("moodle_initech", "files.shared.example", {"completion": {}}),
}


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
        yield {"defs": defs, "repository": defs.get_repository_def(), "tmp": tmp}


def _tick(setup: dict[str, Any], name: str, at: dt.datetime) -> list[dg.RunRequest]:
    schedule = setup["defs"].resolve_schedule_def(name)
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=at, repository_def=setup["repository"]
        )
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_the_0300_schedule_builds_yesterdays_marts_in_local_time(setup):
    schedule = setup["defs"].resolve_schedule_def("daily_marts_schedule")
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "Europe/London"
    assert schedule.job_name == DAILY_MARTS_JOB
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # 03:00 BST on the day the clocks went forward is 02:00 UTC: still "yesterday" = 28 March.
    (request,) = _tick(setup, "daily_marts_schedule", dt.datetime(2026, 3, 29, 3, 0, tzinfo=LONDON))
    assert request.partition_key == "2026-03-28"
    assert request.run_key == "2026-03-28"


def test_the_0500_schedule_checks_yesterday_for_each_subscribed_client(setup):
    at = dt.datetime(2026, 10, 26, 5, 0, tzinfo=LONDON)
    schedule = setup["defs"].resolve_schedule_def("completion_deadline_schedule")
    assert schedule.cron_schedule == "0 5 * * *"
    assert schedule.execution_timezone == "Europe/London"
    assert schedule.job_name == "completion_deadline_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    requests = _tick(setup, "completion_deadline_schedule", at)
    assert [r.tags["dagster/partition"] for r in requests] == [
        "acme|2026-10-25",
        "globex|2026-10-25",
        "initech|2026-10-25",
    ]
    assert [r.tags["dagster/partition/date"] for r in requests] == ["2026-10-25"] * 3
    assert len({r.run_key for r in requests}) == 3


def test_the_deadline_is_0500_local_on_the_morning_after_the_day():
    # 2026-10-25 is 25 hours long; the morning after is in GMT again.
    assert deadline_of(dt.date(2026, 10, 25), "Europe/London") == dt.datetime(
        2026, 10, 26, 5, 0, tzinfo=LONDON
    )
    assert deadline_of(dt.date(2026, 3, 28), "Europe/London").utcoffset() == dt.timedelta(hours=1)


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
        ("completion_files_job", (client, day)) for day in days for client in CLIENTS
    ]
    assert all(isinstance(r.partition_key, dg.MultiPartitionKey) for r in requests)
    assert len({r.run_key for r in requests}) == len(requests) == 9
    assert all(run_id in r.run_key for r in requests)
    hosts = {_client_and_date(r)[0]: r.tags[SFTP_HOST_TAG] for r in requests}
    assert hosts == {
        "acme": "sftp.acme.example",
        "globex": "files.shared.example",
        "initech": "files.shared.example",
    }


def test_each_feed_is_requested_for_its_own_subscribers_only():
    config = ClientsConfig.model_validate(
        {
            "clients": {
                "acme": _client("moodle_acme", "a.example", {"completion": {}, "quiz": {}}),
                "globex": _client("moodle_globex", "g.example", {"scorm": {}}),
            }
        }
    )
    requests = files_run_requests(config, [dt.date(2026, 10, 25)], "run-1")
    assert sorted((r.job_name, _client_and_date(r)[0]) for r in requests) == [
        ("completion_files_job", "acme"),
        ("quiz_files_job", "acme"),
        ("scorm_files_job", "globex"),
    ]


def _client_and_date(request: dg.RunRequest) -> tuple[str, str]:
    key = request.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    return key.keys_by_dimension["client"], key.keys_by_dimension["date"]


def test_a_single_day_marts_run_is_followed_for_that_day_only(setup):
    _, requests = _sensor_requests(setup, {"dagster/partition": "2026-10-25"})
    assert {_client_and_date(r) for r in requests} == {(c, "2026-10-25") for c in CLIENTS}


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
        (["--client", "nobody"], "unknown client 'nobody'; clients: acme, globex, initech"),
        (
            ["--client", "globex", "--feed", "quiz"],
            "client 'globex' does not get the quiz feed; its feeds: completion",
        ),
        (["--client", "acme", "--to", "2026-10-20"], "--to 2026-10-20 is before --from 2026-10-25"),
        (["--client", "acme", "--from", "2025-12-31"], "before the first day, 2026-01-01"),
        (["--client", "acme", "--from", "2999-01-01"], "2999-01-01 is not over yet"),
        (
            ["--client", "acme", "--to", "2026-10-26"],
            "no archived file Completion20261026.csv (completion, day 2026-10-25), "
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


def test_a_delivery_fault_is_retried_only_when_a_later_attempt_may_not_meet_it():
    transient = DeliveryError("client acme: could not deliver X: server down", retryable=True)
    assert delivery_failure(transient, "client acme, feed completion").allow_retries
    changed = HostKeyMismatch("host key changed", expected="SHA256:a", presented="SHA256:b")
    failure = delivery_failure(changed, "client acme, feed completion")
    assert not failure.allow_retries
    assert failure.description == "client acme, feed completion: host key changed"
    assert failure.metadata["presented_fingerprint"].value == "SHA256:b"
