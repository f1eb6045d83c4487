"""`ods resend` through the Dagster instance's run queue, as an operator runs it: real runs in the
instance's run history, tagged as the files sensor tags its runs, under the instance's limit per
SFTP host, over PostgreSQL and the local SFTP server.

The instance is the shipped one (deploy/dagster.yaml: storage on PostgreSQL, here a database of its
own on the session's embedded server; the QueuedRunCoordinator; the PreloadedRunLauncher; a limit
per `ods/sftp_host` value; the `dbt_marts` pool) with the per-host limit at 1, in a temporary
DAGSTER_HOME. No dagster-daemon serves it, so each command starts its own runs with Dagster's queue
logic (orchestration/defs/queued_runs.py); one test gives it a daemon's heartbeat, and the command
then leaves its run in the queue for the daemon. Two clients share one SFTP server; the module fixture
builds and delivers their files of one day in-process (the demo's path), which archives them.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster._daemon.types import DaemonHeartbeat

from orchestration import cli
from orchestration.clients import load_clients
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import CLIENT_FILES_JOB, SFTP_HOST_TAG
from orchestration.defs.queued_runs import WORKSPACE_FILE, code_location_target
from orchestration.defs.reruns import STARTED_BY_TAG, build_marts, run_client_files
from orchestration.feeds import FEEDS
from tests.e2e_support import (
    client_entry,
    client_sites,
    generate_sites,
    instance_database_url,
    ods_environment,
    parse_csv,
    start_sftp_server,
    write_clients_file,
)

ODS = Path(sys.executable).with_name("ods")
DAY = dt.date(2026, 11, 20)
FILE = f"Completion{DAY + dt.timedelta(days=1):%Y%m%d}.csv"
CLIENTS = ("acme", "globex")
SITES = client_sites(
    {"acme": {"release": "4.2", "seed": 41}, "globex": {"release": "4.5", "seed": 42}},
    prefix="mdl_",
    learners=20,
    courses=3,
    start=DAY - dt.timedelta(days=2),
    days=3,
)
DAGSTER_YAML = """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url: "{url}"
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
run_launcher:
  module: orchestration.run_launcher
  class: PreloadedRunLauncher
concurrency:
  runs:
    max_concurrent_runs: 8
    tag_concurrency_limits:
      - key: ods/sftp_host
        value:
          applyLimitPerUniqueValue: true
        limit: 1
  pools:
    default_limit: 1
