"""The client-day manifest: `MANIFEST<YYYYMMDD>.json`, uploaded after all of a client's files for
the day are in its folder, for clients with `manifest: true`.

A client's loader cannot tell a half-delivered day from a quiet one by looking at the folder; it
can wait for the manifest, which appears only once every file it lists is in place, and check
each file against it (bytes, sha256). The manifest is dated like the day's files
(`days.manifest_name`), is uploaded like them (temporary name, read-back, rename), archived under
`<archive>/<client>/manifest/` and entered in the ledger (feed `manifest`), so retention removes it
with the files. Its shape is `manifest.schema.json` beside this module (JSON Schema 2020-12).

Each entry describes the file as sent: for a compressed or encrypted client, `name`, `bytes` and
`sha256` are those of the `.gz`/`.pgp` file in the folder, and `content` gives the CSV inside
(name, bytes, sha256) for a check after decrypting. `no_activity` is true for a file that holds
only its header row. `contract_version` is the client's contract for the feed
(`export.contract`); `contract_changed` is true on the first delivery after it changed, with the
version before.

The manifest lists every file of the client-day, also those delivered by an earlier run (read from
the archive and the ledger), so a re-send of one feed or a rebuild writes a complete manifest
again. When the files listed are exactly those of the archived manifest, the archived one is
sent again unchanged (same bytes, same `generated_at`): a re-send is byte for byte the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from orchestration.days import FileDate, file_date, manifest_name
from orchestration.delivery.ledger import Delivery
from orchestration.export import archive

# The ledger's `feed` of a manifest, and its folder in the archive.
MANIFEST_FEED = "manifest"
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
# Bumped when the manifest's shape changes in a way a loader must know of.
MANIFEST_FORMAT = 1


def manifest_entry(made: archive.ArchivedFile, timezone: str, delivery: Delivery) -> dict[str, Any]:
    """One file of the client-day as its delivery (the ledger line) put it in the folder."""
    entry: dict[str, Any] = {
        "name": delivery.file_name,
        "feed": made.feed,
        "activity_day": made.activity_day,
        "time_zone": timezone,
        "rows": made.rows,
        "bytes": delivery.bytes,
        "sha256": delivery.sha256,
        "contract_version": made.contract_version,
        "generated_at": made.made_at,
        "no_activity": made.rows == 0,
    }
    previous = delivery.previous_contract_version
    if previous is not None and previous != delivery.contract_version:
        entry |= {"contract_changed": True, "previous_contract_version": previous}
    else:
        entry["contract_changed"] = False
    if made.sent_file_name is not None:
        entry |= {
            "compression": made.compression,
            "encryption": "openpgp" if made.encryption else None,
            "openpgp_fingerprint": (made.encryption or {}).get("openpgp_fingerprint"),
            "content": {"name": made.file_name, "bytes": made.bytes, "sha256": made.sha256},
        }
    return entry


def manifest_document(
    client_id: str,
    day: dt.date,
    rule: FileDate,
    timezone: str,
    files: list[dict[str, Any]],
    generated_at: str,
) -> dict[str, Any]:
    return {
        "manifest_format": MANIFEST_FORMAT,
        "client": client_id,
        "activity_day": day.isoformat(),
        "file_date": file_date(day, rule).isoformat(),
        "time_zone": timezone,
        "generated_at": generated_at,
        "file_count": len(files),
        "files": files,
    }


def manifest_folder(archive_root: Path, client_id: str) -> Path:
    return archive.feed_folder(archive_root, client_id, MANIFEST_FEED)


def archive_manifest(
    archive_root: Path,
    client_id: str,
    day: dt.date,
    rule: FileDate,
    timezone: str,
    files: list[dict[str, Any]],
) -> archive.ArchivedFile:
    """The client-day's manifest in the archive, listing `files`: the archived one when it lists
    exactly these files, else a new one (the old one kept in history/)."""
    final = manifest_folder(archive_root, client_id) / manifest_name(day, rule)
    previous = archive.read(final)
    if previous is not None and _listed(previous.path) == files:
        return archive.verify(previous)
    document = manifest_document(client_id, day, rule, timezone, files, archive.now_utc())
    data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        staged.write_bytes(data)
        record = archive.ArchivedFile(
            client_id=client_id,
            feed=MANIFEST_FEED,
            activity_day=day.isoformat(),
            file_name=final.name,
            rows=len(files),
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            made_at=document["generated_at"],
            path=final,
        )
        return archive.store(staged, final, record)
    finally:
        staged.unlink(missing_ok=True)


def _listed(path: Path) -> list[dict[str, Any]] | None:
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return files if isinstance(files, list) else None
