"""The local archive: every file made, kept so that any day can be re-sent byte for byte.

Layout: `<archive>/<client>/<feed>/<file name>` is the latest file for that day, with a
`<file name>.json` manifest beside it (rows, bytes, sha256, activity day, when it was made). When a
rebuild of a day produces different bytes, the previous file and manifest move to `history/`
under a timestamped name first, so nothing made is ever lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

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

    def manifest(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("path")
        return data


def default_archive_root() -> Path:
    return Path(os.environ.get("ODS_ARCHIVE_DIR", ods_home() / "archive")).resolve()


def feed_folder(root: Path, client_id: str, feed: str) -> Path:
    return root / client_id / feed


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def store(staged: Path, final: Path, record: ArchivedFile) -> ArchivedFile:
    """Move a fully written file into place, keeping any different earlier version in history/."""
    final.parent.mkdir(parents=True, exist_ok=True)
    previous = read(final)
    if previous is not None and previous.sha256 != record.sha256:
        history = final.parent / "history"
        history.mkdir(exist_ok=True)
        stamp = previous.made_at.replace(":", "").replace("-", "")
        final.replace(history / f"{final.name}.{stamp}")
        _manifest_path(final).replace(history / f"{final.name}.{stamp}.json")
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
    return ArchivedFile(**json.loads(manifest.read_text()), path=path)


class ArchiveMismatch(ValueError):
    """An archived file's bytes are not the ones its manifest records: it was damaged or replaced
    after it was made, so it must not be sent."""


HASH_CHUNK_BYTES = 1 << 20


def verify(made: ArchivedFile) -> ArchivedFile:
    """Check the archived file against its manifest (size and sha256) before it is sent; raise
    ArchiveMismatch naming the file, both sizes or hashes and how to make it again."""
    digest = hashlib.sha256()
    size = 0
    with made.path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    found = digest.hexdigest()
    if size == made.bytes and found == made.sha256:
        return made
    raise ArchiveMismatch(
        f"the archived file {made.path} is not the file that was made: it has {size} bytes "
        f"with sha256 {found}, but its manifest records {made.bytes} bytes with sha256 "
        f"{made.sha256}; nothing was sent. Make it again from the marts with "
        f"`ods rebuild --client {made.client_id} --feed {made.feed} --from {made.activity_day}` "
        "(or materialize the feed's file asset for that partition), then deliver it."
    )


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
