"""What reconciliation remembers between two looks at a client's folder, kept in the archive.

`<archive>/<client>/reconciliation.json`, beside the client's ledger of deliveries. Per folder
(the client may move to another server or folder; each keeps its own memory):

- `missing_since`: file name -> when reconciliation first saw that delivered file missing (UTC).
  This is the "when" of a file gone before its retention date: the folder itself cannot say when
  a file left it, so the first look that did not find it is the best we know.
- `seen`: file name -> the delivery (`delivered_at`) and the modification time the file had when
  reconciliation first found it there at the size we sent. A later look that finds the same
  delivery with another modification time reads the file back once to compare its sha256 (see
  `delivery.reconcile`); an unchanged time costs nothing.

The file is small (one entry per file still in the folder or missing within retention) and
rewritten whole on each look: written to a temporary name, fsynced, then renamed over the old
one, so a crash leaves the old state or the new, never half of one. A lock file beside it
(`reconciliation.lock`, `flock`) makes one look at a client's folder at a time, so a nightly
run and an `ods reconcile` never both record "first seen missing" with different times.

A state that cannot be read (a hand edit, another version) is not fatal: reconciliation starts
afresh with a warning, and the only loss is that files already missing are dated from this look.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_FILE_NAME = "reconciliation.json"
LOCK_FILE_NAME = "reconciliation.lock"
STATE_VERSION = 1


@dataclass(frozen=True)
class Sighting:
    """A delivered file found in place at the size we sent: which delivery, and its mtime then."""

    delivered_at: str
    mtime: int | None


@dataclass
class FolderMemory:
    """What reconciliation remembers of one folder."""

    missing_since: dict[str, str] = field(default_factory=dict)
    seen: dict[str, Sighting] = field(default_factory=dict)


def state_path(archive_root: Path, client_id: str) -> Path:
    return archive_root / client_id / STATE_FILE_NAME


@contextmanager
def remembered(archive_root: Path, client_id: str, folder: str) -> Iterator[FolderMemory]:
    """The folder's memory, under the client's reconciliation lock; written back (atomically)
    when the block ends without an error. An error leaves the previous state as it was."""
    client_dir = archive_root / client_id
    client_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(client_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        path = state_path(archive_root, client_id)
        folders = _read(path, client_id)
        memory = _memory_of(folders.get(folder))
        yield memory
        folders[folder] = {
            "missing_since": dict(sorted(memory.missing_since.items())),
            "seen": {
                name: {"delivered_at": s.delivered_at, "mtime": s.mtime}
                for name, s in sorted(memory.seen.items())
            },
        }
        _write(path, {"version": STATE_VERSION, "folders": folders})
    finally:
        os.close(lock_fd)


def _read(path: Path, client_id: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning(
            "client %s: the reconciliation state %s cannot be read (%s); starting afresh: "
            "files already missing are dated from this look",
            client_id,
            path,
            error,
        )
        return {}
    folders = data.get("folders") if isinstance(data, dict) else None
    if not isinstance(folders, dict):
        log.warning(
            "client %s: the reconciliation state %s has no 'folders' mapping; starting afresh",
            client_id,
            path,
        )
        return {}
    return folders


def _memory_of(raw: Any) -> FolderMemory:
    """Entries of the wrong shape are dropped one by one: a bad entry costs only itself."""
    memory = FolderMemory()
    if not isinstance(raw, dict):
        return memory
    missing = raw.get("missing_since")
    if isinstance(missing, dict):
        memory.missing_since = {
            name: when
            for name, when in missing.items()
            if isinstance(name, str) and isinstance(when, str)
        }
    seen = raw.get("seen")
    if isinstance(seen, dict):
        for name, entry in seen.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("delivered_at"), str):
                continue
            mtime = entry.get("mtime")
            memory.seen[name] = Sighting(
                entry["delivered_at"],
                mtime if isinstance(mtime, int) and not isinstance(mtime, bool) else None,
            )
    return memory


def _write(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.part")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)
