"""Per-client gzip and OpenPGP: what lands in the folder decrypts (gpg command line) and
decompresses (gunzip) to the archived CSV byte for byte; a re-send and a rebuild of the same data
send the very same bytes; the archive keeps the CSV and the sha256 of both; an expired, a
signing-only, a missing or a non-key file is refused when the clients file loads; and wrapping a
large file keeps memory flat.

The client's key pairs are generated here, in a GNUPGHOME of the test's own (never ~/.gnupg),
with gpg itself: one that can encrypt (ed25519 + cv25519 subkey), one that expired (made with a
faked clock in 2020), one that can only sign. Nothing about them is committed.
"""

from __future__ import annotations

import subprocess
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ods_local.pgp_keys import demo_keyring, provision_demo_pgp_keys
from orchestration.clients import ConfigError, load_clients
from orchestration.export import archive
from orchestration.export.envelope import Envelope, seal
from orchestration.export.openpgp import inspect_public_key
from tests.e2e_support import parse_csv
from tests.expected_feeds import DEFAULT_HEADERS
from tests.files_step_support import (
    DAY,
    ROWS,
    delivery_metadata,
    failure_message,
    files_asset,
    run_files,
    sha256,
)

CSV_NAME = "Completion20261128.csv"
RESEND = {"ods/started_by": "ods resend"}


def _gpg(home: Path, *args: str, faked_time: str | None = None) -> str:
    command = ["gpg", "--homedir", str(home), "--batch", "--yes", "--passphrase", ""]
    if faked_time:
        command += ["--faked-system-time", faked_time]
    done = subprocess.run([*command, *args], check=True, capture_output=True, text=True)
    return done.stdout


def _fingerprint(home: Path, uid: str) -> str:
    listing = _gpg(home, "--with-colons", "--list-keys", uid)
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three public key files, and the GNUPGHOME holding the good key's secret (to decrypt)."""
    folder = tmp_path_factory.mktemp("openpgp")
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    _gpg(home, "--quick-gen-key", "Acme Loader <loader@acme.example>", "ed25519", "cert", "1y")
    good = _fingerprint(home, "loader@acme.example")
    _gpg(home, "--quick-add-key", good, "cv25519", "encr", "1y")
    old = "20200101T000000"
    _gpg(home, "--quick-gen-key", "Old <old@acme.example>", "ed25519", "cert", "2d", faked_time=old)
    expired = _fingerprint(home, "old@acme.example")
    _gpg(home, "--quick-add-key", expired, "cv25519", "encr", "2d", faked_time=old)
    _gpg(home, "--quick-gen-key", "Signer <signer@acme.example>", "ed25519", "sign", "1y")
    files = {}
    for name, uid in [
        ("good", "loader@acme.example"),
        ("expired", "old@acme.example"),
        ("sign_only", "signer@acme.example"),
    ]:
        files[name] = folder / f"{name}.asc"
        files[name].write_text(_gpg(home, "--armor", "--export", uid))
    try:
        yield {"home": home, "good_fingerprint": good, **files}
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def _decrypt(home: Path, data: bytes) -> bytes:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--quiet", "--decrypt"],
        input=data,
        check=True,
        capture_output=True,
    )
    return done.stdout


def _gunzip(data: bytes) -> bytes:
    done = subprocess.run(["gunzip", "-c"], input=data, check=True, capture_output=True)
    return done.stdout


@pytest.fixture
def site(acme_files_site: dict[str, Any]) -> dict[str, Any]:
    """acme's files site; each test writes the clients file it tests (`site["clients"](...)`)."""
    return acme_files_site


def _archived(site: dict[str, Any]) -> archive.ArchivedFile:
    made = archive.read(archive.feed_folder(site["archive"], "acme", "completion") / CSV_NAME)
    assert made is not None
    return made


def _expected_csv_rows() -> list[list[str]]:
    rows = [DEFAULT_HEADERS["completion"]]
    for _, username, idnumber, email, first, last, _, _, course in ROWS[DAY]:
        rows.append([username, idnumber, first, last, email, course, DAY.isoformat()])
    return rows


