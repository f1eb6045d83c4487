"""The local archive: every file made, kept so that any day can be re-sent byte for byte.

Layout: `<archive>/<client>/<feed>/<file name>` is the latest file for that day, with a
`<file name>.json` manifest beside it (rows, bytes, sha256, activity day, when it was made, and
the client's contract for the feed: `contract`, `contract_version`, see `export.contract`). When a
rebuild of a day produces different bytes, the previous file and manifest move to `history/`
under a timestamped name first, so nothing made is ever lost.

For a client whose files are compressed or encrypted (`export.envelope`), the CSV stays in the
archive as made and the bytes sent lie beside it under the name they are sent by
(`SCORM20261026.csv.gz.pgp`); the record holds the sha256 of both (`sha256` of the CSV,
`sent_sha256` of what is sent). A re-send sends those archived bytes again.

The client-day manifests (`MANIFEST<YYYYMMDD>.json`, `export.manifest`) are archived the same way
under `<archive>/<client>/manifest/`. Records written before a key existed read with it None.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from orchestration.paths import ods_home


@dataclass(frozen=True)
class ArchivedFile:
    client_id: str
    feed: str
    activity_day: str
    file_name: str
    rows: int
    bytes: int
    sha256: str
    made_at: str
    path: Path
    # The client's contract for the feed when the file was made (`Contract.as_dict()`) and its
    # version; None in records made before contracts were recorded.
    contract: dict[str, Any] | None = None
    contract_version: str | None = None
    # What is sent when it is not the CSV itself (a compressed or encrypted client): its name
    # (beside the CSV in the archive), size and sha256, and what wrapped it. None: the CSV is sent.
    sent_file_name: str | None = None
    sent_bytes: int | None = None
    sent_sha256: str | None = None
    compression: str | None = None
    encryption: dict[str, Any] | None = None

    def manifest(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("path")
        return data

    @property
    def sent_name(self) -> str:
        """The name the file is delivered under."""
        return self.sent_file_name or self.file_name

    @property
    def sent_path(self) -> Path:
        """The archived bytes that are delivered: the CSV, or its compressed/encrypted form."""
        return self.path.with_name(self.sent_file_name) if self.sent_file_name else self.path

    @property
    def sent_size(self) -> int:
        return self.sent_bytes if self.sent_bytes is not None else self.bytes

    @property
    def sent_digest(self) -> str:
        return self.sent_sha256 or self.sha256


def default_archive_root() -> Path:
    return Path(os.environ.get("ODS_ARCHIVE_DIR", ods_home() / "archive")).resolve()


def feed_folder(root: Path, client_id: str, feed: str) -> Path:
    return root / client_id / feed


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def store(
    staged: Path, final: Path, record: ArchivedFile, staged_sent: Path | None = None
) -> ArchivedFile:
    """Move a fully written file into place, keeping any different earlier version in history/.

    `staged_sent` is the staged form to send (compressed/encrypted), moved to `record.sent_path`;
    None when the CSV is sent, or when the archived one is kept (same CSV, same envelope)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    previous = read(final)
    if previous is not None and (
        previous.sha256 != record.sha256
        or previous.sent_name != record.sent_name
        or previous.sent_digest != record.sent_digest
    ):
        history = final.parent / "history"
        history.mkdir(exist_ok=True)
        stamp = previous.made_at.replace(":", "").replace("-", "")
        final.replace(history / f"{final.name}.{stamp}")
        _manifest_path(final).replace(history / f"{final.name}.{stamp}.json")
        if previous.sent_file_name and previous.sent_path.exists():
            previous.sent_path.replace(history / f"{previous.sent_file_name}.{stamp}")
    if staged_sent is not None:
        staged_sent.replace(record.sent_path)
    staged.replace(final)
    manifest = _manifest_path(final)
    tmp = manifest.with_name(manifest.name + ".part")
    tmp.write_text(json.dumps(record.manifest(), indent=2) + "\n")
    tmp.replace(manifest)
    return record


def read(path: Path) -> ArchivedFile | None:
    """The archived file at `path` with its manifest, or None if it was never made."""
    manifest = _manifest_path(path)
    if not path.exists() or not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    # Keys a newer version wrote and this one does not know are left out, as in the ledger.
    return ArchivedFile(**{k: v for k, v in data.items() if k in _RECORD_KEYS}, path=path)


_RECORD_KEYS = {f.name for f in fields(ArchivedFile)} - {"path"}


class ArchiveMismatch(ValueError):
    """An archived file's bytes are not the ones its manifest records: it was damaged or replaced
    after it was made, so it must not be sent."""


HASH_CHUNK_BYTES = 1 << 20


def verify(made: ArchivedFile) -> ArchivedFile:
    """Check the archived bytes to send against the record (size and sha256) before they are
    sent; raise ArchiveMismatch naming the file, both sizes or hashes and how to make it again.
    (The CSV of an encrypted client was checked when it was made; what is sent is its envelope.)"""
    path, expected_bytes, expected_sha256 = made.sent_path, made.sent_size, made.sent_digest
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        size, digest = -1, hashlib.sha256(b"missing")
    found = digest.hexdigest()
    if size == expected_bytes and found == expected_sha256:
        return made
    held = "is missing" if size < 0 else f"has {size} bytes with sha256 {found}"
    raise ArchiveMismatch(
        f"the archived file {path} is not the file that was made: it {held}, "
        f"but its manifest records {expected_bytes} bytes with sha256 "
        f"{expected_sha256}; nothing was sent. Make it again from the marts with "
        f"`ods rebuild --client {made.client_id} --feed {made.feed} --from {made.activity_day}` "
        "(or materialize the feed's file asset for that partition), then deliver it."
    )


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
