"""Deliver files to a client's SFTP folder with paramiko: pinned host key, upload, verify, rename.

The client must never see a partial or corrupt file, and only a server holding the pinned host key
may receive one. This module is the public face: `open_sftp` / `SftpDelivery` (one connection for
every file of a client-day) and `deliver_file`. Behind it, along its seams:

- `sftp_session`: the target, the login and the pinned host key, the SFTP session;
- `sftp_upload`: upload under a temporary name, size and sha256 read back, rename into place;
- `sftp_errors`: `DeliveryError` / `HostKeyMismatch` and every explanation an operator reads.

Its log lines go through Dagster's logger, so inside a run they are in the run's event log in the
UI beside the step that delivered (issue 15); outside a run it is an ordinary Python logger.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dagster as dg
import paramiko

from orchestration.delivery.sftp_errors import (
    ChangedLocally,
    DeliveryError,
    HostKeyMismatch,
    explain_upload_failure,
    failure,
    is_permission_refusal,
)
from orchestration.delivery.sftp_session import (
    SftpClient,
    SftpTarget,
    connect,
    connection_lost,
    is_alive,
    open_sftp_session,
)
from orchestration.delivery.sftp_upload import (
    POSIX_RENAME,
    DeliveryReceipt,
    check_remote_name,
    exists,
    remote_sha256,
    replace,
    upload,
)
from orchestration.delivery.temporary_names import temporary_name

__all__ = [
    "POSIX_RENAME",
    "DeliveryError",
    "DeliveryReceipt",
    "HostKeyMismatch",
    "SftpDelivery",
    "SftpTarget",
    "deliver_file",
    "is_permission_refusal",
    "open_sftp",
]

log = dg.get_dagster_logger("sftp")


class SftpDelivery:
    """One SSH connection to a client's server, reused for every file delivered through it.

    It connects on the first `deliver`, so that every error names the file it was for, and
    reconnects on the next one after a connection was lost.
    """

    def __init__(self, target: SftpTarget) -> None:
        self.target = target
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: SftpClient | None = None
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
        check_remote_name(remote_name)
        started = time.monotonic()
        final_path = self.target.remote_path(remote_name)
        temp_path = self.target.remote_path(temporary_name(remote_name))
        with self._open_local(local_path, remote_name) as local_file:
            sftp = self._connected(remote_name)
            self._remove_left_behind(sftp)
            try:
                size, sha256 = upload(sftp, local_file, temp_path)
                if expected_sha256 is not None and sha256 != expected_sha256:
                    raise ChangedLocally(local_path, expected_sha256, sha256)
                replace(sftp, temp_path, final_path)
            except Exception as error:
                lost = connection_lost(self._ssh, sftp, error)
                failed = explain_upload_failure(
                    self.target,
                    remote_name,
                    temp_path,
                    error,
                    connection_lost=lost,
                    folder_exists=lambda: exists(sftp, self.target.directory),
                )
                self._discard(sftp, temp_path, failed)
                if connection_lost(self._ssh, sftp, error):
                    # The transport may not know yet; the next delivery must connect afresh.
                    self.close()
                raise failed from error
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
        check_remote_name(remote_name)
        sftp = self._connected(remote_name)
        path = self.target.remote_path(remote_name)
        try:
            if sftp.stat(path).st_size != size:
                return False
            return remote_sha256(sftp, path, size) == sha256
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
            raise failure(
                self.target,
                remote_name,
                f"the local file {local_path} cannot be read ({error.strerror})",
                "Rebuild the file, or re-send it from the archive.",
            ) from error
        with local_file:
            yield local_file

    def _connected(self, remote_name: str) -> SftpClient:
        channel = self._sftp.get_channel() if self._sftp is not None else None
        if self._sftp is not None and is_alive(self._ssh) and not (channel and channel.closed):
            return self._sftp
        self.close()
        self._ssh = connect(self.target, remote_name)
        try:
            self._sftp = open_sftp_session(self._ssh)
        except (OSError, EOFError, paramiko.SSHException) as error:
            self.close()
            raise failure(
                self.target,
                remote_name,
                f"the server did not start an SFTP session ({error})",
                "Check that the account is allowed SFTP (Subsystem sftp).",
                retryable=True,
            ) from error
        return self._sftp

    def _remove_left_behind(self, sftp: SftpClient) -> None:
        while self._left_behind:
            with suppress(OSError, EOFError, paramiko.SSHException):
                sftp.remove(self._left_behind[-1])
            self._left_behind.pop()

    def _discard(self, sftp: SftpClient, temp_path: str, failed: DeliveryError) -> None:
        """Remove the temporary file; if that fails too, say so on the error rather than hide it."""
        try:
            sftp.remove(temp_path)
        except FileNotFoundError:
            pass
        except Exception as cleanup_error:
            self._left_behind.append(temp_path)
            failed.add_note(
                f"The temporary file {temp_path} may remain ({cleanup_error or 'no connection'}); "
                "it is hidden, does not end in .csv, and retention removes it once it is a day old."
            )
        if not is_alive(self._ssh):
            self.close()


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
