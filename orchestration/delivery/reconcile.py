"""Reconciliation: what is in a client's SFTP folder now, against what we delivered there.

Delivery stops at "the file was renamed into place". What a client and a host ask afterwards is
what the folder holds now: did the client pick the files up, did someone change one, what else is
in there? One look lists the folder once (one `listdir_attr` over the session's connection) and
compares it with the archive's ledger of deliveries (`delivery.ledger`): the latest delivery of
each file name to this very folder (host, port, account, directory) is what the folder should
hold under that name. Each name ends in one class:

- **present**: delivered, and there at the size we sent.
- **altered**: delivered, but there at another size (or, when read back, with other bytes; or
  something other than a plain file now has the name). Retention leaves such a file in place,
  since it is no longer the file we sent.
- **gone early**: delivered, no longer there, and its retention date has not passed: picked up
  (moved away) or removed by the client or someone else. Reported with when reconciliation first
  saw it missing (remembered in the archive, `delivery.reconciliation_state`).
- **removed after retention**: delivered, no longer there, and past its retention date: what
  retention does itself (or what the client may do once the promised days are over).
- **foreign**: not in the ledger for this folder: someone else's file, or ours from before the
  ledger existed. Listed; never read, never touched.
- **temporary**: one of our own upload names (`.<final name>.<16 hex>.part`,
  `delivery.temporary_names`): an upload in progress, or one a crashed attempt left, which
  retention removes once it is a day old.

"Ours" comes from the ledger's names alone, so compressed, encrypted and manifest files
(`.csv.gz`, `.csv.gz.pgp`, `MANIFEST<date>.json`) need no rule of their own here. The retention
date is the date in the name (the eight digits before the first dot, as retention reads it) plus
`retention_days`: retention keeps a file dated N until the run dated N + retention_days + 1. A
name without such a date falls back to its activity day + 1 (the later of the two date rules),
so retention's own removals are never called early.

Content, not only size: reading every file back every night would download the whole folder
(28 days x every feed) each night. So a file's bytes are read back (sha256, compared with the
ledger's) only when its modification time changed since reconciliation first found that
delivery in place: a file rewritten with the same size is caught for the price of reading that
one file once, and an untouched folder costs one listing. The first sighting is trusted, since
the delivery itself verified the bytes before the rename. `read_back_all` reads every present
file instead (an operator's on-demand check).

It never changes the server: it lists, and reads back only our own files when their time changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import paramiko

from orchestration.delivery import ledger
from orchestration.delivery.reconciliation_state import FolderMemory, Sighting, remembered
from orchestration.delivery.retention import STALE_TEMPORARY_SECONDS
from orchestration.delivery.sftp import DeliveryError, SftpDelivery, SftpTarget
from orchestration.delivery.temporary_names import final_name_of

READ_BACK_CHUNK_BYTES = 1 << 20
# Stored as a sighting's mtime when a read-back found other bytes: it matches no real time, so
# the file is read again at the next look and stays "altered" until it is delivered again.
_CONTENT_DIFFERED = -1
_NAME_DATE = re.compile(r"([0-9]{8})$")


class FileStatus(StrEnum):
    """A file's class, in the order reports show them (what needs a look first)."""

    ALTERED = "altered"
    GONE_EARLY = "gone early"
    PRESENT = "present"
    FOREIGN = "foreign"
    TEMPORARY = "temporary"
    EXPIRED = "removed after retention"


@dataclass(frozen=True)
class FolderFile:
    """One name: in the folder now, or delivered there by us (or both).

    `sent_bytes`/`delivered_at`: our latest delivery under the name (None when not ours).
    `bytes_now`: its size on the server (None when it is not there). `keep_until`: the last
    date retention keeps it (ours only). `missing_since`: when reconciliation first saw it
    missing (gone early only). `note`: one line for a person."""

    name: str
    status: FileStatus
    sent_bytes: int | None = None
    bytes_now: int | None = None
    delivered_at: str | None = None
    keep_until: dt.date | None = None
    missing_since: str | None = None
    note: str = ""


@dataclass(frozen=True)
class FolderReport:
    """One look at one client's folder. `read_back`: the files whose bytes were read back."""

    client_id: str
    folder: str
    checked_at: str
    today: dt.date
    retention_days: int
    files: tuple[FolderFile, ...]
    read_back: tuple[str, ...] = ()

    def with_status(self, status: FileStatus) -> list[FolderFile]:
        return [file for file in self.files if file.status is status]

    def counts(self) -> dict[FileStatus, int]:
        """How many files of each class (every class, zero included)."""
        return {status: len(self.with_status(status)) for status in FileStatus}

    @property
    def altered(self) -> list[FolderFile]:
        return self.with_status(FileStatus.ALTERED)


class ReconciliationError(Exception):
    """The folder could not be looked at (server unreachable, login refused, folder missing):
    nothing was classified and the remembered state is unchanged."""


