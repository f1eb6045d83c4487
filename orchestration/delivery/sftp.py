"""Deliver files to a client's SFTP folder with paramiko: pinned host key, upload, verify, rename.

The client must never see a partial or corrupt file, and only a server holding the pinned host key
may receive one. Each file is uploaded under a hidden temporary name unique to the attempt
(`delivery.temporary_names`: two deliveries of one file at once never write into each other's
temporary file), its size is checked by `stat` and its content by reading it back and comparing
sha256 with the bytes sent (SFTP has no standard server-side hash: OpenSSH offers none), and only
then is it renamed onto the final name. The final name is never `stat`ed: some servers move files
away as soon as they arrive, and paramiko's confirm-after-put then fails with "No such file"
although the file arrived (paramiko/paramiko#1374).

The size check is also the only way a failed write shows up: paramiko discards the server's replies
to pipelined writes, so a full disk surfaces as "size mismatch ... 0 != 14706" rather than as the
server's error (pyinfra-dev/pyinfra#124; measured here with the local server's `disk_full` fault).
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import posixpath
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import CMD_INIT, CMD_VERSION
from paramiko.ssh_exception import IncompatiblePeer

from orchestration.delivery.keys import fingerprint, parse_public_key_line
from orchestration.delivery.temporary_names import temporary_name

log = logging.getLogger(__name__)

POSIX_RENAME = "posix-rename@openssh.com"
CONNECT_TIMEOUT_SECONDS = 30.0
IO_TIMEOUT_SECONDS = 120.0

# Measured uploading 149 MB over 127.0.0.1 (stack-notes.md §5): paramiko's defaults (aes128-ctr,
# 2 MiB window) gave 62-84 MB/s, a 64 MiB window with aes128-gcm 81-102 MB/s. GCM is only moved to
# the front, so servers without it still negotiate the ctr ciphers.
WINDOW_BYTES = 64 << 20
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class SftpTarget:
    """Where one client's files go, and how to log in. Secrets are key text, never shown in repr."""

    client_id: str
    host: str
    port: int
    username: str
    directory: str
    host_key: str
    private_key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def remote_path(self, name: str) -> str:
        return posixpath.join(self.directory, name)


@dataclass(frozen=True)
class DeliveryReceipt:
    """What landed: the final remote path, its size and sha256 (of the bytes sent, equal to what
    the server held under the temporary name before the rename), and how long it all took."""

    remote_path: str
    bytes: int
    sha256: str
    seconds: float


