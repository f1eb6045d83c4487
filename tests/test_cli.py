"""`ods` exit statuses and one-line errors: 2 for a request refused before anything ran (usage, a
busy local SFTP port), 1 for a run that ran and failed (the marts run of `ods rebuild`)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ods_local import services
from ods_local.postgres import LocalPostgres
from orchestration.cli import main
from tests.e2e_support import dagster_home_with_shipped_launcher

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clients_file(path: Path, sftp: dict, schema: str = "moodle_acme", **top: object) -> Path:
    clients = {
        "timezone": "Europe/London",
        **top,
        "clients": {
            "acme": {
                "name": "Acme",
                "moodle_schema": schema,
                "feeds": {"completion": {}},
                "sftp": {"username": "acme", "directory": "/outbound", **sftp},
            }
        },
    }
    path.write_text(yaml.safe_dump(clients))
    return path


@pytest.mark.parametrize("command", ["generate", "demo"])
def test_too_few_learners_is_a_usage_error(command, capsys):
    # The scripted cases need their 7 named learners (zoe, jose, lukasz, obrien, quoted,
    # deleted, suspended).
    with pytest.raises(SystemExit) as exited:
        main([command, "--learners", "5"])
    assert exited.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [
        f"ods {command}: error: argument --learners: 5 is too few: a site has at least 7 "
        "learners (the named learners of the scripted cases)"
    ]


@pytest.fixture
def busy_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """ODS_HOME in tmp_path, the local SFTP port (the clients file's) taken by another program."""
    port = _free_port()
    home = tmp_path / "ods"
    monkeypatch.setenv("ODS_HOME", str(home))
    monkeypatch.delenv("ODS_SFTP_PORT", raising=False)
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    sftp = {
        "host": "127.0.0.1",
        "port": port,
        "private_key_path": str(home / "sftp/client_keys/acme"),
        "host_key_file": str(home / "sftp/ssh_host_ed25519_key.pub"),
    }
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(_clients_file(tmp_path / "clients.yaml", sftp)))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            yield home, port
        finally:
            services.down(home)


def test_a_busy_sftp_port_is_one_line_naming_the_port_and_the_clients_file(busy_port, capsys):
    home, port = busy_port
    for command in (["up"], ["demo", "--learners", "7"]):
        assert main(command) == 2
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
        assert captured.err.startswith(f"error: port {port} on 127.0.0.1 ")
        assert "is in use by another program" in captured.err
        assert "sftp.port in the clients file" in captured.err
        assert str(Path(os.environ["ODS_CLIENTS_FILE"])) in captured.err
    assert not (home / "sftp" / "server.pid").exists()


def test_a_failed_marts_run_of_rebuild_exits_1(
    pg: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    # The client's Moodle schema does not exist: the union-views step of the marts run fails.
    sftp = {"host": "sftp.example.org", "private_key_env": "UNUSED_KEY", "host_key": HOST_KEY}
    clients = _clients_file(
        tmp_path / "clients.yaml",
        sftp,
        schema="moodle_missing",
        first_day="2026-01-01",
        archive_dir=str(tmp_path / "archive"),
    )
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients))
    monkeypatch.setenv(
        "DAGSTER_HOME", str(dagster_home_with_shipped_launcher(tmp_path / "dagster"))
    )
    monkeypatch.setenv("ODS_HOME", str(tmp_path / "ods"))  # the command's log goes there
    for name, value in pg.libpq_env().items():
        monkeypatch.setenv(name, value)
    assert main(["rebuild", "--client", "acme", "--from", "2026-02-02"]) == 1
    error = capsys.readouterr().err
    assert "error: the marts run for 2026-02-02..2026-02-02 failed" in error
    assert "moodle_missing" in error, error  # the cause, not Dagster's wrapper
    assert error.splitlines()[-1].startswith(f"log (dbt and Dagster): {tmp_path / 'ods' / 'logs'}")
    # A refusal (a day before first_day) is still 2: nothing ran.
    assert main(["rebuild", "--client", "acme", "--from", "2025-12-31"]) == 2
