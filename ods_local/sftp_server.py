"""A local SFTP server on 127.0.0.1 (asyncssh) with one account and folder per client.

It stands in for the clients' servers in the local default run and in the tests, so that delivery
is exercised over real SSH rather than against mocks. Each user is confined to `<root>/<username>/`
and logs in only with its own key (or its own password): asyncssh's `authorized_client_keys=`
option on `listen()` applies to every username, so bob could log in with alice's key
(stack-notes.md §3); keys are therefore set per user in `begin_auth`.

`faults` injects the failures delivery must survive (connection dropped mid-upload, disk full,
permission denied, files moved away the moment they arrive); `stop()` then `start()` takes the
server down and up on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import hmac
import logging
import os
import re
import signal
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import asyncssh

from orchestration.delivery.keys import fingerprint, generate_key_pair, parse_public_key_line

log = logging.getLogger(__name__)

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
START_TIMEOUT_SECONDS = 10.0

# The server's receive window bounds how much an uploading client may send before waiting. With
# asyncssh's 2 MiB default, 100 MB uploads over 127.0.0.1 ran at 33-45 MB/s, with 8 MiB at
# 51-73 MB/s (2 shared cores); 32 and 64 MiB gained nothing more.
RECEIVE_WINDOW_BYTES = 8 << 20


class SftpServerError(RuntimeError):
    """The local SFTP server could not start or was misused."""


@dataclass
class SftpFaults:
    """Failures the server injects, for tests of delivery's error handling. Change them at any time.

    Permission denied is injected rather than made with chmod because the server writes as its own
    uid, which is root in CI, and root ignores file modes.
    """

    drop_after_bytes: int | None = None
    """Abort the TCP connection once an SFTP session has received this many bytes of file data."""
    drops: int = 1
    """How many sessions to drop before uploads go through again (a transient fault)."""
    disk_full: bool = False
    """Writes fail as OpenSSH reports ENOSPC to SFTP v3 clients."""
    deny_writes: bool = False
    """Opening a file for writing fails with permission denied."""
    not_permitted: bool = False
    """Opening a file for writing fails with EPERM (an immutable or append-only folder). asyncssh,
    like several servers, sends that as a plain failure whose only trace is its text, "Operation
    not permitted", not as SFTP's permission-denied code."""
    deny_removes: bool = False
    """Removing a file fails with permission denied (a folder where the account may write but
    not delete, as some hosts set up inbound folders)."""
    collect_arrivals_in: Path | None = None
    """Move each file renamed into place to this folder at once, as servers that hand arriving
    files to a pickup process do; a client that `stat`s the final name then fails."""

    def take_drop(self, received_before: int, incoming: int) -> int | None:
        """How many of `incoming` bytes to keep before the connection drops; None keeps them all."""
        if self.drop_after_bytes is None or self.drops <= 0:
            return None
        room = self.drop_after_bytes - received_before
        if incoming < room:
            return None
        self.drops -= 1
        if self.drops <= 0:
            self.drop_after_bytes = None
        return max(room, 0)


@dataclass(frozen=True)
class _Account:
    folder: Path
    authorized_keys: asyncssh.SSHAuthorizedKeys | None
    password: str | None


