"""A night through Dagster's daemon and run queue on the PostgreSQL instance, as production runs it.

This is `benchmarks/nightly_at_scale.py` at four clients on one SFTP server: its own embedded
PostgreSQL (the warehouse, and a database of its own for Dagster's runs, event log and schedules)
and SFTP server processes, the shipped instance deploy/dagster.yaml (queued run coordinator,
limits, run monitoring and retries) with the per-host limit at 2, `dagster-daemon run` launching
every run in its own process, each zone's 03:00 tick submitted to the queue, the files sensor
launching the files runs. The benchmark exits 1 when any expected file is missing from its
client's folder (or a zone times out), so a night whose runs all "succeed" but that leaves a file
undelivered fails here. The queue's limits are read back from the instance's run records: the
launch (RUN_STARTING) and end of every run.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from typing import Any

import pytest

from orchestration.paths import PROJECT_ROOT

BENCHMARK = PROJECT_ROOT / "benchmarks" / "nightly_at_scale.py"
CLIENTS = 4  # the fleet's first four: three in Europe/London, one in America/New_York
PER_HOST = 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("daemon-night")
    summary = work / "summary.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            *("--clients", str(CLIENTS), "--sftp-hosts", "1", "--per-host", str(PER_HOST)),
            *("--learners-range", "10-20", "--days", "3", "--port", str(_free_port())),
            *("--work", str(work / "night"), "--timeout", "400", "--summary", str(summary)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output, json.loads(summary.read_text())[0]


def test_a_night_through_the_daemon_delivers_every_clients_files(
    night: tuple[str, dict[str, Any]],
) -> None:
    output, summary = night
    delivered = re.search(r"files: (\d+) delivered of (\d+) expected", output)
    assert delivered, output[-4000:]
    assert int(delivered.group(1)) == int(delivered.group(2)) > CLIENTS, delivered.group(0)
    assert summary["delivered"] == summary["expected"]
    # One files run per client, launched by the daemon from the sensor's requests; none failed.
    assert re.search(rf"^runs: .*\bclient_files_job {CLIENTS}\b", output, re.MULTILINE), output[
        -4000:
    ]
    assert {run["status"] for run in summary["runs"]} == {"SUCCESS"}


def test_the_run_queue_kept_its_limits_by_the_run_records(
    night: tuple[str, dict[str, Any]],
) -> None:
    _, summary = night
    files = [run for run in summary["runs"] if run["job"] == "client_files_job"]
    assert {run["tags"]["ods/sftp_host"] for run in files} == {"127.0.0.1"}
    queue = summary["queue"]
    # London's three files runs were requested at once: the queue let two of them run together
    # on the one server, never three.
    assert queue["most_files_runs_at_once_per_host"] == {"127.0.0.1": PER_HOST}
    assert summary["limits"] == {"max_concurrent_runs": 8, "per_sftp_host": PER_HOST}
    assert queue["most_runs_at_once"] <= summary["limits"]["max_concurrent_runs"]
    # ... and the third waited in the queue for a slot: launched only once one of them ended.
    london = sorted(
        (r for r in files if r["tags"]["dagster/partition"].split("|")[0] != "c002"),
        key=lambda r: r["starting"],
    )
    assert len(london) == 3
    assert london[2]["starting"] >= min(london[0]["ended"], london[1]["ended"])
