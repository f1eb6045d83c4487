"""The ledger of deliveries: which file this project put in which client folder, and how big it was.

Each client's ledger is `<archive>/<client>/deliveries.jsonl` beside the client's archived files,
one JSON object per line, one line per delivery, never rewritten. Retention reads it to tell the
files it may remove (ours: delivered under that name to that exact folder, and still the size we
delivered) from everything else in the folder (a client's own copy, another system's file).

Writing: each delivery is one `os.write` of one whole line to a file opened with `O_APPEND`, then
`fsync`. On a local filesystem an appending write is placed at the end of the file and written as
one piece, so processes delivering at the same time (a nightly run next to an `ods resend`) never
interleave or lose each other's lines. An exclusive `flock` held for that write also lets a writer
see whether a crash left half a line at the end, and start its own line on a new line then. (A
network filesystem such as NFS promises neither: keep the archive on a local disk.)

Reading is forgiving, because a ledger that cannot be read would stop retention for good: a line
that is not a delivery record (a crash's half-written last line, a hand edit) is skipped with a
warning naming the file and line, and keys this version does not know are ignored, so a newer
version's lines still read. A skipped line can only make retention remove less, never more.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from orchestration.delivery.sftp_session import SftpTarget

log = logging.getLogger(__name__)

LEDGER_FILE_NAME = "deliveries.jsonl"


@dataclass(frozen=True)
class Delivery:
    """One file delivered: what (client, feed, day, name, size, sha256), where (server, account,
    folder) and when (UTC, and the Dagster run that did it, if any)."""

    client_id: str
    feed: str
    activity_day: str  # ISO date
    file_name: str
    host: str
    port: int
    username: str
    directory: str
    bytes: int
    sha256: str
    delivered_at: str  # ISO UTC timestamp
    run_id: str | None = None
    # The client's contract version of the file (`export.contract`), and that of the feed's
    # delivery before it (of other bytes): they differ on the first delivery after a contract
    # change. None on lines written before contracts were recorded, and for manifests.
    contract_version: str | None = None
    previous_contract_version: str | None = None


class Folder(TypedDict):
    """One SFTP folder as the ledger tells folders apart: the keyword arguments of
    `delivered_sizes` and `last_delivery`, and the folder fields of a `Delivery`."""

    host: str
    port: int
    username: str
    directory: str


_FIELDS = {field.name: field for field in fields(Delivery)}
_INT_FIELDS = {"port", "bytes"}
_OPTIONAL_FIELDS = {"run_id", "contract_version", "previous_contract_version"}


def ledger_path(archive_root: Path, client_id: str) -> Path:
    """`<archive_root>/<client_id>/deliveries.jsonl`."""
    _check_client_id(client_id)
    return archive_root / client_id / LEDGER_FILE_NAME


def record(archive_root: Path, delivery: Delivery) -> None:
    """Append one line of JSON to <archive_root>/<client_id>/deliveries.jsonl (one write, O_APPEND,
    flushed+fsynced), creating folders."""
    _check_delivery(delivery)
    path = ledger_path(archive_root, delivery.client_id)
    line = json.dumps(asdict(delivery), ensure_ascii=False, separators=(",", ":")) + "\n"
    data = line.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    where = (
        f"client {delivery.client_id}: the delivery of {delivery.file_name} to "
        f"{delivery.username}@{delivery.host}:{delivery.port}:{delivery.directory}"
    )
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise OSError(
            error.errno,
            f"{where} could not be recorded in the ledger {path} ({error.strerror}); retention "
            "will treat that file as not ours and leave it. Make the archive folder writable.",
        ) from error
    try:
        # The lock only makes the look at the last byte and the write one step among our own
        # writers (a file growing under a concurrent write can show a size whose last byte is not
        # yet written); the O_APPEND write alone already keeps lines whole.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _ends_without_newline(fd):
            # A crash left half a line at the end; start ours on a line of its own, so that it
            # is not glued onto the broken one and lost with it.
            data = b"\n" + data
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(
                f"{where} was only partly written to the ledger {path} ({written} of "
                f"{len(data)} bytes; is the disk full?). The partial line is skipped when read; "
                "retention will treat that file as not ours and leave it."
            )
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_folder(path.parent)
    log.info(
        "client %s: recorded delivery of %s in %s", delivery.client_id, delivery.file_name, path
    )


def delivered_sizes(
    archive_root: Path, client_id: str, *, host: str, port: int, username: str, directory: str
) -> dict[str, set[int]]:
    """file name -> the sizes in bytes this project delivered under that name to that exact folder
    (host compared case-insensitively, directory normalised)."""
    wanted = folder_key(host, port, username, directory)
    sizes: dict[str, set[int]] = {}
    for delivery in read_deliveries(archive_root, client_id):
        where = folder_of(delivery)
        if where == wanted:
            sizes.setdefault(delivery.file_name, set()).add(delivery.bytes)
    return sizes


def target_folder(target: SftpTarget) -> Folder:
    """The folder a client's files go to now: deliveries to its earlier server or folder are not
    this folder's (retention, re-sends and reconciliation look at this one)."""
    return Folder(
        host=target.host, port=target.port, username=target.username, directory=target.directory
    )


