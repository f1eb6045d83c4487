"""Delivery over real SFTP: paramiko against the local asyncssh server on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncssh
import pytest

from ods_local.sftp_server import LocalSftpServer, SftpFaults, SftpServerError
from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.sftp import (
    DeliveryError,
    HostKeyMismatch,
    SftpTarget,
    deliver_file,
    open_sftp,
)
from tests.e2e_support import csv_file_of_size, names_in, target_on

_folder_numbers = itertools.count(1)


@dataclass(frozen=True)
class Login:
    username: str
    public_key: str
    private_key: str


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


def _login(keys_dir: Path, username: str) -> Login:
    private_path = keys_dir / username
    public_key = generate_key_pair(private_path, comment=f"{username}@test")
    return Login(username, public_key, private_path.read_text())


@pytest.fixture(scope="module")
def alice(keys_dir: Path) -> Login:
    return _login(keys_dir, "alice")


@pytest.fixture(scope="module")
def bob(keys_dir: Path) -> Login:
    return _login(keys_dir, "bob")


@pytest.fixture(scope="module")
def sftp_server(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path, alice: Login, bob: Login
) -> Iterator[LocalSftpServer]:
    server = LocalSftpServer(tmp_path_factory.mktemp("sftp"), host_key_path=keys_dir / "host")
    server.add_user("alice", authorized_key=alice.public_key)
    server.add_user("bob", authorized_key=bob.public_key)
    with server:
        yield server


@pytest.fixture
def server(sftp_server: LocalSftpServer) -> Iterator[LocalSftpServer]:
    """The module's server, with its fault injection reset after each test."""
    yield sftp_server
    sftp_server.faults = SftpFaults()


@pytest.fixture
def outbound(server: LocalSftpServer) -> Path:
    """A fresh, empty folder in alice's chroot for this test."""
    folder = server.root / "alice" / f"outbound{next(_folder_numbers)}"
    folder.mkdir()
    return folder


def _target(server: LocalSftpServer, login: Login, outbound: Path, **changes: object) -> SftpTarget:
    target = target_on(server, login.username, f"/{outbound.name}", private_key=login.private_key)
    return replace(target, **changes)  # type: ignore[arg-type]


