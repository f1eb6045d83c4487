"""`ods up / status / down`: safe to repeat, and a clear error when the SFTP port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from orchestration.clients import load_clients
from orchestration.local import services


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    port = _free_port()
    monkeypatch.setenv("ODS_SFTP_PORT", str(port))
    home = tmp_path / "home"
    clients = {
        "timezone": "Europe/London",
        "clients": {
            "acme": {
                "name": "Acme",
                "moodle_schema": "moodle_acme",
                "feeds": {"completion": {}},
                "sftp": {
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "acme",
                    "directory": "/outbound",
                    "private_key_path": str(home / "sftp/client_keys/acme"),
                    "host_key_file": str(home / "sftp/ssh_host_ed25519_key.pub"),
                },
            }
        },
    }
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump(clients))
    # The key files do not exist yet: `ods up` creates them (as services.up does below).
    yield home, load_clients(path, require_files=False), port
    services.down(home)


def test_up_twice_status_and_down_twice(local_home):
    home, config, port = local_home
    _, first_pid = services.up(config, home)
    _, second_pid = services.up(config, home)
    assert first_pid == second_pid
    state = services.status(home)
    assert state["postgres"].startswith("running") and f"127.0.0.1:{port}" in state["sftp"]
    assert (home / "sftp/root/acme/outbound").is_dir()
    assert (home / "sftp/client_keys/acme").exists()
    assert services.down(home) == {"postgres": True, "sftp": True}
    assert services.down(home) == {"postgres": False, "sftp": False}
    assert services.status(home)["sftp"] == "stopped"


def test_a_taken_port_is_a_clear_error(local_home):
    home, config, port = local_home
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(services.ServiceError, match=f"port {port} on 127.0.0.1 is in use"):
            services.start_sftp(config, home)