class DeliveryError(Exception):
    """A file was not delivered. `retryable` is True for faults a later attempt may not meet
    (server down, connection lost, server-side failure), False for ones that need a person."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class HostKeyMismatch(DeliveryError):
    """The server presented a host key other than the pinned one; nothing was sent to it."""

    def __init__(self, message: str, *, expected: str, presented: str) -> None:
        super().__init__(message, retryable=False)
        self.expected_fingerprint = expected
        self.presented_fingerprint = presented


class SftpDelivery:
    """One SSH connection to a client's server, reused for every file delivered through it.

    It connects on the first `deliver`, so that every error names the file it was for, and
    reconnects on the next one after a connection was lost.
    """

    def __init__(self, target: SftpTarget) -> None:
        self.target = target
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: _SftpClient | None = None
        # Temporary files a failed attempt could not remove (its connection was gone): removed
        # once connected again; retention removes any left by a process that died.
        self._left_behind: list[str] = []

    def deliver(
        self, local_path: Path, remote_name: str, *, expected_sha256: str | None = None
    ) -> DeliveryReceipt:
        """Upload `local_path` as `<directory>/<remote_name>`, replacing any file of that name.

        With `expected_sha256` (the archive's record of the file), bytes that hash otherwise are
        never renamed into place: the file changed on its way from the archive.
        """
        _check_remote_name(remote_name)
        started = time.monotonic()
        final_path = self.target.remote_path(remote_name)
        temp_path = self.target.remote_path(temporary_name(remote_name))
        with self._open_local(local_path, remote_name) as local_file:
            sftp = self._connected(remote_name)
            self._remove_left_behind(sftp)
            try:
                size, sha256 = _upload(sftp, local_file, temp_path)
                if expected_sha256 is not None and sha256 != expected_sha256:
                    raise _ChangedLocally(local_path, expected_sha256, sha256)
                _replace(sftp, temp_path, final_path)
            except Exception as error:
                failure = self._explain(error, sftp, remote_name, temp_path)
                self._discard(sftp, temp_path, failure)
                if _connection_lost(self._ssh, sftp, error):
                    # The transport may not know yet; the next delivery must connect afresh.
                    self.close()
                raise failure from error
        receipt = DeliveryReceipt(final_path, size, sha256, time.monotonic() - started)
        log.info(
            "client %s: delivered %s (%d bytes, sha256 %s, %.2f s) to %s:%s",
            self.target.client_id,
            remote_name,
            receipt.bytes,
            receipt.sha256,
            receipt.seconds,
            self.target.server,
            final_path,
        )
        return receipt

    def holds(self, remote_name: str, size: int, sha256: str) -> bool:
        """Whether `<directory>/<remote_name>` is there with exactly these bytes (its size, then
        its sha256 read back). Any doubt is a no: a file that cannot be read is sent again."""
        _check_remote_name(remote_name)
        sftp = self._connected(remote_name)
        path = self.target.remote_path(remote_name)
        try:
            if sftp.stat(path).st_size != size:
                return False
            return _remote_sha256(sftp, path, size) == sha256
        except (OSError, EOFError, paramiko.SSHException):
            return False

    def sftp_client(self) -> paramiko.SFTPClient:
        """This session's SFTP client, connecting if need be, for other work in the client's folder
        over the same connection (retention lists and removes old files with it). A failure to
        connect raises the same DeliveryError as `deliver` would."""
        return self._connected("files")

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
        self._ssh = self._sftp = None

    @contextmanager
    def _open_local(self, local_path: Path, remote_name: str) -> Iterator[io.BufferedReader]:
        try:
            local_file = local_path.open("rb")
        except OSError as error:
            raise _failure(
                self.target,
                remote_name,
                f"the local file {local_path} cannot be read ({error.strerror})",
                "Rebuild the file, or re-send it from the archive.",
            ) from error
        with local_file:
            yield local_file

    def _connected(self, remote_name: str) -> _SftpClient:
        channel = self._sftp.get_channel() if self._sftp is not None else None
        if self._sftp is not None and _is_alive(self._ssh) and not (channel and channel.closed):
            return self._sftp
        self.close()
        self._ssh = _connect(self.target, remote_name)
        try:
            self._sftp = _open_sftp_session(self._ssh)
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.close()
            raise _failure(
                self.target,
                remote_name,
                f"the server did not start an SFTP session ({error})",
                "Check that the account is allowed SFTP (Subsystem sftp).",
                retryable=True,
            ) from error
        return self._sftp

    def _explain(
        self, error: Exception, sftp: _SftpClient, remote_name: str, temp_path: str
    ) -> DeliveryError:
        directory = self.target.directory
        if _connection_lost(self._ssh, sftp, error):
            return _failure(
                self.target,
                remote_name,
                f"the connection was lost during the upload ({error or type(error).__name__})",
                "Delivery is retried; if it keeps failing, check the network and the server.",
                retryable=True,
            )
        if isinstance(error, _ChangedLocally):
            return _failure(self.target, remote_name, str(error), error.remedy)
        if isinstance(error, _CorruptUpload):
            return _failure(
                self.target,
                remote_name,
                str(error),
                "Nothing was renamed into place; delivery is retried. If it keeps happening, "
                "something on the server alters files as they arrive.",
                retryable=True,
            )
        if isinstance(error, _IncompleteUpload):
            return _failure(
                self.target,
                remote_name,
                str(error),
                "A full disk or quota is the usual cause (the server's own reason for refusing "
                "pipelined writes is not reported); delivery is retried.",
                retryable=True,
            )
        if isinstance(error, FileNotFoundError) and not _exists(sftp, directory):
            return _failure(
                self.target,
                remote_name,
                f"the folder {directory} does not exist on the server",
                f"Create it, or correct sftp.directory for client {self.target.client_id}.",
            )
        if isinstance(error, FileNotFoundError):
            return _failure(
                self.target,
                remote_name,
                f"the temporary file {posixpath.basename(temp_path)} vanished before it was "
                "renamed",
                "A process on the server that moves arriving files must leave hidden "
                "*.part files alone; delivery is retried.",
                retryable=True,
            )
        if is_permission_refusal(error):
            return _failure(
                self.target,
                remote_name,
                f"permission denied writing in {directory} ({error})",
                f"Ask the server's administrator to let {self.target.username} write there.",
            )
        return _failure(
            self.target,
            remote_name,
            f"the server refused the upload ({error or type(error).__name__})",
            "Check free space and quotas on the server; delivery is retried.",
            retryable=True,
        )

    def _remove_left_behind(self, sftp: _SftpClient) -> None:
        while self._left_behind:
            with suppress(OSError, EOFError, paramiko.SSHException):
                sftp.remove(self._left_behind[-1])
            self._left_behind.pop()

    def _discard(self, sftp: _SftpClient, temp_path: str, failure: DeliveryError) -> None:
        """Remove the temporary file; if that fails too, say so on the error rather than hide it."""
        try:
            sftp.remove(temp_path)
        except FileNotFoundError:
            pass
        except Exception as cleanup_error:
            self._left_behind.append(temp_path)
            failure.add_note(
                f"The temporary file {temp_path} may remain ({cleanup_error or 'no connection'}); "
                "it is hidden, does not end in .csv, and retention removes it once it is a day old."
            )
        if not _is_alive(self._ssh):
            self.close()


def _failure(
    target: SftpTarget, remote_name: str, what: str, remedy: str, *, retryable: bool = False
) -> DeliveryError:
    return DeliveryError(
        f"client {target.client_id}: could not deliver {remote_name} to "
        f"{target.username}@{target.server}:{target.directory}: {what}. {remedy}",
        retryable=retryable,
    )


@contextmanager
def open_sftp(target: SftpTarget) -> Iterator[SftpDelivery]:
    """A delivery session for `target`: one connection for all the files delivered through it."""
    delivery = SftpDelivery(target)
    try:
        yield delivery
    finally:
        delivery.close()


def deliver_file(target: SftpTarget, local_path: Path, remote_name: str) -> DeliveryReceipt:
    """Open a connection, deliver one file, close."""
    with open_sftp(target) as delivery:
        return delivery.deliver(local_path, remote_name)


def _check_remote_name(remote_name: str) -> None:
    if not remote_name or "/" in remote_name or remote_name.startswith("."):
        raise ValueError(f"remote file name {remote_name!r} must be a plain, visible file name")


def is_permission_refusal(error: BaseException) -> bool:
    """Whether the server refused for lack of permission. OpenSSH sends EACCES and EPERM as
    "permission denied" (paramiko's PermissionError), but other servers send EPERM as a plain
    failure whose only trace is its text, "Operation not permitted" (asyncssh does): retrying
    that would not help, and "check free space" would send the operator the wrong way."""
    if isinstance(error, PermissionError):
        return True
    if not isinstance(error, OSError) or error.errno not in (None, errno.EPERM, errno.EACCES):
        return False
    text = str(error).lower()
    return "operation not permitted" in text or "permission denied" in text


# Reading back costs a second transfer of the file over the same connection; 1 MiB reads with
# paramiko's prefetch keep that close to the upload's own speed.
READ_BACK_CHUNK_BYTES = 1 << 20


class _HashingReader:
    """The local file as paramiko's `putfo` reads it, hashing every byte on its way out."""

    def __init__(self, file: io.BufferedReader) -> None:
        self._file = file
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data


def _upload(sftp: _SftpClient, local_file: io.BufferedReader, temp_path: str) -> tuple[int, str]:
    """Upload to `temp_path`, then check the server holds exactly the bytes sent: as many (stat)
    and the same (read back, sha256). Returns (bytes, sha256 of what was sent)."""
    expected = os.fstat(local_file.fileno()).st_size
    sent = _HashingReader(local_file)
    sftp.putfo(sent, temp_path, file_size=expected, confirm=False)  # type: ignore[arg-type]
    received = sftp.stat(temp_path).st_size
    if received != sent.bytes:
        raise _IncompleteUpload(received, sent.bytes)
    sent_sha256 = sent.sha256.hexdigest()
    held_sha256 = _remote_sha256(sftp, temp_path, sent.bytes)
    if held_sha256 != sent_sha256:
        raise _CorruptUpload(sent_sha256, held_sha256)
    return sent.bytes, sent_sha256


def _remote_sha256(sftp: _SftpClient, remote_path: str, size: int) -> str:
    digest = hashlib.sha256()
    with sftp.open(remote_path, "rb") as remote:
        remote.prefetch(size)
        while chunk := remote.read(READ_BACK_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class _IncompleteUpload(Exception):
    def __init__(self, received: int | None, expected: int) -> None:
        held = "an unknown number" if received is None else str(received)
        super().__init__(f"the server holds {held} of the {expected} bytes sent")


class _CorruptUpload(Exception):
    def __init__(self, sent: str, held: str) -> None:
        super().__init__(
            f"the temporary file on the server reads back with sha256 {held}, "
            f"not the {sent} of the bytes sent"
        )


class _ChangedLocally(Exception):
    def __init__(self, local_path: Path, recorded: str, sent: str) -> None:
        super().__init__(
            f"the archived file {local_path} hashed to sha256 {sent} while it was sent, but the "
            f"archive records {recorded}; nothing was renamed into place"
        )
        self.remedy = "Rebuild the file (`ods rebuild`) and deliver it again."


def _replace(sftp: _SftpClient, temp_path: str, final_path: str) -> None:
    """Atomic where the server offers POSIX rename. Plain SFTP v3 rename fails when the target
    exists, so elsewhere the old file is removed first, leaving a moment with no file at all."""
    if POSIX_RENAME in sftp.server_extensions:
        sftp.posix_rename(temp_path, final_path)
        return
    with suppress(FileNotFoundError):
        sftp.remove(final_path)
    sftp.rename(temp_path, final_path)


def _exists(sftp: _SftpClient, remote_path: str) -> bool:
    try:
        sftp.stat(remote_path)
    except FileNotFoundError:
        return False
    return True


def _is_alive(ssh: paramiko.SSHClient | None) -> bool:
    transport = ssh.get_transport() if ssh is not None else None
    return transport is not None and transport.is_active()


def _connection_lost(ssh: paramiko.SSHClient | None, sftp: _SftpClient, error: Exception) -> bool:
    """Whether `error` came from the connection going away rather than from the server refusing.

    The transport may still look active for a moment after the server dropped the connection
    (paramiko's reader thread has not seen the end yet), so the error itself and the SFTP
    channel are asked first: paramiko raises EOFError when the channel closes under a request.
    """
    if isinstance(error, EOFError | ConnectionError):
        return True
    channel = sftp.get_channel()
    if channel is not None and channel.closed:
        return True
    return not _is_alive(ssh)


class _SftpClient(paramiko.SFTPClient):
    """paramiko's SFTP client, keeping the extensions the server announces (paramiko drops them),
    so that POSIX rename is used only where it is offered, as OpenSSH's own client does."""

    server_extensions: dict[str, bytes]

    def _send_version(self) -> int:
        init = paramiko.Message()
        init.add_int(3)
        self._send_packet(CMD_INIT, init)  # type: ignore[attr-defined]
        packet_type, data = self._read_packet()  # type: ignore[attr-defined]
        if packet_type != CMD_VERSION:
            raise paramiko.SSHException("Incompatible sftp protocol")
        version = paramiko.Message(data)
        number = version.get_int()
        self.server_extensions = {}
        while version.get_remainder():
            name = version.get_text()
            self.server_extensions[name] = version.get_binary()
        return number


def _open_sftp_session(ssh: paramiko.SSHClient) -> _SftpClient:
    transport = ssh.get_transport()
    if transport is None:
        raise paramiko.SSHException("no transport")
    sftp = _SftpClient.from_transport(transport)
    if sftp is None:
        raise paramiko.SSHException("the server refused the SFTP channel")
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(IO_TIMEOUT_SECONDS)
    return sftp


def _fast_transport(sock: Any, /, **kwargs: Any) -> paramiko.Transport:
    transport = paramiko.Transport(sock, default_window_size=WINDOW_BYTES, **kwargs)
    options = transport.get_security_options()
    preferred = [c for c in PREFERRED_CIPHERS if c in options.ciphers]
    options.ciphers = (*preferred, *(c for c in options.ciphers if c not in preferred))
    return transport


def _connect(target: SftpTarget, remote_name: str) -> paramiko.SSHClient:
    """Log in, trusting only the pinned host key: RejectPolicy, no known_hosts, no agent."""
    pinned = _pinned_host_key(target, remote_name)
    login_key = _login_key(target, remote_name)
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    ssh.get_host_keys().add(_known_hosts_name(target), pinned.get_name(), pinned)
    try:
        ssh.connect(
            target.host,
            port=target.port,
            username=target.username,
            pkey=login_key,
            password=target.password,
            look_for_keys=False,
            allow_agent=False,
            timeout=CONNECT_TIMEOUT_SECONDS,
            banner_timeout=CONNECT_TIMEOUT_SECONDS,
            auth_timeout=CONNECT_TIMEOUT_SECONDS,
            channel_timeout=CONNECT_TIMEOUT_SECONDS,
            transport_factory=_fast_transport,
        )
    except paramiko.BadHostKeyException as error:
        ssh.close()
        raise _host_key_mismatch(target, remote_name, error) from error
    except paramiko.AuthenticationException as error:
        ssh.close()
        raise _failure(target, remote_name, *_login_refused(target, login_key)) from error
    except (OSError, EOFError, paramiko.SSHException) as error:
        ssh.close()
        raise _failure(
            target,
            remote_name,
            f"cannot reach the server ({error or type(error).__name__})",
            "Check the host and port, and that the server is up; delivery is retried.",
            retryable=not isinstance(error, IncompatiblePeer),
        ) from error
    return ssh


def _known_hosts_name(target: SftpTarget) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def _pinned_host_key(target: SftpTarget, remote_name: str) -> paramiko.PKey:
    try:
        key_type, blob = parse_public_key_line(target.host_key)
        return paramiko.PKey.from_type_string(key_type, blob)
    except (ValueError, paramiko.SSHException) as error:
        raise _failure(
            target,
            remote_name,
            f"the pinned sftp.host_key is not a usable public key ({error})",
            "Copy the server's key line, e.g. from `ssh-keyscan -p PORT HOST`, and check "
            "its fingerprint with the server's administrator.",
        ) from error


def _login_key(target: SftpTarget, remote_name: str) -> paramiko.PKey | None:
    """Parse the private key text; its content never reaches a message or a log."""
    if target.private_key is None:
        if target.password is None:
            raise _failure(target, remote_name, "no private key and no password", "Configure one.")
        return None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(target.private_key))
        except paramiko.PasswordRequiredException as error:
            raise _failure(
                target,
                remote_name,
                "the private key is protected by a passphrase",
                "Provide an unencrypted key through the environment variable.",
            ) from error
        except (paramiko.SSHException, ValueError):
            continue
    raise _failure(
        target,
        remote_name,
        "the private key is not an OpenSSH or PEM ed25519, ECDSA or RSA private key",
        "Check the environment variable holds the whole private key file.",
    )


def _login_refused(target: SftpTarget, login_key: paramiko.PKey | None) -> tuple[str, str]:
    credential = f"the key {login_key.fingerprint}" if login_key else "the configured password"
    return (
        f"the server refused the login of {target.username} with {credential}",
        f"Check that this is authorized for {target.username} on the server.",
    )


def _host_key_mismatch(
    target: SftpTarget, remote_name: str, error: paramiko.BadHostKeyException
) -> HostKeyMismatch:
    expected = fingerprint(error.expected_key.asbytes())
    presented = fingerprint(error.key.asbytes())
    return HostKeyMismatch(
        f"client {target.client_id}: refused to deliver {remote_name} to {target.server}: "
        f"the server presented host key {presented} ({error.key.get_name()}) but "
        f"{expected} ({error.expected_key.get_name()}) is pinned, so nothing was sent. "
        "If the server's key was changed on purpose, confirm the new fingerprint with its "
        f"administrator and update sftp.host_key for client {target.client_id}; "
        "otherwise treat it as a possible interception.",
        expected=expected,
        presented=presented,
    )