def test_a_gzip_and_pgp_client_gets_a_file_that_decrypts_and_unzips_to_the_archived_csv(site, keys):
    clients_file = site["clients"](compress="gzip", encrypt={"public_key": str(keys["good"])})
    files = files_asset(clients_file)
    result = run_files(files, site["archive"], DAY)
    assert result.success, failure_message(result)
    sent_name = CSV_NAME + ".gz.pgp"
    assert sorted(p.name for p in site["folder"].iterdir()) == [sent_name]
    sent = (site["folder"] / sent_name).read_bytes()
    made = _archived(site)
    plain = made.path.read_bytes()
    assert _gunzip(_decrypt(keys["home"], sent)) == plain
    assert parse_csv(plain) == _expected_csv_rows()
    # The archive keeps the CSV and the bytes sent, with the sha256 of both.
    assert made.sha256 == sha256(plain) and made.bytes == len(plain)
    assert made.sent_sha256 == sha256(sent) and made.sent_bytes == len(sent)
    assert made.sent_path.read_bytes() == sent
    assert made.encryption == {"openpgp_fingerprint": keys["good_fingerprint"]}
    metadata = delivery_metadata(result, "completion")
    assert (metadata["sha256"], metadata["bytes"]) == (sha256(sent), len(sent))
    assert metadata["remote_path"] == f"/outbound/{sent_name}"
    assert metadata["csv_sha256"] == sha256(plain)
    assert metadata["openpgp_fingerprint"] == keys["good_fingerprint"]
    (file_event,) = [
        m
        for m in result.asset_materializations_for_node("client_files")
        if m.asset_key.path[-1] == "completion_file"
    ]
    assert file_event.metadata["sent_file_name"].value == sent_name
    assert file_event.metadata["sent_sha256"].value == sha256(sent)
    assert file_event.metadata["sha256"].value == sha256(plain)

    # A re-send sends the archived bytes again, not a new encryption of the CSV.
    inode = (site["folder"] / sent_name).stat().st_ino
    resent = run_files(files, site["archive"], DAY, deliver_only=True, tags=RESEND)
    assert resent.success, failure_message(resent)
    assert (site["folder"] / sent_name).stat().st_ino != inode
    assert (site["folder"] / sent_name).read_bytes() == sent
    # A rebuild that makes the same CSV keeps the archived envelope: the same bytes again.
    rebuilt = run_files(files, site["archive"], DAY, tags=RESEND)
    assert rebuilt.success, failure_message(rebuilt)
    assert (site["folder"] / sent_name).read_bytes() == sent
    assert not (made.path.parent / "history").exists()


def test_a_gzip_client_gets_a_csv_gz_that_gunzip_restores_and_a_rebuild_repeats(site):
    files = files_asset(site["clients"](compress="gzip"))
    assert run_files(files, site["archive"], DAY).success
    sent_name = CSV_NAME + ".gz"
    assert sorted(p.name for p in site["folder"].iterdir()) == [sent_name]
    sent = (site["folder"] / sent_name).read_bytes()
    assert _gunzip(sent) == _archived(site).path.read_bytes()
    (site["archive"] / "acme" / "completion" / sent_name).unlink()  # made anew: same bytes
    assert run_files(files, site["archive"], DAY, tags=RESEND).success
    assert (site["folder"] / sent_name).read_bytes() == sent


def test_a_pgp_client_gets_a_csv_pgp_that_decrypts_to_the_archived_csv(site, keys):
    files = files_asset(site["clients"](encrypt={"public_key": str(keys["good"])}))
    result = run_files(files, site["archive"], DAY)
    assert result.success, failure_message(result)
    sent = (site["folder"] / (CSV_NAME + ".pgp")).read_bytes()
    assert _decrypt(keys["home"], sent) == _archived(site).path.read_bytes()
    assert sorted(p.name for p in site["folder"].iterdir()) == [CSV_NAME + ".pgp"]


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("expired", "expired on 2020-01-03"),
        ("sign_only", "cannot encrypt"),
        ("missing", "does not exist"),
        ("not_a_key", "holds no OpenPGP public key"),
    ],
)
def test_a_key_that_cannot_be_encrypted_to_is_refused_at_load(site, keys, tmp_path, key, what):
    path = keys.get(key) or tmp_path / f"{key}.asc"
    if key == "not_a_key":
        path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOM0Ckey\n")
    clients_file = site["clients"](encrypt={"public_key": str(path)})
    with pytest.raises(ConfigError) as refused:
        load_clients(clients_file)
    message = str(refused.value)
    assert "client 'acme': encrypt.public_key:" in message
    assert str(path) in message
    assert what in message
    # Without files required (`ods up` before it makes the demo's key), it loads.
    assert load_clients(clients_file, require_files=False).clients["acme"].encrypt is not None