"""


@pytest.fixture(scope="module")
def site(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("reruns")
    generate_sites(module_pg, SITES.values())
    server, keys = start_sftp_server(tmp, CLIENTS)
    clients = {name: client_entry(SITES[name].schema, server, name, keys[name]) for name in CLIENTS}
    clients_file = write_clients_file(
        tmp / "clients.yaml", clients, archive_dir=str(tmp / "archive")
    )
    (tmp / "dagster").mkdir()
    (tmp / "dagster" / "dagster.yaml").write_text(
        DAGSTER_YAML.format(url=instance_database_url(module_pg))
    )
    # ODS_HOME: the commands' logs.
    with ods_environment(
        module_pg, clients_file, DAGSTER_HOME=str(tmp / "dagster"), ODS_HOME=str(tmp / "ods")
    ):
        config = load_clients()
        defs = build_definitions()
        with dg.DagsterInstance.get() as instance:
            build_marts(defs, instance, DAY, DAY, by="test", feeds=[FEEDS["completion"]])
            for client_id in CLIENTS:
                (made,) = run_client_files(
                    defs,
                    instance,
                    config,
                    client_id,
                    DAY,
                    [FEEDS["completion"]],
                    deliver_only=False,
                    by="test",
                )
                assert made.success, made.message
            yield {
                "instance": instance,
                "server": server,
                "tmp": tmp,
                "folders": {c: server.root / c / "outbound" for c in CLIENTS},
                "archived": {
                    c: (tmp / "archive" / c / "completion" / FILE).read_bytes() for c in CLIENTS
                },
            }
    server.stop()


def _new_runs(instance: dg.DagsterInstance, before: set[str]) -> list[dg.DagsterRun]:
    return [run for run in instance.get_runs() if run.run_id not in before]


def _went_through_the_queue(instance: dg.DagsterInstance, run_id: str) -> bool:
    enqueued = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)
    return bool(enqueued.records)


def test_ods_resend_is_a_queued_run_in_the_instance_with_the_files_runs_tags(site, capsys):
    instance, folder = site["instance"], site["folders"]["acme"]
    (folder / FILE).unlink()
    before = {run.run_id for run in instance.get_runs()}

    assert cli.main(["resend", "--client", "acme", "--from", DAY.isoformat()]) == 0

    output = capsys.readouterr().out
    (run,) = _new_runs(instance, before)
    assert run.job_name == CLIENT_FILES_JOB
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert _went_through_the_queue(instance, run.run_id)
    assert run.asset_selection == {dg.AssetKey("completion_delivery")}
    assert {
        key: run.tags.get(key)
        for key in (
            SFTP_HOST_TAG,
            STARTED_BY_TAG,
            "dagster/partition/client",
            "dagster/partition/date",
        )
    } == {
        SFTP_HOST_TAG: "127.0.0.1",
        STARTED_BY_TAG: "ods resend",
        "dagster/partition/client": "acme",
        "dagster/partition/date": DAY.isoformat(),
    }
    again = (folder / FILE).read_bytes()
    assert again == site["archived"]["acme"]
    rows = len(parse_csv(again)) - 1
    assert rows > 0
    assert (
        f"  sent {FILE} (completion, day {DAY}) to acme@127.0.0.1:{site['server'].port}:"
        f"/outbound/{FILE}: {rows} rows, {len(again)} bytes, sha256 "
    ) in output
    assert "1 sent, 0 failed" in output


def test_two_resends_at_once_on_one_sftp_host_never_overlap_under_a_limit_of_one(site):
    instance = site["instance"]
    before = {run.run_id for run in instance.get_runs()}
    commands = [
        subprocess.Popen(
            [str(ODS), "resend", "--client", client_id, "--from", DAY.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for client_id in CLIENTS
    ]
    outputs = [command.communicate(timeout=180)[0] for command in commands]
    assert [command.returncode for command in commands] == [0, 0], outputs

    runs = _new_runs(instance, before)
    assert sorted(run.tags["dagster/partition/client"] for run in runs) == sorted(CLIENTS)
    assert {run.tags[SFTP_HOST_TAG] for run in runs} == {"127.0.0.1"}
    records = sorted(
        instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id for run in runs])),
        key=lambda record: record.start_time or 0,
    )
    for record in records:
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        assert _went_through_the_queue(instance, record.dagster_run.run_id)
    first, second = records
    assert first.end_time is not None and second.start_time is not None
    assert first.end_time <= second.start_time, (first.end_time, second.start_time)
    for client_id in CLIENTS:
        delivered = (site["folders"][client_id] / FILE).read_bytes()
        assert delivered == site["archived"][client_id]


def test_no_wait_returns_with_the_run_started_and_prints_its_id(site, capsys):
    instance = site["instance"]
    before = {run.run_id for run in instance.get_runs()}

    assert cli.main(["resend", "--client", "globex", "--from", DAY.isoformat(), "--no-wait"]) == 0

    output = capsys.readouterr().out
    (run,) = _new_runs(instance, before)
    assert f"  {run.run_id}  globex {DAY} (" in output
    assert "sent" not in output  # nothing waited for, nothing reported
    # No daemon serves the instance: the command started its run before returning.
    assert run.status != dg.DagsterRunStatus.QUEUED
    deadline = time.monotonic() + 120
    while not run.is_finished and time.monotonic() < deadline:
        time.sleep(0.5)
        run = instance.get_run_by_id(run.run_id)
        assert run is not None
    assert run.status == dg.DagsterRunStatus.SUCCESS


def test_with_a_daemon_serving_the_queue_the_command_leaves_its_run_to_it(site, capsys):
    # A heartbeat of the daemon's run queue, as a running dagster-daemon writes every 30 s.
    instance = site["instance"]
    instance.add_daemon_heartbeat(
        DaemonHeartbeat(time.time(), QueuedRunCoordinatorDaemon.daemon_type(), None, None)
    )
    before = {run.run_id for run in instance.get_runs()}
    try:
        assert cli.main(["resend", "--client", "acme", "--from", DAY.isoformat(), "--no-wait"]) == 0
        (run,) = _new_runs(instance, before)
        assert f"  {run.run_id}  acme {DAY} (queued)" in capsys.readouterr().out
        assert run.status == dg.DagsterRunStatus.QUEUED
    finally:
        instance.wipe_daemon_heartbeats()
        for run in _new_runs(instance, before):
            instance.delete_run(run.run_id)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client", "umbrella", "--from", DAY.isoformat()], "unknown client 'umbrella'"),
        (
            ["--client", "acme", "--from", (DAY - dt.timedelta(days=1)).isoformat()],
            f"no archived file Completion{DAY:%Y%m%d}.csv",
        ),
    ],
)
def test_a_refused_resend_exits_2_and_submits_no_run(site, capsys, args, message):
    instance = site["instance"]
    before = {run.run_id for run in instance.get_runs()}
    assert cli.main(["resend", *args]) == 2
    assert message in capsys.readouterr().err
    assert _new_runs(instance, before) == []


def test_a_command_loads_the_code_location_in_process_unless_the_launcher_needs_a_code_server():
    shipped_launcher = {"module": "orchestration.run_launcher", "class": "PreloadedRunLauncher"}
    (workspace,) = WorkspaceFileTarget(paths=[str(WORKSPACE_FILE)]).create_origins()
    with dg.instance_for_test(overrides={"run_launcher": shipped_launcher}) as shipped:
        (origin,) = code_location_target(shipped).create_origins()
    # Under the workspace's own name: the daemon, the UI and run retries find it by that name.
    assert isinstance(origin, InProcessCodeLocationOrigin)
    assert origin.location_name == workspace.location_name
    assert origin.loadable_target_origin == workspace.loadable_target_origin
    # Dagster's DefaultRunLauncher (a test instance's default) starts runs through a code server.
    with dg.instance_for_test() as default:
        assert isinstance(code_location_target(default), WorkspaceFileTarget)


def test_with_dagsters_default_launcher_the_command_runs_through_a_code_server_of_its_own(
    site, tmp_path, monkeypatch, capsys
):
    # An instance whose run launcher is Dagster's default (a DAGSTER_HOME with no launcher set):
    # it starts runs only through a code server, so the command starts one (code_location_target).
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    folder = site["folders"]["globex"]
    (folder / FILE).unlink()

    assert cli.main(["resend", "--client", "globex", "--from", DAY.isoformat()]) == 0

    assert "1 sent, 0 failed" in capsys.readouterr().out
    assert (folder / FILE).read_bytes() == site["archived"]["globex"]
    with dg.DagsterInstance.get() as default:
        assert type(default.run_launcher).__name__ == "DefaultRunLauncher"
        (run,) = default.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.remote_job_origin is not None
    location = run.remote_job_origin.repository_origin.code_location_origin
    assert type(location).__name__ == "ManagedGrpcPythonEnvCodeLocationOrigin"
