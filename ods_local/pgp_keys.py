"""The local demo's OpenPGP key pairs: for a client whose `encrypt.public_key` lies under
`<ODS_HOME>/pgp/`, a key pair made on this machine at set-up, as its SSH keys are
(`services.provision_sftp`). Never committed: `.ods/` is the local home.

The secret halves stay in `<ODS_HOME>/pgp/gnupg`, a GnuPG home of the demo's own (never the
user's ~/.gnupg), standing in for the client's keyring, so that what the demo delivered can be
decrypted and checked:

    gpg --homedir .ods/pgp/gnupg --decrypt .ods/sftp/root/initech/Completion20261128.csv.gz.pgp | gunzip

A key file that exists and can be encrypted to is kept; one that cannot (expired after a year,
say) is replaced. Paths outside `<ODS_HOME>/pgp/` are never written: a real client's key is
the client's to give.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

from orchestration.clients import ClientsConfig
from orchestration.export.openpgp import OpenPgpError, gpg_binary, inspect_public_key

# The demo's keys live a year; an expired one is made again at the next set-up.
DEMO_KEY_LIFETIME = "1y"


def pgp_folder(home: Path) -> Path:
    return home / "pgp"


def demo_keyring(home: Path) -> Path:
    """The GnuPG home holding the demo clients' secret keys (the clients' side of the demo)."""
    return pgp_folder(home) / "gnupg"


def provision_demo_pgp_keys(config: ClientsConfig, home: Path) -> list[Path]:
    """Make the key pair of every client whose public key file should lie under
    `<home>/pgp/` and is missing or unusable; returns the public key files written."""
    folder = pgp_folder(home).resolve()
    written = []
    for client_id, client in sorted(config.clients.items()):
        if client.encrypt is None:
            continue
        path = client.encrypt.public_key.resolve()
        if not path.is_relative_to(folder):
            continue
        try:
            inspect_public_key(path)
            continue
        except OpenPgpError:
            pass
        _make_key_pair(client_id, path, demo_keyring(home))
        written.append(path)
    return written


def _make_key_pair(client_id: str, public_key: Path, keyring: Path) -> None:
    keyring.mkdir(parents=True, exist_ok=True, mode=0o700)
    keyring.chmod(0o700)
    uid = f"{client_id} demo loader <{client_id}@demo.invalid>"
    gpg = [gpg_binary(), "--homedir", str(keyring), "--batch", "--yes", "--passphrase", ""]
    try:
        _run([*gpg, "--quick-gen-key", uid, "ed25519", "cert", DEMO_KEY_LIFETIME])
        listing = _run([*gpg, "--with-colons", "--list-keys", f"<{client_id}@demo.invalid>"])
        # The newest primary key of that user id (listed last): the one just made; an expired
        # one made a year ago may precede it. A primary key's fingerprint follows its pub line.
        records = [line.split(":") for line in listing.splitlines()]
        primary = [
            fpr[9]
            for pub, fpr in itertools.pairwise(records)
            if pub[0] == "pub" and fpr[0] == "fpr"
        ][-1]
        _run([*gpg, "--quick-add-key", primary, "cv25519", "encr", DEMO_KEY_LIFETIME])
        exported = _run([*gpg, "--armor", "--export", primary])
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(keyring), "--kill", "all"],
            check=False,
            capture_output=True,
        )
    public_key.parent.mkdir(parents=True, exist_ok=True)
    public_key.write_text(exported)


def _run(command: list[str]) -> str:
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise OpenPgpError(
            f"gpg failed making the demo's key pair ({' '.join(command[4:6])}): "
            f"{done.stderr.strip()}"
        )
    return done.stdout
