"""`ods up / down / status`: the local default's embedded PostgreSQL, SFTP server and mail sink.

Both run in the background and keep their state under `.ods/` (ODS_HOME), so every command is
safe to repeat: `up` starts what is not running, `down` stops what is.

SFTP accounts come from the clients file: every client whose `sftp.host` is 127.0.0.1 or
localhost gets an account named by its `sftp.username`, an ed25519 key pair at its
`sftp.private_key_path`, and its folder under `.ods/sftp/root/<username>/`. The server listens on
the port those clients name (`sftp.port`): the clients file is the one place the port is set.
When no client is local, no SFTP server is started.

The mail sink (ods_local/mail_sink.py) is the local default's SMTP server: alerts go to
it and land in `.ods/mail/` as `.eml` files. It listens on 127.0.0.1, on ODS_MAIL_SINK_PORT or
any free port; its pid file holds the port, which is how the code location finds it
(orchestration/defs/alerts.py).
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
from typing import ClassVar

from ods_local.pgp_keys import provision_demo_pgp_keys
from ods_local.postgres import (
    LocalPostgres,
    postgres_is_running,
    start_postgres,
    stop_postgres,
)
from orchestration.clients import ClientsConfig
from orchestration.clients.config import clients_file_path
from orchestration.delivery.keys import generate_key_pair
from orchestration.paths import ods_home

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class ServiceError(RuntimeError):
    """A local service could not start; the message says why and what to do."""


@dataclass(frozen=True)
class _ServiceFolder:
    """A background service's folder under ODS_HOME, with its pid file (the pid, then the port it
    listens on) and its log: `<folder_name>/<stem>.pid` and `.log`."""

    home: Path
    folder_name: ClassVar[str]
    stem: ClassVar[str]

    @property
    def folder(self) -> Path:
        return self.home / self.folder_name

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.stem}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.stem}.log"


@dataclass(frozen=True)
class SftpPaths(_ServiceFolder):
    folder_name = "sftp"
    stem = "server"

    @property
    def root(self) -> Path:
        return self.folder / "root"

    @property
    def users(self) -> Path:
        return self.folder / "users"

    @property
    def host_key(self) -> Path:
        return self.folder / "ssh_host_ed25519_key"


@dataclass(frozen=True)
class MailSinkPaths(_ServiceFolder):
    """`folder` is where each message lands as an `.eml` file."""

    folder_name = "mail"
    stem = "sink"


def _is_local(host: str) -> bool:
    return host.lower().rstrip(".") in LOCAL_HOSTS


def sftp_port(config: ClientsConfig) -> int | None:
    """The local SFTP server's port: the `sftp.port` of the clients whose host is 127.0.0.1 or
    localhost (all must name the same one); None when no client delivers to this machine.

    ODS_SFTP_PORT, the old second setting, is refused unless it equals that port."""
    ports = {client.sftp.port for client in config.clients.values() if _is_local(client.sftp.host)}
    if len(ports) > 1:
        named = ", ".join(
            f"{client_id} {client.sftp.port}"
            for client_id, client in sorted(config.clients.items())
            if _is_local(client.sftp.host)
        )
        raise ServiceError(
            "the local SFTP server listens on one port, but the clients file names several for "
            f"127.0.0.1/localhost ({named}); give the local clients the same sftp.port"
        )
    port = ports.pop() if ports else None
    legacy = os.environ.get("ODS_SFTP_PORT")
    if legacy and legacy != str(port):
        raise ServiceError(
            f"ODS_SFTP_PORT={legacy} but the clients file's local clients use sftp.port {port}; "
            "the port is set in the clients file only: unset ODS_SFTP_PORT"
        )
    return port


def _running(pid_file: Path) -> tuple[int, int | None] | None:
    """(pid, port) of the local SFTP server if it runs (the pid file holds `pid` and `port`)."""
    try:
        lines = pid_file.read_text().split()
        pid = int(lines[0])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return None
    port = int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
    return pid, port


def _pid_alive(pid_file: Path) -> int | None:
    running = _running(pid_file)
    return running[0] if running else None


def process_group_alive(pgid: int) -> bool:
    """Whether any process of the process group `pgid` is still running (a service, the UI or a
    daemon started in a session of its own, with everything it started)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def local_accounts(config: ClientsConfig, port: int) -> dict[str, Path]:
    """username → private key path, for clients delivered to the local SFTP server."""
    accounts: dict[str, Path] = {}
    for client_id, client in config.clients.items():
        sftp = client.sftp
        if not _is_local(sftp.host) or sftp.port != port:
            continue
        if sftp.private_key_path is None:
            raise ServiceError(
                f"client {client_id!r} delivers to the local SFTP server, which needs "
                "sftp.private_key_path (a key file the demo can create)"
            )
        accounts[sftp.username] = sftp.private_key_path
    return accounts


