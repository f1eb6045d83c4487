"""What wraps a client's CSV on its way out: gzip, OpenPGP encryption, both, or nothing.

A client with `compress: gzip` receives `SCORM20261025.csv.gz`, with `encrypt: {public_key: …}`
`SCORM20261025.csv.pgp`, with both `SCORM20261025.csv.gz.pgp` (compressed first: encrypted data
does not compress). The CSV itself is the same file every client gets (its contract does not
change); the envelope is made once, when the file is made, and archived beside it, so that a
re-send sends the very bytes sent before (OpenPGP output is randomised: encrypting again would
give other bytes).

Both steps stream through files on disk: memory stays flat whatever the file's size. gzip is
written with no name and a zero time in its header, so the same CSV always gives the same `.gz`.
A rebuild that makes the same CSV again, for the same envelope (compression, key fingerprint),
keeps the archived envelope instead of encrypting anew: the client gets byte-identical files,
and a file already in its folder is not sent twice.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestration.export.openpgp import encrypt_file, inspect_public_key

if TYPE_CHECKING:
    from orchestration.clients import ClientConfig
    from orchestration.export.archive import ArchivedFile

GZIP_SUFFIX = ".gz"
PGP_SUFFIX = ".pgp"
# zlib's default level: within a few per cent of level 9's size on CSV, at a third of its time.
GZIP_LEVEL = 6
COPY_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class Envelope:
    """How a client's files are wrapped: `compression` ("gzip" or None) and the path of the
    client's OpenPGP public key (None: not encrypted)."""

    compression: str | None = None
    public_key: Path | None = None

    @property
    def suffix(self) -> str:
        """What the envelope appends to the CSV's name: "", ".gz", ".pgp" or ".gz.pgp"."""
        return (GZIP_SUFFIX if self.compression else "") + (PGP_SUFFIX if self.public_key else "")

    @property
    def is_plain(self) -> bool:
        return not self.suffix


def envelope_of(client: ClientConfig) -> Envelope:
    return Envelope(
        compression=client.compress,
        public_key=client.encrypt.public_key if client.encrypt is not None else None,
    )


@dataclass(frozen=True)
class Sealed:
    """The bytes to send for one CSV: the file at `path` (a staged file to move into the
    archive, or the archived one kept from before), its name, size, sha256 and what made it."""

    path: Path
    file_name: str
    bytes: int
    sha256: str
    compression: str | None
    encryption: dict[str, Any] | None
    kept: bool


def seal(
    plain: Path,
    plain_name: str,
    plain_sha256: str,
    envelope: Envelope,
    staging: Path,
    previous: ArchivedFile | None,
) -> Sealed:
    """Wrap the CSV at `plain` (named `plain_name` in the archive) for sending; the result is
    written to `staging` (removed by the caller). When the archive's `previous` version of the
    file has the same CSV and the same envelope, its wrapped file is kept instead."""
    name = plain_name + envelope.suffix
    fingerprint = (
        inspect_public_key(envelope.public_key).fingerprint
        if envelope.public_key is not None
        else None
    )
    encryption = {"openpgp_fingerprint": fingerprint} if fingerprint else None
    if previous is not None and _same_envelope(previous, plain_sha256, name, encryption):
        kept = previous.sent_path
        try:
            unchanged = _digest(kept) == (previous.sent_bytes, previous.sent_sha256)
        except OSError:
            unchanged = False  # gone or unreadable: made anew
        if unchanged:
            assert previous.sent_bytes is not None and previous.sent_sha256 is not None
            return Sealed(
                kept,
                name,
                previous.sent_bytes,
                previous.sent_sha256,
                envelope.compression,
                encryption,
                kept=True,
            )
    source = plain
    gzipped = staging.with_name(staging.name + GZIP_SUFFIX)
    try:
        if envelope.compression == "gzip":
            _gzip(plain, gzipped if envelope.public_key else staging)
            source = gzipped
        if envelope.public_key is not None:
            encrypt_file(
                source, staging, envelope.public_key, compress=envelope.compression is None
            )
    finally:
        if envelope.public_key is not None:
            gzipped.unlink(missing_ok=True)
    size, sha256 = _digest(staging)
    return Sealed(staging, name, size, sha256, envelope.compression, encryption, kept=False)


def _same_envelope(
    previous: ArchivedFile, plain_sha256: str, name: str, encryption: dict[str, Any] | None
) -> bool:
    return (
        previous.sha256 == plain_sha256
        and previous.sent_file_name == name
        and previous.encryption == encryption
        and previous.sent_bytes is not None
    )


def _gzip(source: Path, target: Path) -> None:
    with (
        source.open("rb") as reader,
        target.open("wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL
        ) as out,
    ):
        shutil.copyfileobj(reader, out, COPY_CHUNK_BYTES)


def _digest(path: Path) -> tuple[int, str]:
    """(size, sha256) of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