def folder_label(target: SftpTarget) -> str:
    """`acme@sftp.example.org:22:/outbound`: the folder, as reports and the state name it."""
    directory = ledger.normalise_directory(target.directory)
    return f"{target.username}@{target.host}:{target.port}:{directory}"


def reconcile_folder(
    session: SftpDelivery,
    archive_root: Path,
    *,
    retention_days: int,
    today: dt.date,
    now: dt.datetime | None = None,
    read_back_all: bool = False,
) -> FolderReport:
    """Look at the session's folder and classify every name (module docstring). `today` is the
    client's local date (retention dates are compared with it), `now` the time recorded as
    "first seen missing" (default: the clock). Raises ReconciliationError when the folder cannot
    be listed or read; then the remembered state is left as it was."""
    target = session.target
    now = now or dt.datetime.now(dt.UTC)
    checked_at = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    label = folder_label(target)
    latest, earlier_sizes = _our_deliveries(archive_root, target)
    try:
        sftp = session.sftp_client()
        entries = {entry.filename: entry for entry in sftp.listdir_attr(target.directory)}
    except DeliveryError as error:
        raise ReconciliationError(
            f"client {target.client_id}: the folder {label} was not reconciled: "
            f"{_connection_problem(target, error)}"
        ) from error
    except (OSError, EOFError, paramiko.SSHException) as error:
        raise _listing_failure(target, label, error) from error
    look = _Look(sftp, target, label, today, retention_days, checked_at, read_back_all)
    with remembered(archive_root, target.client_id, label) as memory:
        files = [
            look.ours(name, delivery, entries.get(name), earlier_sizes[name], memory)
            for name, delivery in latest.items()
        ]
        files += [_not_ours(entry, now) for name, entry in entries.items() if name not in latest]
        for kept in (memory.missing_since, memory.seen):
            for name in set(kept) - set(latest):
                del kept[name]
    order = list(FileStatus)
    files.sort(key=lambda file: (order.index(file.status), file.name))
    return FolderReport(
        client_id=target.client_id,
        folder=label,
        checked_at=checked_at,
        today=today,
        retention_days=retention_days,
        files=tuple(files),
        read_back=tuple(sorted(look.read_back)),
    )


def _our_deliveries(
    archive_root: Path, target: SftpTarget
) -> tuple[dict[str, ledger.Delivery], dict[str, set[int]]]:
    """(name -> our latest delivery to this folder; name -> the sizes of every delivery under
    it), from one read of the ledger."""
    wanted = ledger.folder_key(**ledger.target_folder(target))
    latest: dict[str, ledger.Delivery] = {}
    sizes: dict[str, set[int]] = {}
    for delivery in ledger.read_deliveries(archive_root, target.client_id):
        if ledger.folder_of(delivery) == wanted:
            latest[delivery.file_name] = delivery
            sizes.setdefault(delivery.file_name, set()).add(delivery.bytes)
    return latest, sizes


@dataclass
class _Look:
    sftp: paramiko.SFTPClient
    target: SftpTarget
    label: str
    today: dt.date
    retention_days: int
    checked_at: str
    read_back_all: bool

    def __post_init__(self) -> None:
        self.read_back: list[str] = []

    def ours(
        self,
        name: str,
        delivery: ledger.Delivery,
        entry: paramiko.SFTPAttributes | None,
        sizes: set[int],
        memory: FolderMemory,
    ) -> FolderFile:
        keep_until = name_date(name, delivery) + dt.timedelta(days=self.retention_days)
        found = FolderFile(
            name,
            FileStatus.PRESENT,
            sent_bytes=delivery.bytes,
            bytes_now=entry.st_size if entry is not None else None,
            delivered_at=delivery.delivered_at,
            keep_until=keep_until,
        )
        if entry is None:
            return self._missing(found, memory)
        memory.missing_since.pop(name, None)
        if not (entry.st_mode and stat.S_ISREG(entry.st_mode)):
            memory.seen.pop(name, None)
            return _altered(found, f"now {_kind(entry)}, not the file we sent")
        if entry.st_size != delivery.bytes:
            memory.seen.pop(name, None)
            earlier = " (the size of an earlier delivery of it)" if entry.st_size in sizes else ""
            return _altered(
                found,
                f"{entry.st_size} bytes, we sent {delivery.bytes}{earlier}; retention leaves it",
            )
        sighting = memory.seen.get(name)
        mtime = int(entry.st_mtime) if entry.st_mtime is not None else None
        same_delivery = sighting is not None and sighting.delivered_at == delivery.delivered_at
        if not (self.read_back_all or (same_delivery and sighting and sighting.mtime != mtime)):
            if not same_delivery:
                memory.seen[name] = Sighting(delivery.delivered_at, mtime)
            return found
        try:
            held = self._sha256(name)
        except FileNotFoundError:  # picked up between the listing and the read
            return self._missing(found, memory)
        if held != delivery.sha256:
            memory.seen[name] = Sighting(delivery.delivered_at, _CONTENT_DIFFERED)
            return _altered(
                found,
                f"same size, other bytes (sha256 {held[:12]}…, we sent {delivery.sha256[:12]}…)",
            )
        memory.seen[name] = Sighting(delivery.delivered_at, mtime)
        return found

    def _missing(self, found: FolderFile, memory: FolderMemory) -> FolderFile:
        name = found.name
        memory.seen.pop(name, None)
        assert found.keep_until is not None
        if self.today > found.keep_until:
            memory.missing_since.pop(name, None)
            return replace(found, status=FileStatus.EXPIRED, bytes_now=None)
        since = memory.missing_since.setdefault(name, self.checked_at)
        return replace(
            found,
            status=FileStatus.GONE_EARLY,
            bytes_now=None,
            missing_since=since,
            note=f"picked up or removed; retention would have kept it to {found.keep_until}",
        )

    def _sha256(self, name: str) -> str:
        self.read_back.append(name)
        digest = hashlib.sha256()
        try:
            with self.sftp.open(posixpath.join(self.target.directory, name), "rb") as remote:
                remote.prefetch()
                while chunk := remote.read(READ_BACK_CHUNK_BYTES):
                    digest.update(chunk)
        except FileNotFoundError:
            raise
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise ReconciliationError(
                f"client {self.target.client_id}: the folder {self.label} was not reconciled: "
                f"{name} could not be read back ({error or type(error).__name__}). Nothing was "
                "changed; run it again, or without reading back."
            ) from error
        return digest.hexdigest()


