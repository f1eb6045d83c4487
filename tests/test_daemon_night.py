"""A night through Dagster's daemon and run queue, as production runs it, for a handful of clients.

This is `benchmarks/nightly_at_scale.py` at three clients: its own embedded PostgreSQL and SFTP
server processes, a Dagster instance with the queued run coordinator and the README's limits,
`dagster-daemon run` launching every run in its own process, each zone's 03:00 tick submitted to
the queue, the files sensor launching the files runs. The benchmark exits 1 when any expected
file is missing from its client's folder (or a zone times out), so a night whose runs all
"succeed" but that leaves a file undelivered fails here.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from orchestration.paths import PROJECT_ROOT

BENCHMARK = PROJECT_ROOT / "benchmarks" / "nightly_at_scale.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_night_through_the_daemon_delivers_every_clients_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--clients",
            "3",
            "--sftp-hosts",
            "1",
            "--learners-range",
            "10-20",
            "--days",
            "3",
            "--port",
            str(_free_port()),
            "--work",
            str(tmp_path / "night"),
            "--timeout",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    delivered = re.search(r"files: (\d+) delivered of (\d+) expected", output)
    assert delivered, output[-4000:]
    assert int(delivered.group(1)) == int(delivered.group(2)) > 3, delivered.group(0)
    # One files run per client, launched by the daemon from the sensor's requests.
    assert re.search(r"^runs: .*\bclient_files_job 3\b", output, re.MULTILINE), output[-4000:]
