"""SSH key material: key pairs for SFTP logins and host keys, and the pinned keys of servers.

Keys are ed25519: short public lines that fit in a YAML value, fast to generate (~0.1 ms) and
accepted by every OpenSSH since 6.5 (2014). Private keys are written in OpenSSH's own format so
that `ssh`, `sftp`, paramiko and asyncssh all read them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# The host key types a client may pin: the ones paramiko verifies a server by (its Ed25519Key,
# ECDSAKey for the three NIST curves, RSAKey). The one list: the clients file is validated
# against it (orchestration/clients/config.py) and delivery parses pinned keys with it.
PINNABLE_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
    }
)


def generate_key_pair(private_path: Path, comment: str) -> str:
    """Write an ed25519 key pair (`private_path` 0600, `<private_path>.pub`); return the public key.

    Idempotent: an existing private key is kept, because its public half may already be authorized
    on a client's server; only a missing `.pub` is rewritten from it.
    """
    if private_path.exists():
        private_key = _read_private_key(private_path)
    else:
        private_key = Ed25519PrivateKey.generate()
        _write_private_key(private_path, private_key)
    public_line = f"{_public_key_text(private_key)} {comment}".rstrip()
    public_path = private_path.with_name(private_path.name + ".pub")
    if not public_path.exists() or _key_part(public_path.read_text()) != _key_part(public_line):
        public_path.write_text(public_line + "\n")
    return public_line


def _read_private_key(private_path: Path) -> Ed25519PrivateKey:
    private_key = serialization.load_ssh_private_key(private_path.read_bytes(), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ValueError(f"{private_path} holds a {type(private_key).__name__}, expected ed25519")
    return private_key


def _write_private_key(private_path: Path, private_key: Ed25519PrivateKey) -> None:
    """Create the file 0600 from the start, so the secret is never readable by others at all."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as private_file:
        private_file.write(pem)


def _public_key_text(private_key: Ed25519PrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )


def _key_part(public_line: str) -> str:
    return " ".join(public_line.split()[:2])


def parse_public_key_line(public_line: str) -> tuple[str, bytes]:
    """Split `"ssh-ed25519 AAAA... comment"` into key type and key blob; ValueError if malformed."""
    fields = public_line.split()
    if len(fields) < 2 or fields[0] not in PINNABLE_KEY_TYPES:
        allowed = ", ".join(sorted(PINNABLE_KEY_TYPES))
        raise ValueError(f"expected '<type> <base64 key>' with type one of {allowed}")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except binascii.Error as error:
        raise ValueError(f"the key after {fields[0]} is not valid base64") from error
    return fields[0], blob


def fingerprint(key_blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint (`ssh-keygen -lf`): what administrators compare by eye."""
    digest = base64.b64encode(hashlib.sha256(key_blob).digest()).decode("ascii")
    return f"SHA256:{digest.rstrip('=')}"
