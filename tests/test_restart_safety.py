"""A night through the daemon on the PostgreSQL instance: the run queue keeps its limits (read back
from the run records), and with its processes killed in the middle the night still delivers every
client-day's files exactly once.

One night serves both (a night costs minutes on 2 cores): the faults below do not lift the
queue's limits, so the limits are asserted over the whole night, kills, retries and all.

`benchmarks/nightly_at_scale.py --faults worker,daemon,code-server` plays the night of four
clients on one SFTP server (one files run at a time, so each fault meets one run in progress) and
kills, one files run after another:

- worker: the run's own process, between two deliveries (once the ledger records its first; the
  SFTP server paused for the moment of the kill). The launcher that forked it sees it die and
  reports the run failed at once; the instance's `run_retries` run it again, and the retry sends
  only the files the dead run did not deliver.
- daemon: `dagster-daemon`'s whole process group (the daemon, its code server, the launcher's fork
  server and the run in progress), then starts it again. Nobody is left to report the run: the
  restarted daemon's run monitoring finds its process gone (the launcher's health check by the
  process id in the run's tags) and fails it, and `run_retries` runs it again. The files sensor's
  run keys keep the restarted daemon from requesting the client-days again.
- code-server: the daemon's code server alone. The run in progress is not its child (the fork
  server's): it finishes on its own, and the daemon starts a new code server.

Exactly once is checked at the edges: each client's ledger has one delivery per file, and each file
the dead runs had delivered is still the same file on the server (same inode: never uploaded over).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestration.delivery import ledger
from orchestration.paths import PROJECT_ROOT

BENCHMARK = PROJECT_ROOT / "benchmarks" / "nightly_at_scale.py"
CLIENTS = 4
FILES_JOB = "client_files_job"
PARENT_TAG = "dagster/parent_run_id"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from ods_local.postgres import stop_postgres

    work = tmp_path_factory.mktemp("restart-safety") / "night"
    summary = work.parent / "summary.json"
    try:
        done = subprocess.run(
            [
                sys.executable,
                str(BENCHMARK),
                *("--clients", str(CLIENTS), "--sftp-hosts", "1", "--per-host", "1"),
                *("--learners-range", "10-20", "--days", "3", "--port", str(_free_port())),
                *("--work", str(work), "--timeout", "1500", "--summary", str(summary)),
                *("--faults", "worker,daemon,code-server", "--restart-max-runtime", "50"),
                "--keep",  # the folders and ledgers are read below
            ],
            capture_output=True,
            text=True,
            timeout=2400,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-6000:]
        state = json.loads(summary.read_text())[0]
        state["output"] = output
        state["folder"] = work / f"n{CLIENTS}"
        yield state
    finally:
        stop_postgres(work / "pgdata")


def _fault(night: dict[str, Any], kind: str) -> dict[str, Any]:
    (fault,) = [f for f in night["faults"] if f["fault"] == kind]
    return fault


def _runs(night: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {run["run_id"]: run for run in night["runs"]}


def _retry_of(night: dict[str, Any], run_id: str) -> dict[str, Any]:
    (retry,) = [r for r in night["runs"] if r["tags"].get(PARENT_TAG) == run_id]
    return retry


def test_every_fault_met_a_files_run_in_progress(night: dict[str, Any]) -> None:
    assert [f["fault"] for f in night["faults"]] == ["worker", "daemon", "code-server"]
    runs = _runs(night)
    for fault in night["faults"]:
        assert runs[fault["run_id"]]["job"] == FILES_JOB


def test_every_client_days_files_are_on_the_server_and_delivered_exactly_once(
    night: dict[str, Any],
) -> None:
    assert night["delivered"] == night["expected"]
    expected = [Path(p) for p in night["expected"]]
    clients = sorted({p.parent.parent.name for p in expected})
    deliveries = Counter(
        (d.client_id, d.file_name)
        for client in clients
        for d in ledger.read_deliveries(night["folder"] / "archive", client)
    )
    assert deliveries == Counter((p.parent.parent.name, p.name) for p in expected)
    # No other feed file in the folders (a file delivered under another day's name, say).
    for client in clients:
        folder = night["folder"] / "sftp" / "root" / client / "outbound"
        assert sorted(p.name for p in folder.glob("*.csv")) == sorted(
            p.name for p in expected if p.parent.parent.name == client
        )


def test_the_files_that_dead_runs_had_delivered_were_not_sent_again(
    night: dict[str, Any],
) -> None:
    worker = _fault(night, "worker")
    assert 0 < len(worker["delivered_before"]) <= worker["files"]
    client = worker["partition"].split("|")[0]
    folder = night["folder"] / "sftp" / "root" / client / "outbound"
    for name, inode in worker["delivered_before"].items():
        assert (folder / name).stat().st_ino == inode, name
    root = night["folder"] / "sftp" / "root"
    for path, inode in _fault(night, "daemon")["delivered_before"].items():
        client, name = path.split("/")
        assert (root / client / "outbound" / name).stat().st_ino == inode, path


def test_a_run_whose_process_died_was_reported_failed_and_retried(night: dict[str, Any]) -> None:
    runs = _runs(night)
    dead = runs[_fault(night, "worker")["run_id"]]
    assert dead["status"] == "FAILURE"
    retry = _retry_of(night, dead["run_id"])
    assert retry["status"] == "SUCCESS"
    # The retry keeps the run's tags: the same client-day, host limit and sensor's marks.
    for tag in ("dagster/partition", "ods/sftp_host", "ods/marts_run"):
        assert retry["tags"][tag] == dead["tags"][tag]


def test_runs_orphaned_by_the_daemons_death_were_failed_by_run_monitoring_and_retried(
    night: dict[str, Any],
) -> None:
    runs = _runs(night)
    fault = _fault(night, "daemon")
    orphans = [runs[i] for i in fault["in_flight"] if runs[i]["job"] == FILES_JOB]
    assert fault["run_id"] in {r["run_id"] for r in orphans}
    for orphan in orphans:
        if orphan["status"] == "SUCCESS":  # only queued at the kill: launched after the restart
            continue
        assert orphan["status"] == "FAILURE"
        # Failed by run monitoring's health check (the process is gone), not after waiting out
        # the run's maximum runtime.
        assert any("is gone" in e for e in orphan["errors"]), orphan
        assert _retry_of(night, orphan["run_id"])["status"] == "SUCCESS"


def test_the_sensor_requested_each_client_day_once_across_the_restart(
    night: dict[str, Any],
) -> None:
    requested = [
        r["tags"]["dagster/partition"]
        for r in night["runs"]
        if r["job"] == FILES_JOB and PARENT_TAG not in r["tags"]
    ]
    assert len(requested) == len(set(requested)) == CLIENTS


def test_every_files_run_succeeded_or_was_retried_to_success(night: dict[str, Any]) -> None:
    for run in night["runs"]:
        if run["job"] == FILES_JOB and run["status"] != "SUCCESS":
            assert _retry_of(night, run["run_id"])["status"] == "SUCCESS", run


def test_the_run_queue_kept_its_per_host_limit_by_the_run_records(night: dict[str, Any]) -> None:
    files = [run for run in night["runs"] if run["job"] == FILES_JOB]
    assert {run["tags"]["ods/sftp_host"] for run in files} == {"127.0.0.1"}
    assert night["limits"] == {"max_concurrent_runs": 8, "per_sftp_host": 1}
    queue = night["queue"]
    assert queue["most_files_runs_at_once_per_host"] == {"127.0.0.1": 1}
    assert queue["most_runs_at_once"] <= night["limits"]["max_concurrent_runs"]
    # ... and the limit bound: a files run queued while another was in progress was launched only
    # once that one had ended (a dead run ends when it is reported failed).
    waited = [
        (first["run_id"], later["run_id"])
        for first in files
        for later in files
        if later is not first
        and first["starting"] is not None
        and first["ended"] is not None
        and later["starting"] is not None
        and later["created"] < first["ended"] <= later["starting"]
    ]
    assert waited, "no files run ever waited for the per-host limit"