def check_local_host_keys(config: ClientsConfig, paths: SftpPaths) -> None:
    """A local client that pins the server's key with `sftp.host_key_file` must name the file
    the local server writes under ODS_HOME; else its deliveries would fail (or the file would be
    missing at load) only after the services started. Refused first, naming both paths."""
    expected = Path(f"{paths.host_key}.pub").resolve()
    for client_id, client in sorted(config.clients.items()):
        named = client.sftp.host_key_file
        if _is_local(client.sftp.host) and named is not None and named.resolve() != expected:
            raise ServiceError(
                f"client {client_id!r} pins the local SFTP server's host key with "
                f"sftp.host_key_file {named}, but the server's key for ODS_HOME {paths.home} is "
                f"{expected}; with ODS_HOME elsewhere, use a copy of the clients file "
                "(ODS_CLIENTS_FILE) whose key paths point into that folder"
            )


def provision_sftp(config: ClientsConfig, paths: SftpPaths, port: int) -> None:
    """Keys, authorized keys and folders for every local account; existing keys are kept."""
    generate_key_pair(paths.host_key, "ods-local-sftp-host")
    paths.users.mkdir(parents=True, exist_ok=True)
    for username, private_key in local_accounts(config, port).items():
        public = generate_key_pair(private_key, f"ods-demo-{username}")
        (paths.users / f"{username}.pub").write_text(public + "\n")
    for client in config.clients.values():
        if _is_local(client.sftp.host) and client.sftp.port == port:
            folder = paths.root / client.sftp.username / client.sftp.directory.strip("/")
            folder.mkdir(parents=True, exist_ok=True)


def start_sftp(config: ClientsConfig, home: Path | None = None) -> tuple[int, int] | None:
    """Start the local SFTP server in the background on the clients file's local port (no-op
    when it runs there); returns (pid, port), or None when no client delivers to this machine."""
    paths = SftpPaths(home or ods_home())
    port = sftp_port(config)
    if port is None:
        return None
    check_local_host_keys(config, paths)
    provision_sftp(config, paths, port)
    running = _running(paths.pid_file)
    if running and running[1] in (port, None):
        return running[0], port
    if running:  # the clients file's port changed since it started
        stop_sftp(paths.home)
    if _port_open(port):
        raise ServiceError(
            f"port {port} on 127.0.0.1 is in use by another program, so the local SFTP server "
            "cannot start there; stop that program, or give the local clients another sftp.port "
            f"in the clients file ({clients_file_path()})"
        )
    process = _spawn(
        "ods_local.sftp_server",
        ["--root", paths.root, "--users-dir", paths.users, "--host-key", paths.host_key],
        port,
        paths.log_file,
    )
    deadline = time.monotonic() + 15
    while not _port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise ServiceError(
                f"the local SFTP server did not start on port {port}; see {paths.log_file}"
            )
        time.sleep(0.1)
    paths.pid_file.write_text(f"{process.pid}\n{port}\n")
    return process.pid, port


