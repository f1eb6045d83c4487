"""Why a file was not delivered, in words an operator can act on: each failure names the client,
the file and the server, says what happened and what to do, and whether a retry may help.

Kept apart from the session and the upload so that every message is in one place; the faults an
upload can meet (`IncompleteUpload`, `CorruptUpload`, `ChangedLocally`) are raised there and
turned into a `DeliveryError` here.
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

from orchestration.delivery.keys import fingerprint

if TYPE_CHECKING:
    from orchestration.delivery.sftp_session import SftpTarget


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


class IncompleteUpload(Exception):
    def __init__(self, received: int | None, expected: int) -> None:
        held = "an unknown number" if received is None else str(received)
        super().__init__(f"the server holds {held} of the {expected} bytes sent")


class CorruptUpload(Exception):
    def __init__(self, sent: str, held: str) -> None:
        super().__init__(
            f"the temporary file on the server reads back with sha256 {held}, "
            f"not the {sent} of the bytes sent"
        )


class ChangedLocally(Exception):
    def __init__(self, local_path: Path, recorded: str, sent: str) -> None:
        super().__init__(
            f"the archived file {local_path} hashed to sha256 {sent} while it was sent, but the "
            f"archive records {recorded}; nothing was renamed into place"
        )
        self.remedy = "Rebuild the file (`ods rebuild`) and deliver it again."


def failure(
    target: SftpTarget, remote_name: str, what: str, remedy: str, *, retryable: bool = False
) -> DeliveryError:
    return DeliveryError(
        f"client {target.client_id}: could not deliver {remote_name} to "
        f"{target.username}@{target.server}:{target.directory}: {what}. {remedy}",
        retryable=retryable,
    )


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


def explain_upload_failure(
    target: SftpTarget,
    remote_name: str,
    temp_path: str,
    error: Exception,
    *,
    connection_lost: bool,
    folder_exists: Callable[[], bool],
) -> DeliveryError:
    """The DeliveryError for an upload, check or rename that raised `error`. `folder_exists` is
    asked (over the same connection) only when a file was not found."""
    directory = target.directory
    if connection_lost:
        return failure(
            target,
            remote_name,
            f"the connection was lost during the upload ({error or type(error).__name__})",
            "Delivery is retried; if it keeps failing, check the network and the server.",
            retryable=True,
        )
    if isinstance(error, ChangedLocally):
        return failure(target, remote_name, str(error), error.remedy)
    if isinstance(error, CorruptUpload):
        return failure(
            target,
            remote_name,
            str(error),
            "Nothing was renamed into place; delivery is retried. If it keeps happening, "
            "something on the server alters files as they arrive.",
            retryable=True,
        )
    if isinstance(error, IncompleteUpload):
        return failure(
            target,
            remote_name,
            str(error),
            "A full disk or quota is the usual cause (the server's own reason for refusing "
            "pipelined writes is not reported); delivery is retried.",
            retryable=True,
        )
    if isinstance(error, FileNotFoundError) and not folder_exists():
        return failure(
            target,
            remote_name,
            f"the folder {directory} does not exist on the server",
            f"Create it, or correct sftp.directory for client {target.client_id}.",
        )
    if isinstance(error, FileNotFoundError):
        return failure(
            target,
            remote_name,
            f"the temporary file {posixpath.basename(temp_path)} vanished before it was renamed",
            "A process on the server that moves arriving files must leave hidden "
            "*.part files alone; delivery is retried.",
            retryable=True,
        )
    if is_permission_refusal(error):
        return failure(
            target,
            remote_name,
            f"permission denied writing in {directory} ({error})",
            f"Ask the server's administrator to let {target.username} write there.",
        )
    return failure(
        target,
        remote_name,
        f"the server refused the upload ({error or type(error).__name__})",
        "Check free space and quotas on the server; delivery is retried.",
        retryable=True,
    )


def login_refused(target: SftpTarget, login_key: paramiko.PKey | None) -> tuple[str, str]:
    credential = f"the key {login_key.fingerprint}" if login_key else "the configured password"
    return (
        f"the server refused the login of {target.username} with {credential}",
        f"Check that this is authorized for {target.username} on the server.",
    )


def host_key_mismatch(
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
