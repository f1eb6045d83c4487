"""`ods up / status / down`: safe to repeat, and a clear error when the SFTP port is taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ods_local import services
from orchestration.clients import load_clients
from tests.e2e_support import acme_entry, write_clients_file


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    port = _free_port()  # set in the clients file only
    monkeypatch.delenv("ODS_SFTP_PORT", raising=False)
    home = tmp_path / "home"
    sftp = {
        "host": "127.0.0.1",
        "port": port,
        "username": "acme",
        "directory": "/outbound",
        "private_key_path": str(home / "sftp/client_keys/acme"),
        "host_key_file": str(home / "sftp/ssh_host_ed25519_key.pub"),
    }
    path = write_clients_file(tmp_path / "clients.yaml", {"acme": acme_entry(sftp=sftp)})
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
    assert services.down(home) == {"postgres": True, "sftp": True, "mail": True}
    assert services.down(home) == {"postgres": False, "sftp": False, "mail": False}
    assert services.status(home)["sftp"] == "stopped"


def test_a_taken_port_is_a_clear_error(local_home):
    home, config, port = local_home
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(services.ServiceError, match=f"port {port} on 127.0.0.1 is in use"):
            services.start_sftp(config, home)


def _with_local_port(config, client_id: str, port: int):
    client = config.clients[client_id]
    sftp = client.sftp.model_copy(update={"port": port})
    clients = {**config.clients, client_id: client.model_copy(update={"sftp": sftp})}
    return config.model_copy(update={"clients": clients})


def test_the_port_is_the_clients_files_and_set_there_only(local_home, monkeypatch):
    home, config, port = local_home
    assert services.sftp_port(config) == port
    # The old second setting may only repeat it.
    monkeypatch.setenv("ODS_SFTP_PORT", str(port))
    assert services.sftp_port(config) == port
    monkeypatch.setenv("ODS_SFTP_PORT", str(port + 1))
    with pytest.raises(services.ServiceError, match=f"ODS_SFTP_PORT={port + 1} but .* {port}"):
        services.start_sftp(config, home)
    assert not (home / "sftp" / "server.pid").exists()
    monkeypatch.delenv("ODS_SFTP_PORT")
    # The clients file's port changes: `up` moves the server there.
    _, (_, first) = services.up(config, home)
    moved = _with_local_port(config, "acme", _free_port())
    _, (_, second) = services.up(moved, home)
    assert (first, second) == (port, moved.clients["acme"].sftp.port)
    assert f"127.0.0.1:{second}" in services.status(home)["sftp"]


def test_no_local_client_no_sftp_server(local_home):
    home, config, _ = local_home
    acme = config.clients["acme"]
    remote = acme.model_copy(
        update={"sftp": acme.sftp.model_copy(update={"host": "sftp.example.org"})}
    )
    config = config.model_copy(update={"clients": {"acme": remote}})
    assert services.sftp_port(config) is None
    assert services.start_sftp(config, home) is None
    assert services.status(home)["sftp"] == "stopped"


def test_an_ods_home_the_clients_file_does_not_point_at_is_refused_before_starting(
    local_home, tmp_path
):
    # The clients file pins the host key of the server under `home`; another ODS_HOME's server
    # would have another key. Refused before anything starts, naming both paths.
    _, config, _ = local_home
    other = tmp_path / "other"
    with pytest.raises(services.ServiceError, match=r"sftp.host_key_file .* but the server's key"):
        services.up(config, other)
    assert not other.exists()
