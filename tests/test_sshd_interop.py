"""Delivery and retention against OpenSSH's own sshd (chrooted internal-sftp, key only), the
server most clients run, as well as against the local asyncssh server the other tests use."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestration.delivery import ledger
from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.retention import RetentionReport, prune_remote
from orchestration.delivery.sftp import (
    POSIX_RENAME,
    DeliveryError,
    HostKeyMismatch,
    SftpTarget,
    deliver_file,
    open_sftp,
)
from orchestration.delivery.temporary_names import temporary_name
from tests.e2e_support import csv_file_of_size, delivery_to, names_in
from tests.sshd_support import OpenSshServer, skip_reason, start_sshd

_SKIP_REASON = skip_reason()
pytestmark = [
    pytest.mark.sshd,
    pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or ""),
]

_folder_numbers = itertools.count(1)
TODAY = dt.date(2026, 12, 26)  # 28 days earlier is 2026-11-28: kept; 2026-11-27 and older go.


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sshd-keys")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[OpenSshServer]:
    client_key = generate_key_pair(keys / "client", comment="ods-sshd-test-client")
    started = time.monotonic()
    server = start_sshd(client_key, tmp_path_factory.mktemp("sshd-log"))
    print(f"sshd listening on port {server.port} after {time.monotonic() - started:.2f} s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def folder(sshd: OpenSshServer) -> Path:
    """A fresh folder owned by the SFTP user, `/upload/outN` inside its chroot."""
    return sshd.user_folder(f"out{next(_folder_numbers)}")


@pytest.fixture
def target(sshd: OpenSshServer, keys: Path, folder: Path) -> SftpTarget:
    return SftpTarget(
        client_id="acme",
        host=sshd.host,
        port=sshd.port,
        username=sshd.username,
        directory=f"/upload/{folder.name}",
        host_key=sshd.host_key_line,
        private_key=(keys / "client").read_text(),
    )


def test_openssh_receives_the_exact_bytes_as_the_sftp_user_and_no_temporary_file(
    sshd: OpenSshServer, target: SftpTarget, folder: Path, tmp_path: Path
) -> None:
    local = csv_file_of_size(tmp_path / "Completion20261128.csv", 300_000, b"a")

    receipt = deliver_file(target, local, "Completion20261128.csv")

    arrived = folder / "Completion20261128.csv"
    assert arrived.read_bytes() == local.read_bytes(), sshd.log()
    assert arrived.stat().st_uid == sshd.uid
    assert names_in(folder) == ["Completion20261128.csv"]
    assert receipt.remote_path == f"/upload/{folder.name}/Completion20261128.csv"
    assert receipt.bytes == 300_000


def test_redelivery_to_openssh_replaces_the_file_atomically(
    target: SftpTarget, folder: Path, tmp_path: Path
) -> None:
    first = csv_file_of_size(tmp_path / "first.csv", 50_000, b"a")
    second = csv_file_of_size(tmp_path / "second.csv", 40_000, b"b")

    with open_sftp(target) as session:
        session.deliver(first, "Completion20261128.csv")
        session.deliver(second, "Completion20261128.csv")
        extensions = session.sftp_client().server_extensions  # type: ignore[attr-defined]

    assert POSIX_RENAME in extensions
    assert (folder / "Completion20261128.csv").read_bytes() == second.read_bytes()
    assert names_in(folder) == ["Completion20261128.csv"]


def test_openssh_with_another_host_key_than_the_pinned_one_is_refused(
    target: SftpTarget, folder: Path, tmp_path: Path
) -> None:
    local = csv_file_of_size(tmp_path / "Completion20261128.csv", 1_000, b"a")
    other_key = generate_key_pair(tmp_path / "not-the-host", comment="impostor")

    with pytest.raises(HostKeyMismatch, match="nothing was sent"):
        deliver_file(replace(target, host_key=other_key), local, "Completion20261128.csv")

    assert names_in(folder) == []


def test_openssh_refuses_a_key_not_authorized_for_the_user(
    target: SftpTarget, folder: Path, tmp_path: Path
) -> None:
    local = csv_file_of_size(tmp_path / "Completion20261128.csv", 1_000, b"a")
    generate_key_pair(tmp_path / "stranger", comment="stranger")
    stranger = replace(target, private_key=(tmp_path / "stranger").read_text())

    with pytest.raises(DeliveryError, match="refused the login"):
        deliver_file(stranger, local, "Completion20261128.csv")

    assert names_in(folder) == []


def _record(archive: Path, target: SftpTarget, name: str, size: int) -> None:
    ledger.record(archive, delivery_to(target, name, size, feed="completion"))


def test_retention_over_openssh_removes_only_our_expired_feed_files_after_delivery(
    target: SftpTarget, folder: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    # Written by root here; the SFTP user may still remove them because it owns the folder.
    for name in ["Completion20261101.csv", "Completion20261128.csv", "Quiz20261001.csv", "x.txt"]:
        (folder / name).write_text(name)
    for name in ["Completion20261101.csv", "Completion20261128.csv"]:  # delivered by us earlier
        _record(archive, target, name, (folder / name).stat().st_size)
    (folder / "Completion20261102.csv").write_text("the client's own")  # never delivered by us
    stale = temporary_name("Completion20261120.csv")  # an upload of ours that crashed
    (folder / stale).write_text("partial")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(folder / stale, (two_days_ago, two_days_ago))
    local = csv_file_of_size(tmp_path / "Completion20261226.csv", 1_000, b"a")

    with open_sftp(target) as session:
        receipt = session.deliver(local, "Completion20261226.csv")
        _record(archive, target, "Completion20261226.csv", receipt.bytes)
        delivered = ledger.delivered_sizes(
            archive,
            "acme",
            host=target.host,
            port=target.port,
            username=target.username,
            directory=target.directory + "/",
        )
        dry = prune_remote(
            session, target.directory, ["Completion"], TODAY, 28, dry_run=True, delivered=delivered
        )
        report = prune_remote(
            session, target.directory, ["Completion"], TODAY, 28, delivered=delivered
        )

    expected = RetentionReport(
        deleted=["Completion20261101.csv"],
        kept=2,
        dry_run=False,
        foreign=["Completion20261102.csv"],
        temporaries_removed=[stale],
    )
    assert dry == replace(expected, dry_run=True)
    assert report == expected
    assert names_in(folder) == [
        "Completion20261102.csv",
        "Completion20261128.csv",
        "Completion20261226.csv",
        "Quiz20261001.csv",
        "x.txt",
    ]