class LocalSftpServer:
    """An asyncssh SFTP server on its own event loop in a daemon thread; `root/<user>/` per user."""

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        host_key_path: Path | None = None,
        drop_after_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.host = host
        self.port = port
        self.faults = SftpFaults(drop_after_bytes=drop_after_bytes)
        self._host_key = _load_host_key(host_key_path)
        self._accounts: dict[str, _Account] = {}
        self.logins: Counter[str] = Counter()
        """Successful logins per username since start: how many SSH sessions each client's
        deliveries opened (tests count them)."""
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def add_user(
        self, username: str, authorized_key: str | None = None, password: str | None = None
    ) -> Path:
        """Create `root/<username>/` and let `username` in with that key or password only."""
        if not USERNAME_PATTERN.fullmatch(username):
            raise SftpServerError(
                f"username {username!r} is not allowed: use letters, digits, '_', '.', '-' "
                "(it names the user's folder, so no '/' and no leading '.')"
            )
        if authorized_key is None and password is None:
            raise SftpServerError(f"user {username!r} needs an authorized key or a password")
        folder = self.root / username
        folder.mkdir(parents=True, exist_ok=True)
        self._accounts[username] = _Account(
            folder=folder,
            authorized_keys=_authorized_keys(username, authorized_key),
            password=password,
        )
        return folder

    def host_key_line(self) -> str:
        """The public host key, `"ssh-ed25519 AAAA..."`: the value a client configuration pins."""
        return self._host_key.export_public_key("openssh").decode("ascii").split("\n")[0].strip()

    def start(self) -> None:
        """Listen on `host:port`; returns once connections are accepted and `self.port` is real."""
        if self._thread is not None:
            raise SftpServerError("the SFTP server is already running")
        self.root.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="local-sftp-server", daemon=True)
        thread.start()
        try:
            listening = asyncio.run_coroutine_threadsafe(self._listen(), loop)
            self._acceptor = listening.result(START_TIMEOUT_SECONDS)
        except OSError as error:
            _stop_loop(loop, thread)
            if error.errno == errno.EADDRINUSE:
                raise SftpServerError(
                    f"port {self.port} on {self.host} is in use: {error.strerror}. "
                    "Stop the other server or choose another port (--port)."
                ) from error
            raise SftpServerError(f"cannot listen on {self.host}:{self.port}: {error}") from error
        self._loop, self._thread = loop, thread
        self.port = self._acceptor.get_port()

    def stop(self) -> None:
        """Close every connection, then the listener and the loop; safe to call twice."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(START_TIMEOUT_SECONDS)
        _stop_loop(self._loop, self._thread)
        self._loop = self._thread = self._acceptor = None

    def __enter__(self) -> LocalSftpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def _listen(self) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            self.host,
            self.port,
            server_host_keys=[self._host_key],
            server_factory=lambda: _SshServer(self),
            sftp_factory=lambda channel: _ChrootSftp(channel, self),
            allow_scp=False,
            window=RECEIVE_WINDOW_BYTES,
        )

    async def _close(self) -> None:
        """Close connections before the loop stops; otherwise asyncio reports their tasks as
        "Task was destroyed but it is pending" at exit (stack-notes §3)."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        for connection in list(self._connections):
            connection.close()
            await connection.wait_closed()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _account(self, username: str) -> _Account | None:
        return self._accounts.get(username)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(START_TIMEOUT_SECONDS)
    loop.close()


def _load_host_key(host_key_path: Path | None) -> asyncssh.SSHKey:
    """The same key across restarts when a path is given, so pinned clients keep trusting it."""
    if host_key_path is None:
        return asyncssh.generate_private_key("ssh-ed25519")
    generate_key_pair(host_key_path, comment="local-sftp-server")
    return asyncssh.read_private_key(host_key_path)


def _authorized_keys(username: str, public_key: str | None) -> asyncssh.SSHAuthorizedKeys | None:
    if public_key is None:
        return None
    try:
        parse_public_key_line(public_key)
        return asyncssh.import_authorized_keys(public_key.strip() + "\n")
    except (ValueError, asyncssh.KeyImportError) as error:
        raise SftpServerError(
            f"authorized key for user {username!r} is invalid: {error}"
        ) from error


class _SshServer(asyncssh.SSHServer):
    """Per-connection authentication: only the account's own key or password lets it in."""

    def __init__(self, server: LocalSftpServer) -> None:
        self._server = server
        self._connection: asyncssh.SSHServerConnection | None = None
        self._account: _Account | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._connection = conn
        self._server._connections.add(conn)

    def auth_completed(self) -> None:
        if self._connection is not None:
            username = self._connection.get_extra_info("username")
            peer = self._connection.get_extra_info("peername")
            self._server.logins[username] += 1
            log.info("user %s logged in from %s", username, peer[0] if peer else "?")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._connection is not None:
            self._server._connections.discard(self._connection)

    def begin_auth(self, username: str) -> bool:
        self._account = self._server._account(username)
        if self._connection is not None:
            keys = self._account.authorized_keys if self._account else None
            self._connection.set_authorized_keys(keys or asyncssh.SSHAuthorizedKeys())
        return True

    def public_key_auth_supported(self) -> bool:
        return self._account is not None and self._account.authorized_keys is not None

    def password_auth_supported(self) -> bool:
        return self._account is not None and self._account.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        account = self._server._account(username)
        if account is None or account.password is None:
            return False
        return hmac.compare_digest(account.password.encode(), password.encode())