def test_an_unknown_compression_is_refused_naming_what_is_allowed(site):
    with pytest.raises(ConfigError, match=r"client 'acme': compress: Input should be 'gzip'"):
        load_clients(site["clients"](compress="zip"))


def test_wrapping_a_large_file_keeps_memory_flat(keys, tmp_path):
    """64 MiB of CSV through gzip and gpg: the Python side never holds more than a few MiB."""
    plain = tmp_path / CSV_NAME
    row = b'"someone","E1","Some","One","someone@example.org","Fire Safety","2026-11-27"\r\n'
    with plain.open("wb") as out:
        for _ in range(64 * 1024 * 1024 // (len(row) * 1024)):
            out.write(row * 1024)
    size = plain.stat().st_size
    tracemalloc.start()
    try:
        sealed = seal(
            plain,
            CSV_NAME,
            "0" * 64,
            Envelope(compression="gzip", public_key=keys["good"]),
            tmp_path / "sealed.part",
            None,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 60 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte file"
    assert sealed.file_name == CSV_NAME + ".gz.pgp"
    restored = _gunzip(_decrypt(keys["home"], sealed.path.read_bytes()))
    assert len(restored) == size and restored == plain.read_bytes()


def test_a_public_key_path_is_relative_to_the_clients_files_folder(site, keys, tmp_path):
    clients_file = site["clients"](encrypt={"public_key": "keys/client.asc"})
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "client.asc").write_bytes(keys["good"].read_bytes())
    loaded = load_clients(clients_file).clients["acme"]
    assert loaded.encrypt is not None
    assert loaded.encrypt.public_key == (tmp_path / "keys" / "client.asc").resolve()
    assert yaml.safe_load(clients_file.read_text())["clients"]["acme"]["encrypt"] == {
        "public_key": "keys/client.asc"
    }


def test_the_demo_makes_its_clients_key_pair_under_its_home_once_and_never_elsewhere(
    site, keys, tmp_path
):
    home = tmp_path / "ods"
    demo_key = home / "pgp" / "initech.asc"
    outside = tmp_path / "elsewhere.asc"
    clients_file = site["clients"](compress="gzip", encrypt={"public_key": str(demo_key)})
    config = load_clients(clients_file, require_files=False)
    assert provision_demo_pgp_keys(config, home) == [demo_key.resolve()]
    first = demo_key.read_bytes()
    assert inspect_public_key(demo_key).fingerprint  # usable: loads with files required
    assert load_clients(clients_file).clients["acme"].encrypt is not None
    assert provision_demo_pgp_keys(config, home) == []  # kept
    assert demo_key.read_bytes() == first
    demo_key.write_bytes(keys["expired"].read_bytes())  # a year later: made anew
    assert provision_demo_pgp_keys(config, home) == [demo_key.resolve()]
    assert demo_key.read_bytes() != keys["expired"].read_bytes()
    # The secret half is in the demo's own keyring: what the demo sends opens with it.
    plain = tmp_path / CSV_NAME
    plain.write_bytes(b'"A"\r\n"1"\r\n')
    sealed = seal(
        plain,
        CSV_NAME,
        sha256(plain.read_bytes()),
        Envelope("gzip", demo_key),
        tmp_path / "s",
        None,
    )
    assert _gunzip(_decrypt(demo_keyring(home), sealed.path.read_bytes())) == plain.read_bytes()
    subprocess.run(["gpgconf", "--homedir", str(demo_keyring(home)), "--kill", "all"], check=False)
    other = load_clients(site["clients"](encrypt={"public_key": str(outside)}), require_files=False)
    assert provision_demo_pgp_keys(other, home) == []
    assert not outside.exists()