def folder_key(host: str, port: int, username: str, directory: str) -> tuple[str, int, str, str]:
    """A folder in the form folders are compared in (host case-insensitive, directory
    normalised), so that retention and reconciliation call the same files ours."""
    return (_host_key(host), int(port), username, normalise_directory(directory))


def folder_of(delivery: Delivery) -> tuple[str, int, str, str]:
    """The folder a delivery went to, as `folder_key` compares it."""
    return folder_key(delivery.host, delivery.port, delivery.username, delivery.directory)


def last_delivery(
    archive_root: Path,
    client_id: str,
    file_name: str,
    *,
    host: str,
    port: int,
    username: str,
    directory: str,
) -> Delivery | None:
    """The latest delivery of `file_name` to that exact folder, if any: what the folder should
    hold under that name unless someone changed it since."""
    wanted = folder_key(host, port, username, directory)
    found = None
    for delivery in read_deliveries(archive_root, client_id):
        where = folder_of(delivery)
        if where == wanted and delivery.file_name == file_name:
            found = delivery
    return found


def previous_contract_version(
    archive_root: Path, client_id: str, feed: str, file_name: str, sha256: str
) -> str | None:
    """The contract version of the client's last delivery of `feed` before this file: the latest
    line of the feed that is not these very bytes under this name (a re-send of them is not a
    new delivery of the contract). None when there is none, or it predates contract versions."""
    found = None
    for delivery in read_deliveries(archive_root, client_id):
        if delivery.feed == feed and (delivery.file_name, delivery.sha256) != (file_name, sha256):
            found = delivery.contract_version
    return found


def read_deliveries(archive_root: Path, client_id: str) -> Iterator[Delivery]:
    """Every readable delivery in the client's ledger, oldest first; none when it has no ledger."""
    path = ledger_path(archive_root, client_id)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            delivery = _parse(raw)
        except ValueError as error:
            log.warning(
                "client %s: line %d of the delivery ledger %s is skipped: %s. A delivery written "
                "there is not known to retention, which leaves such a file in place; nothing else "
                "is affected. A crash's half-written last line can stay; otherwise restore the "
                "line from a backup.",
                client_id,
                number,
                path,
                error,
            )
            continue
        if delivery.client_id != client_id:
            log.warning(
                "client %s: line %d of the delivery ledger %s is skipped: it records a delivery "
                "for client %s. Move it to that client's ledger.",
                client_id,
                number,
                path,
                delivery.client_id,
            )
            continue
        yield delivery


def normalise_directory(directory: str) -> str:
    """One spelling per folder: `/outbound/`, `/outbound//` and `/./outbound` are `/outbound`.
    A relative folder stays relative (it is relative to the account's login folder, which may not
    be `/`), so `outbound` and `/outbound` are different folders; and `..` stays, since
    `/data/../outbound` is not `/outbound` when `/data` is a symbolic link on the server."""
    directory = directory.strip()
    parts = [part for part in directory.split("/") if part not in {"", "."}]
    if directory.startswith("/"):
        return "/" + "/".join(parts)
    return "/".join(parts) or "."


def _host_key(host: str) -> str:
    return host.strip().lower()


def _parse(raw: bytes) -> Delivery:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name not in data:
            if name in _OPTIONAL_FIELDS:
                continue
            raise ValueError(f"the key {name!r} is missing")
        value = data[name]
        if name in _OPTIONAL_FIELDS and value is None:
            values[name] = None
        elif name in _INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} is {value!r}, not a whole number")
            values[name] = value
        elif not isinstance(value, str):
            raise ValueError(f"{name} is {value!r}, not a string")
        else:
            values[name] = value
    return Delivery(**values)  # keys this version does not know are left out


def _check_delivery(delivery: Delivery) -> None:
    _check_client_id(delivery.client_id)
    for name in _FIELDS:
        value = getattr(delivery, name)
        if name in _OPTIONAL_FIELDS and value is None:
            continue
        if name in _INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Delivery.{name} must be an int, not {value!r}")
        elif not isinstance(value, str):
            raise TypeError(f"Delivery.{name} must be a str, not {value!r}")
    if not delivery.file_name or "/" in delivery.file_name:
        raise ValueError(f"Delivery.file_name {delivery.file_name!r} must be a bare file name")
    if delivery.bytes < 0:
        raise ValueError(f"Delivery.bytes is {delivery.bytes}; a size cannot be negative")


def _check_client_id(client_id: str) -> None:
    if not client_id or client_id in {".", ".."} or "/" in client_id or "\\" in client_id:
        raise ValueError(f"client id {client_id!r} cannot name a folder of the archive")


def _ends_without_newline(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _fsync_folder(folder: Path) -> None:
    """Make a newly created ledger file's name durable too (its folder entry)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