def test_delivery_lands_the_exact_bytes_and_leaves_no_temporary_file(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    local = csv_file_of_size(tmp_path / "SCORM20261128.csv", 300_000)

    receipt = deliver_file(_target(server, alice, outbound), local, "SCORM20261128.csv")

    assert (outbound / "SCORM20261128.csv").read_bytes() == local.read_bytes()
    assert names_in(outbound) == ["SCORM20261128.csv"]
    assert receipt.remote_path == f"/{outbound.name}/SCORM20261128.csv"
    assert receipt.bytes == 300_000


def test_one_session_delivers_several_files(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    names = ["SCORM20261128.csv", "F2F20261128.csv", "Quiz20261128.csv"]
    files = [csv_file_of_size(tmp_path / name, 1_000 + 7 * i) for i, name in enumerate(names)]

    with open_sftp(_target(server, alice, outbound)) as delivery:
        for local in files:
            delivery.deliver(local, local.name)

    assert names_in(outbound) == sorted(names)
    assert all((outbound / f.name).read_bytes() == f.read_bytes() for f in files)


def test_rerun_keeps_the_old_file_whole_until_the_new_one_replaces_it(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    (tmp_path / "old").mkdir()
    old = csv_file_of_size(tmp_path / "old" / "Quiz20261128.csv", 2_000_000, fill=b"o")
    new = csv_file_of_size(tmp_path / "Quiz20261128.csv", 3_000_000, fill=b"n")
    target = _target(server, alice, outbound)
    deliver_file(target, old, "Quiz20261128.csv")
    seen: list[bytes] = []
    delivered = threading.Event()

    def watch_final_file() -> None:
        while not delivered.is_set():
            try:
                seen.append((outbound / "Quiz20261128.csv").read_bytes())
            except FileNotFoundError:
                seen.append(b"<absent>")

    watcher = threading.Thread(target=watch_final_file)
    watcher.start()
    try:
        deliver_file(target, new, "Quiz20261128.csv")
    finally:
        delivered.set()
        watcher.join()

    assert (outbound / "Quiz20261128.csv").read_bytes() == new.read_bytes()
    assert seen, "the watcher never read the final file"
    assert all(content in (old.read_bytes(), new.read_bytes()) for content in seen)
    assert names_in(outbound) == ["Quiz20261128.csv"]


def test_server_presenting_another_host_key_is_refused_and_nothing_is_uploaded(
    server: LocalSftpServer, alice: Login, outbound: Path, keys_dir: Path, tmp_path: Path
) -> None:
    pinned = generate_key_pair(keys_dir / "some_other_host", comment="other")
    target = _target(server, alice, outbound, host_key=pinned)

    with pytest.raises(HostKeyMismatch) as refused:
        deliver_file(target, csv_file_of_size(tmp_path / "F2F20261128.csv", 500), "F2F20261128.csv")

    expected = asyncssh.import_public_key(pinned).get_fingerprint("sha256")
    presented = asyncssh.import_public_key(server.host_key_line()).get_fingerprint("sha256")
    message = str(refused.value)
    assert expected in message
    assert presented in message
    assert "acme" in message and "F2F20261128.csv" in message
    assert f"127.0.0.1:{server.port}" in message
    assert not refused.value.retryable
    assert names_in(outbound) == []


def test_delivery_succeeds_when_the_server_moves_files_away_on_arrival(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    pickup = tmp_path / "pickup"
    pickup.mkdir()
    server.faults.collect_arrivals_in = pickup
    local = csv_file_of_size(tmp_path / "Completion20261128.csv", 10_000)

    receipt = deliver_file(_target(server, alice, outbound), local, local.name)

    assert (pickup / local.name).read_bytes() == local.read_bytes()
    assert names_in(outbound) == []
    assert receipt.bytes == 10_000


def test_a_client_key_the_server_does_not_know_is_refused(
    server: LocalSftpServer, alice: Login, outbound: Path, keys_dir: Path, tmp_path: Path
) -> None:
    stranger = _login(keys_dir, "stranger")
    target = _target(server, alice, outbound, private_key=stranger.private_key)

    with pytest.raises(DeliveryError, match="refused the login of alice") as refused:
        deliver_file(
            target, csv_file_of_size(tmp_path / "Quiz20261128.csv", 500), "Quiz20261128.csv"
        )

    assert not isinstance(refused.value, HostKeyMismatch)
    assert not refused.value.retryable
    assert names_in(outbound) == []


def test_bob_cannot_log_in_with_alices_key(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    target = _target(server, alice, outbound, username="bob")

    with pytest.raises(DeliveryError, match="refused the login of bob"):
        deliver_file(
            target, csv_file_of_size(tmp_path / "Quiz20261128.csv", 500), "Quiz20261128.csv"
        )

    assert list((server.root / "bob").iterdir()) == []


def test_a_password_account_logs_in_with_its_password_only(
    server: LocalSftpServer, tmp_path: Path
) -> None:
    folder = server.add_user("carol", password="correct horse")
    (folder / "in").mkdir()
    local = csv_file_of_size(tmp_path / "Completion20261128.csv", 700)
    target = target_on(server, "carol", "/in", client_id="initech", password="correct horse")

    deliver_file(target, local, local.name)
    with pytest.raises(DeliveryError, match="refused the login of carol") as refused:
        deliver_file(replace(target, password="wrong horse"), local, local.name)

    assert (folder / "in" / local.name).read_bytes() == local.read_bytes()
    assert "horse" not in str(refused.value) and "horse" not in repr(target)


def test_missing_remote_folder_names_the_client_the_file_and_the_server(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    target = _target(server, alice, outbound, directory="/no_such_folder")

    with pytest.raises(DeliveryError) as failed:
        deliver_file(
            target, csv_file_of_size(tmp_path / "SCORM20261128.csv", 500), "SCORM20261128.csv"
        )

    message = str(failed.value)
    assert "client acme" in message
    assert "SCORM20261128.csv" in message
    assert f"127.0.0.1:{server.port}" in message
    assert "/no_such_folder does not exist" in message
    assert alice.private_key not in message


def test_connection_dropped_mid_upload_leaves_no_final_file_and_the_next_attempt_succeeds(
    server: LocalSftpServer, alice: Login, outbound: Path, tmp_path: Path
) -> None:
    local = csv_file_of_size(tmp_path / "Quiz20261128.csv", 1_000_000)
    target = _target(server, alice, outbound)
    server.faults.drop_after_bytes = 200_000

    with open_sftp(target) as delivery:
        with pytest.raises(DeliveryError, match="connection was lost") as dropped:
            delivery.deliver(local, "Quiz20261128.csv")
        assert dropped.value.retryable
        assert not (outbound / "Quiz20261128.csv").exists()

        delivery.deliver(local, "Quiz20261128.csv")

    assert (outbound / "Quiz20261128.csv").read_bytes() == local.read_bytes()
    assert names_in(outbound) == ["Quiz20261128.csv"]


@pytest.mark.parametrize(
    ("fault", "size", "said", "not_said", "retryable"),
    [
        pytest.param(
            "disk_full",
            100_000,
            ["holds 0 of the 100000 bytes sent"],
            [],
            True,
            id="disk_full_is_retried_and_removes_the_temporary_file",
        ),
        pytest.param(
            "deny_writes",
            500,
            ["permission denied writing in", "let alice write there"],
            [],
            False,
            id="permission_denied_tells_who_needs_write_access",
        ),
        pytest.param(
            "not_permitted",
            500,
            ["permission denied writing in", "Operation not permitted", "let alice write there"],
            ["free space"],
            False,
            id="operation_not_permitted_is_a_permission_error_that_is_not_retried",
        ),
    ],
)
def test_a_refused_write_fails_the_delivery_says_why_and_leaves_no_file(
    server: LocalSftpServer,
    alice: Login,
    outbound: Path,
    tmp_path: Path,
    fault: str,
    size: int,
    said: list[str],
    not_said: list[str],
    retryable: bool,
) -> None:
    setattr(server.faults, fault, True)

    with pytest.raises(DeliveryError, match=said[0]) as failed:
        deliver_file(
            _target(server, alice, outbound),
            csv_file_of_size(tmp_path / "F2F.csv", size),
            "F2F.csv",
        )

    message = str(failed.value)
    assert [phrase for phrase in said if phrase not in message] == []
    assert [phrase for phrase in not_said if phrase in message] == []
    assert failed.value.retryable == retryable
    assert names_in(outbound) == []


def test_server_down_is_a_retryable_error_and_delivery_works_once_it_is_back(
    tmp_path: Path, alice: Login
) -> None:
    server = LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host")
    outbound = server.add_user("alice", authorized_key=alice.public_key) / "outbound"
    outbound.mkdir()
    local = csv_file_of_size(tmp_path / "SCORM20261128.csv", 5_000)
    with server:
        target = _target(server, alice, outbound)

    with pytest.raises(DeliveryError, match="cannot reach the server") as down:
        deliver_file(target, local, local.name)
    with server:
        deliver_file(target, local, local.name)

    assert down.value.retryable
    assert (outbound / local.name).read_bytes() == local.read_bytes()


def test_a_taken_port_is_reported_with_host_and_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LocalSftpServer(tmp_path, port=port)

        with pytest.raises(SftpServerError, match=f"port {port} on 127.0.0.1 is in use"):
            server.start()


def test_key_pair_is_private_and_kept_across_calls(tmp_path: Path) -> None:
    private_path = tmp_path / "keys" / "acme"

    first = generate_key_pair(private_path, comment="acme@ods")
    second = generate_key_pair(private_path, comment="acme@ods")

    assert first == second
    assert first.startswith("ssh-ed25519 AAAA") and first.endswith(" acme@ods")
    assert stat.S_IMODE(os.stat(private_path).st_mode) == 0o600
    assert (tmp_path / "keys" / "acme.pub").read_text() == first + "\n"
    assert (
        asyncssh.read_private_key(private_path)
        .export_public_key()
        .decode()
        .startswith(first.rsplit(" ", 1)[0])
    )


def test_host_key_is_the_same_after_a_restart(tmp_path: Path) -> None:
    lines = []
    for _ in range(2):
        with LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host") as server:
            lines.append(server.host_key_line())

    assert lines[0] == lines[1]
    assert lines[0].startswith("ssh-ed25519 AAAA")