class _ChrootSftp(asyncssh.SFTPServer):
    """SFTP confined to the user's folder, with the server's fault injection on writes and
    removals."""

    def __init__(self, channel: asyncssh.SSHServerChannel, server: LocalSftpServer) -> None:
        username = channel.get_extra_info("username")
        account = server._account(username)
        if account is None:
            raise SftpServerError(f"no account for authenticated user {username!r}")
        super().__init__(channel, chroot=str(account.folder).encode())
        self._faults = server.faults
        self._received = 0

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if self._faults.deny_writes and pflags & asyncssh.FXF_WRITE:
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        if self._faults.not_permitted and pflags & asyncssh.FXF_WRITE:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        return super().open(path, pflags, attrs)

    def remove(self, path: bytes) -> None:
        if self._faults.deny_removes:
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        super().remove(path)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().rename(oldpath, newpath)
        self._collect(newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().posix_rename(oldpath, newpath)
        self._collect(newpath)

    def _collect(self, arrived: bytes) -> None:
        pickup = self._faults.collect_arrivals_in
        if pickup is not None:
            local = Path(self.map_path(arrived).decode())
            local.rename(pickup / local.name)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if self._faults.disk_full:
            raise asyncssh.SFTPFailure("No space left on device")
        keep = self._faults.take_drop(self._received, len(data))
        self._received += len(data)
        if keep is None:
            return super().write(file_obj, offset, data)  # type: ignore[return-value]
        super().write(file_obj, offset, data[:keep])
        self.connection.abort()
        raise asyncssh.SFTPConnectionLost("connection dropped by fault injection")


def discover_users(users_dir: Path) -> Iterable[tuple[str, str]]:
    """`(username, public key line)` for each `<users_dir>/<username>.pub`."""
    for public_path in sorted(users_dir.glob("*.pub")):
        yield public_path.stem, public_path.read_text().strip()


def _argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ods_local.sftp_server",
        description=(
            "Serve SFTP in the foreground for the local default run. Each user logs in only with "
            "the key in <users-dir>/<username>.pub and sees only <root>/<username>/. "
            "Stop with Ctrl-C."
        ),
    )
    parser.add_argument(
        "--root", type=Path, required=True, help="folder holding one folder per user"
    )
    parser.add_argument(
        "--users-dir",
        type=Path,
        required=True,
        help="folder of <username>.pub files, one authorized public key each (read at start)",
    )
    parser.add_argument(
        "--host-key",
        type=Path,
        required=True,
        help=(
            "ed25519 host key file; created if missing, reused otherwise "
            "so that clients pinning it keep trusting the server"
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=2222, help="port to listen on (default: %(default)s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _argument_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # asyncssh logs ~10 INFO lines per connection (addresses, channels, SFTP start and exit);
    # our own start-up and login lines say what an operator needs.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    server = LocalSftpServer(
        arguments.root, host=arguments.host, port=arguments.port, host_key_path=arguments.host_key
    )
    for username, public_key in discover_users(arguments.users_dir):
        folder = server.add_user(username, authorized_key=public_key)
        log.info("user %s -> %s (key %s)", username, folder, _fingerprint_of(public_key))
    try:
        server.start()
    except SftpServerError as error:
        log.error("%s", error)
        return 1
    host_key = server.host_key_line()
    log.info("SFTP listening on %s:%d, host key %s", server.host, server.port, host_key)
    _serve_until_signalled(server)
    return 0


def _fingerprint_of(public_key: str) -> str:
    return fingerprint(parse_public_key_line(public_key)[1])


def _serve_until_signalled(server: LocalSftpServer) -> None:
    stopping = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopping.set())
    stopping.wait()
    log.info("stopping")
    server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
