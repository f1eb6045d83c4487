"""OpenPGP for clients that ask for their files encrypted: check a client's public key, and
encrypt a file to it.

GnuPG does the work (the `gpg` binary, through python-gnupg). It is the implementation every
client's tooling is tested against, it streams (python-gnupg feeds it through a pipe in 16 KiB
pieces and gpg writes the output file itself, so memory stays flat for any file size), and it is
maintained with security fixes by the distributions; the pure-Python alternative (PGPy) holds a
whole message in memory and its last release does not import on Python 3.13.

gpg never sees the user's own keyrings: every call runs in a fresh, private GNUPGHOME made for
it (a temporary folder, mode 0700) into which only the client's public key is imported, and
which is removed afterwards. The key is the one the clients file names, so it is trusted as
given (`--trust-model always`): its fingerprint is recorded in the archive and the manifest.
Nothing here needs a secret key, a passphrase or gpg-agent.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gnupg

# Checking a key when the clients file loads, or encrypting a file, never takes this long; a gpg
# that does is stuck (a hung pinentry, a broken home) and is reported rather than waited for.
GPG_TIMEOUT_SECONDS = 600


class OpenPgpError(ValueError):
    """A public key cannot be used to encrypt to, or an encryption failed; says what and why."""


@dataclass(frozen=True)
class RecipientKey:
    """A client's public key as gpg reads it: what the archive and the manifest record."""

    fingerprint: str
    user_ids: tuple[str, ...]
    expires: dt.datetime | None


def gpg_binary() -> str:
    """The `gpg` program, or OpenPgpError saying how to install it."""
    found = shutil.which("gpg")
    if found is None:
        raise OpenPgpError(
            "the gpg program (GnuPG) is not installed; install it (Debian/Ubuntu: "
            "`apt-get install gnupg`) to encrypt files for clients with `encrypt`"
        )
    return found


@contextmanager
def private_gnupg_home() -> Iterator[gnupg.GPG]:
    """A gpg on a fresh, empty home of its own, removed afterwards (with any agent gpg started)."""
    home = tempfile.mkdtemp(prefix="ods-gnupg-")
    os.chmod(home, 0o700)
    try:
        gpg = gnupg.GPG(gpgbinary=gpg_binary(), gnupghome=home)
        gpg.encoding = "utf-8"
        yield gpg
    finally:
        if any(name.startswith("S.gpg-agent") for name in os.listdir(home)):
            subprocess.run(
                ["gpgconf", "--homedir", home, "--kill", "all"],
                check=False,
                capture_output=True,
                timeout=30,
            )
        shutil.rmtree(home, ignore_errors=True)


def inspect_public_key(path: Path, *, now: dt.datetime | None = None) -> RecipientKey:
    """The key in `path` if files can be encrypted to it now; else OpenPgpError saying what is
    wrong: unreadable, not an OpenPGP public key, more than one key, expired, revoked, or no
    (unexpired) key that may encrypt (a sign-only key)."""
    try:
        stat = path.stat()
    except OSError as error:
        raise OpenPgpError(f"cannot read the key file {path}: {error.strerror}") from None
    if not os.access(path, os.R_OK):
        raise OpenPgpError(f"the key file {path} is not readable by this user")
    key = _scanned(str(path), stat.st_mtime_ns, stat.st_size)
    now = now or dt.datetime.now(dt.UTC)
    if key.expires is not None and key.expires <= now:
        raise OpenPgpError(
            f"the key {key.fingerprint} ({', '.join(key.user_ids) or 'no user id'}) in {path} "
            f"expired on {key.expires:%Y-%m-%d}; ask the client for a current public key"
        )
    return key


@lru_cache(maxsize=256)
def _scanned(path: str, _mtime_ns: int, _size: int) -> RecipientKey:
    """gpg's reading of a key file, once per version of the file (the clients file is loaded by
    every run's process)."""
    with private_gnupg_home() as gpg:
        keys = gpg.scan_keys(path)
    if not keys:
        raise OpenPgpError(
            f"{path} holds no OpenPGP public key gpg can read; export it with "
            "`gpg --armor --export <the client's key id>`"
        )
    if len(keys) > 1:
        prints = ", ".join(k["fingerprint"] for k in keys)
        raise OpenPgpError(
            f"{path} holds {len(keys)} keys ({prints}); give one file per client with its one key"
        )
    found = keys[0]
    fingerprint = found["fingerprint"]
    user_ids = tuple(found.get("uids") or ())
    expires = (
        dt.datetime.fromtimestamp(int(found["expires"]), dt.UTC) if found.get("expires") else None
    )
    named = f"the key {fingerprint} ({', '.join(user_ids) or 'no user id'}) in {path}"
    validity = found.get("trust", "")
    if validity == "r":
        raise OpenPgpError(f"{named} is revoked; ask the client for a current public key")
    if validity == "e":
        when = f" on {expires:%Y-%m-%d}" if expires else ""
        raise OpenPgpError(f"{named} expired{when}; ask the client for a current public key")
    # gpg's capability field: lowercase letters for the primary key itself, uppercase for the
    # key as a whole, counting only subkeys that are not expired or revoked; "E" = can encrypt.
    if "E" not in found.get("cap", ""):
        raise OpenPgpError(
            f"{named} cannot encrypt (capabilities {found.get('cap') or 'none'}: a signing-only "
            "key, or its encryption subkeys are expired or revoked); ask the client for a key "
            "with an encryption subkey"
        )
    return RecipientKey(fingerprint=fingerprint, user_ids=user_ids, expires=expires)


def encrypt_file(plain: Path, output: Path, key_path: Path, *, compress: bool = True) -> str:
    """Encrypt `plain` to the public key in `key_path` into `output` (binary OpenPGP, not armored);
    returns the key's fingerprint. `compress=False` for data that is already compressed (gzip):
    compressing it again only costs time."""
    key = inspect_public_key(key_path)
    with private_gnupg_home() as gpg:
        imported = gpg.import_keys_file(str(key_path))
        if key.fingerprint not in (imported.fingerprints or []):
            raise OpenPgpError(f"gpg could not import the key in {key_path}: {imported.stderr}")
        extra = ["--compress-algo", "none"] if not compress else []
        result = gpg.encrypt_file(
            str(plain),
            key.fingerprint,
            always_trust=True,
            armor=False,
            output=str(output),
            extra_args=extra,
        )
    if not result.ok:
        output.unlink(missing_ok=True)
        raise OpenPgpError(
            f"gpg could not encrypt {plain} to the key {key.fingerprint} in {key_path}: "
            f"{result.status}; {result.stderr.strip().splitlines()[-1:] or ''}"
        )
    return key.fingerprint