def _altered(file: FolderFile, note: str) -> FolderFile:
    return replace(file, status=FileStatus.ALTERED, note=note)


def _not_ours(entry: paramiko.SFTPAttributes, now: dt.datetime) -> FolderFile:
    name = entry.filename
    regular = bool(entry.st_mode and stat.S_ISREG(entry.st_mode))
    size = entry.st_size if regular else None
    if regular and final_name_of(name) is not None:
        age = now.timestamp() - entry.st_mtime if entry.st_mtime is not None else None
        stale = age is not None and age > STALE_TEMPORARY_SECONDS
        note = (
            f"an upload of {final_name_of(name)} that did not finish; retention removes it"
            if stale
            else f"an upload of {final_name_of(name)} in progress (or interrupted in the last day)"
        )
        return FolderFile(name, FileStatus.TEMPORARY, bytes_now=size, note=note)
    note = "not delivered here by us; left alone"
    if not regular:
        note = f"{_kind(entry)}; {note}"
    return FolderFile(name, FileStatus.FOREIGN, bytes_now=size, note=note)


def _kind(entry: paramiko.SFTPAttributes) -> str:
    mode = entry.st_mode or 0
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISREG(mode):
        return "a file"
    return "something other than a file"


def name_date(name: str, delivery: ledger.Delivery) -> dt.date:
    """The date in a delivered file's name (`SCORM20261128.csv.gz.pgp` -> 2026-11-28: the eight
    digits that end the part before the first dot), which is what retention's age is counted
    from; else the activity day + 1, the later of the two date rules."""
    match = _NAME_DATE.search(name.split(".", 1)[0])
    if match:
        try:
            return dt.datetime.strptime(match.group(1), "%Y%m%d").date()
        except ValueError:
            pass
    return dt.date.fromisoformat(delivery.activity_day) + dt.timedelta(days=1)


def _connection_problem(target: SftpTarget, error: DeliveryError) -> str:
    """The connection error without the delivery's own preamble ("client X: could not deliver
    files to ...:"), which would name the client and folder twice."""
    text = str(error)
    preamble = (
        f"client {target.client_id}: could not deliver files to "
        f"{target.username}@{target.server}:{target.directory}: "
    )
    return text.removeprefix(preamble)


def _listing_failure(target: SftpTarget, label: str, error: Exception) -> ReconciliationError:
    where = f"client {target.client_id}: the folder {label} was not reconciled"
    if isinstance(error, FileNotFoundError):
        return ReconciliationError(
            f"{where}: it does not exist on the server. Create it, or correct sftp.directory "
            f"for client {target.client_id}."
        )
    if isinstance(error, PermissionError):
        return ReconciliationError(
            f"{where}: permission denied listing it. Ask the server's administrator to let "
            f"{target.username} list it."
        )
    return ReconciliationError(
        f"{where}: it could not be listed ({error or type(error).__name__}). Nothing was "
        "changed; it is looked at again at the next run."
    )


def counts_line(counts: Iterable[tuple[FileStatus, int]]) -> str:
    """`present 3 · altered 1 · …`: every class, in report order."""
    return " · ".join(f"{status.value} {count}" for status, count in counts)
