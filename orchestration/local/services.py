"""`ods up / down / status`: the local default's embedded PostgreSQL and SFTP server.

Both run in the background and keep their state under `.ods/` (ODS_HOME), so every command is
safe to repeat: `up` starts what is not running, `down` stops what is.

SFTP accounts come from the clients file: every client whose server is this local one
(127.0.0.1, the local port) gets an account named by its `sftp.username`, an ed25519 key pair at
its `sftp.private_key_path`, and its folder under `.ods/sftp/root/<username>/`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from orchestration.clients import ClientsConfig
from orchestration.delivery.keys import generate_key_pair
from orchestration.local.postgres import (
    LocalPostgres,
    postgres_is_running,
    start_postgres,
    stop_postgres,
)
from orchestration.paths import ods_home

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class ServiceError(RuntimeError):
    """A local service could not start; the message says why and what to do."""


@dataclass(frozen=True)
class SftpPaths:
    home: Path

    @property
    def base(self) -> Path:
        return self.home / "sftp"

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def users(self) -> Path:
        return self.base / "users"

    @property
    def host_key(self) -> Path:
        return self.base / "ssh_host_ed25519_key"

    @property
    def pid_file(self) -> Path:
        return self.base / "server.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"


def sftp_port() -> int:
    return int(os.environ.get("ODS_SFTP_PORT", "2222"))


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def local_accounts(config: ClientsConfig, port: int) -> dict[str, Path]:
    """username → private key path, for clients delivered to the local SFTP server."""
    accounts: dict[str, Path] = {}
    for client_id, client in config.clients.items():
        sftp = client.sftp
        if sftp.host not in LOCAL_HOSTS or sftp.port != port:
            continue
        if sftp.private_key_path is None:
            raise ServiceError(
                f"client {client_id!r} delivers to the local SFTP server, which needs "
                "sftp.private_key_path (a key file the demo can create)"
            )
        accounts[sftp.username] = sftp.private_key_path
    return accounts


def provision_sftp(config: ClientsConfig, paths: SftpPaths, port: int) -> None:
    """Keys, authorized keys and folders for every local account; existing keys are kept."""
    generate_key_pair(paths.host_key, "ods-local-sftp-host")
    paths.users.mkdir(parents=True, exist_ok=True)
    for username, private_key in local_accounts(config, port).items():
        public = generate_key_pair(private_key, f"ods-demo-{username}")
        (paths.users / f"{username}.pub").write_text(public + "\n")
    for client in config.clients.values():
        if client.sftp.host in LOCAL_HOSTS and client.sftp.port == port:
            folder = paths.root / client.sftp.username / client.sftp.directory.strip("/")
            folder.mkdir(parents=True, exist_ok=True)


def start_sftp(config: ClientsConfig, home: Path | None = None) -> int:
    """Start the local SFTP server in the background (no-op when it runs); returns its pid."""
    paths = SftpPaths(home or ods_home())
    port = sftp_port()
    provision_sftp(config, paths, port)
    running = _pid_alive(paths.pid_file)
    if running:
        return running
    if _port_open(port):
        raise ServiceError(
            f"port {port} on 127.0.0.1 is in use by another program, so the local SFTP server "
            "cannot start there; stop that program, or set ODS_SFTP_PORT to a free port and use "
            "the same port as the local clients' sftp.port in the clients file"
        )
    log = paths.log_file.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestration.local.sftp_server",
            "--root",
            str(paths.root),
            "--users-dir",
            str(paths.users),
            "--host-key",
            str(paths.host_key),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while not _port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise ServiceError(
                f"the local SFTP server did not start on port {port}; see {paths.log_file}"
            )
        time.sleep(0.1)
    paths.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def stop_sftp(home: Path | None = None) -> bool:
    paths = SftpPaths(home or ods_home())
    pid = _pid_alive(paths.pid_file)
    if pid is None:
        paths.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if _pid_alive(paths.pid_file) is None:
            break
        time.sleep(0.1)
    paths.pid_file.unlink(missing_ok=True)
    return True


def up(config: ClientsConfig, home: Path | None = None) -> tuple[LocalPostgres, int]:
    home = home or ods_home()
    postgres = start_postgres(home / "pgdata")
    return postgres, start_sftp(config, home)


def down(home: Path | None = None) -> dict[str, bool]:
    home = home or ods_home()
    return {"postgres": stop_postgres(home / "pgdata"), "sftp": stop_sftp(home)}


def status(home: Path | None = None) -> dict[str, str]:
    home = home or ods_home()
    paths = SftpPaths(home)
    pg = "running" if postgres_is_running(home / "pgdata") else "stopped"
    pid = _pid_alive(paths.pid_file)
    sftp = f"running (pid {pid}, 127.0.0.1:{sftp_port()})" if pid else "stopped"
    return {"postgres": f"{pg} ({home / 'pgdata'})", "sftp": sftp}
