"""One file onto the server: upload under a temporary name, check what the server holds, rename.

The client must never see a partial or corrupt file. The bytes go to a hidden temporary name
unique to the attempt (`delivery.temporary_names`), their size is checked by `stat` and their
content by reading them back and comparing sha256 with the bytes sent (SFTP has no standard
server-side hash: OpenSSH offers none), and only then are they renamed onto the final name. The
final name is never `stat`ed: some servers move files away as soon as they arrive, and paramiko's
confirm-after-put then fails with "No such file" although the file arrived (paramiko/paramiko#1374).

The size check is also the only way a failed write shows up: paramiko discards the server's replies
to pipelined writes, so a full disk surfaces as "size mismatch ... 0 != 14706" rather than as the
server's error (pyinfra-dev/pyinfra#124; measured here with the local server's `disk_full` fault).
"""

from __future__ import annotations

import hashlib
import io
import os
from contextlib import suppress
from dataclasses import dataclass

from orchestration.delivery.sftp_errors import CorruptUpload, IncompleteUpload
from orchestration.delivery.sftp_session import SftpClient

POSIX_RENAME = "posix-rename@openssh.com"

# Reading back costs a second transfer of the file over the same connection; 1 MiB reads with
# paramiko's prefetch keep that close to the upload's own speed.
READ_BACK_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DeliveryReceipt:
    """What landed: the final remote path, its size and sha256 (of the bytes sent, equal to what
    the server held under the temporary name before the rename), and how long it all took."""

    remote_path: str
    bytes: int
    sha256: str
    seconds: float


def check_remote_name(remote_name: str) -> None:
    if not remote_name or "/" in remote_name or remote_name.startswith("."):
        raise ValueError(f"remote file name {remote_name!r} must be a plain, visible file name")


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


def upload(sftp: SftpClient, local_file: io.BufferedReader, temp_path: str) -> tuple[int, str]:
    """Upload to `temp_path`, then check the server holds exactly the bytes sent: as many (stat)
    and the same (read back, sha256). Returns (bytes, sha256 of what was sent)."""
    expected = os.fstat(local_file.fileno()).st_size
    sent = _HashingReader(local_file)
    sftp.putfo(sent, temp_path, file_size=expected, confirm=False)  # type: ignore[arg-type]
    received = sftp.stat(temp_path).st_size
    if received != sent.bytes:
        raise IncompleteUpload(received, sent.bytes)
    sent_sha256 = sent.sha256.hexdigest()
    held_sha256 = remote_sha256(sftp, temp_path, sent.bytes)
    if held_sha256 != sent_sha256:
        raise CorruptUpload(sent_sha256, held_sha256)
    return sent.bytes, sent_sha256


def remote_sha256(sftp: SftpClient, remote_path: str, size: int) -> str:
    digest = hashlib.sha256()
    with sftp.open(remote_path, "rb") as remote:
        remote.prefetch(size)
        while chunk := remote.read(READ_BACK_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def replace(sftp: SftpClient, temp_path: str, final_path: str) -> None:
    """Atomic where the server offers POSIX rename. Plain SFTP v3 rename fails when the target
    exists, so elsewhere the old file is removed first, leaving a moment with no file at all."""
    if POSIX_RENAME in sftp.server_extensions:
        sftp.posix_rename(temp_path, final_path)
        return
    with suppress(FileNotFoundError):
        sftp.remove(final_path)
    sftp.rename(temp_path, final_path)


def exists(sftp: SftpClient, remote_path: str) -> bool:
    try:
        sftp.stat(remote_path)
    except FileNotFoundError:
        return False
    return True