def _spawn(
    module: str, arguments: list[str | Path], port: int, log_file: Path
) -> subprocess.Popen[bytes]:
    """`python -m <module> <arguments> --port <port>` in the background, in a session of its
    own (a Ctrl-C in the terminal that ran `ods up` does not stop it), its output appended to
    `log_file`; not waited for."""
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *map(str, arguments), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _stop(pid_file: Path) -> bool:
    """SIGTERM the service of this pid file and wait up to 5 s for it to go (the mail sink
    removes the file on its way out); the file is removed either way. False: it did not run."""
    pid = _pid_alive(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if _pid_alive(pid_file) is None:
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def stop_sftp(home: Path | None = None) -> bool:
    return _stop(SftpPaths(home or ods_home()).pid_file)


def mail_sink_port() -> int:
    text = os.environ.get("ODS_MAIL_SINK_PORT") or "0"
    if not text.isdigit() or int(text) > 65535:
        raise ServiceError(f"ODS_MAIL_SINK_PORT={text!r} is not a port; unset it for any free port")
    return int(text)


def running_mail_sink(home: Path | None = None) -> tuple[int, int] | None:
    """(pid, port) of the local mail sink if it runs."""
    running = _running(MailSinkPaths(home or ods_home()).pid_file)
    if running is None or running[1] is None:
        return None
    return running[0], running[1]


def start_mail_sink(home: Path | None = None) -> tuple[int, int]:
    """Start the local SMTP sink in the background (no-op when it runs); returns (pid, port)."""
    home = home or ods_home()
    return _wait_for_mail_sink(home, _launch_mail_sink(home))


def _launch_mail_sink(home: Path) -> subprocess.Popen[bytes] | None:
    """The sink's process, started and not waited for (None when it runs already): `up` starts
    it first and waits last, so its start-up (~0.5 s) overlaps PostgreSQL's."""
    paths = MailSinkPaths(home)
    if running_mail_sink(home):
        return None
    port = mail_sink_port()
    paths.folder.mkdir(parents=True, exist_ok=True)
    paths.pid_file.unlink(missing_ok=True)
    return _spawn(
        "ods_local.mail_sink",
        ["--folder", paths.folder, "--pid-file", paths.pid_file],
        port,
        paths.log_file,
    )


def _wait_for_mail_sink(home: Path, process: subprocess.Popen[bytes] | None) -> tuple[int, int]:
    paths = MailSinkPaths(home)
    deadline = time.monotonic() + 15
    # The sink writes its pid file once it listens (the port is its own choice when 0).
    while (started := running_mail_sink(home)) is None:
        if process is None or process.poll() is not None or time.monotonic() > deadline:
            raise ServiceError(
                f"the local mail sink did not start on 127.0.0.1 (ODS_MAIL_SINK_PORT "
                f"{mail_sink_port() or 'unset: any free port'}); see {paths.log_file}"
            )
        time.sleep(0.05)
    return started


def stop_mail_sink(home: Path | None = None) -> bool:
    return _stop(MailSinkPaths(home or ods_home()).pid_file)


def up(
    config: ClientsConfig, home: Path | None = None
) -> tuple[LocalPostgres, tuple[int, int] | None]:
    home = home or ods_home()
    sftp_port(config)  # refusals first, before anything starts
    check_local_host_keys(config, SftpPaths(home))
    # The demo clients' OpenPGP key pairs (encrypt.public_key under <home>/pgp/), before the
    # clients file is loaded with its files required.
    provision_demo_pgp_keys(config, home)
    sink = _launch_mail_sink(home)
    postgres = start_postgres(home / "pgdata")
    started = start_sftp(config, home)
    _wait_for_mail_sink(home, sink)
    return postgres, started


def down(home: Path | None = None) -> dict[str, bool]:
    """Stop every local service; says which of them ran."""
    home = home or ods_home()
    return {
        "postgres": stop_postgres(home / "pgdata"),
        "sftp": stop_sftp(home),
        "mail": stop_mail_sink(home),
    }


def status(home: Path | None = None) -> dict[str, str]:
    home = home or ods_home()
    paths = SftpPaths(home)
    pg = "running" if postgres_is_running(home / "pgdata") else "stopped"
    running = _running(paths.pid_file)
    sftp = "stopped"
    if running:
        pid, port = running
        sftp = f"running (pid {pid}, 127.0.0.1:{port})" if port else f"running (pid {pid})"
    sink = running_mail_sink(home)
    mail = (
        f"running (pid {sink[0]}, SMTP 127.0.0.1:{sink[1]}, messages in "
        f"{MailSinkPaths(home).folder})"
        if sink
        else "stopped"
    )
    return {"postgres": f"{pg} ({home / 'pgdata'})", "sftp": sftp, "mail": mail}
