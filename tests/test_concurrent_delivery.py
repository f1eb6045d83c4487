"""Two deliveries of the same file at once never expose a broken file under the final name.

Reproduces issue 11's corruption: with one fixed temporary name, a second upload opened (and
truncated) the first one's temporary file, the first renamed it into place, and for seconds the
final name held a full-size file with a zero-filled hole. Here one session is slowed by a
throttling proxy (a slow link, made at the network edge) and starts while the other is mid-way; a
watcher hashes the final name on the server's disk throughout.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from ods_local.sftp_server import LocalSftpServer
from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.sftp import DeliveryError, DeliveryReceipt, open_sftp
from orchestration.delivery.temporary_names import final_name_of
from tests.e2e_support import target_on
from tests.throttling_proxy import ThrottlingProxy

NAME = "SCORM20261128.csv"
SIZE = 100 * 1024 * 1024
# Both sessions go through throttling proxies, so that the second one starts while the first is
# still uploading (unthrottled, 100 MB over loopback took under a second) and falls well behind.
FAST_BYTES_PER_SECOND = 30 * 1024 * 1024
SLOW_BYTES_PER_SECOND = 10 * 1024 * 1024


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_two_deliveries_of_one_file_at_once_never_expose_a_file_that_differs_from_the_archive(
    tmp_path: Path,
) -> None:
    archived = tmp_path / NAME
    archived.write_bytes(os.urandom(SIZE))
    expected = _sha256(archived)
    server = LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host_key")
    key = tmp_path / "acme_key"
    folder = server.add_user("acme", authorized_key=generate_key_pair(key, "acme"))
    final = folder / NAME
    seen: list[str | None] = []
    receipts: dict[str, DeliveryReceipt] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if final.exists():
                seen.append(_sha256(final))

    def deliver(label: str, port: int) -> None:
        target = replace(target_on(server, "acme", "/", private_key=key.read_text()), port=port)
        try:
            with open_sftp(target) as session:
                receipts[label] = session.deliver(archived, NAME, expected_sha256=expected)
        except BaseException as error:
            errors.append(error)

    def temporary_bytes() -> int:
        sizes = [p.stat().st_size for p in folder.iterdir() if final_name_of(p.name) == NAME]
        return max(sizes, default=0)

    with (
        server,
        ThrottlingProxy(server.port, FAST_BYTES_PER_SECOND) as fast_link,
        ThrottlingProxy(server.port, SLOW_BYTES_PER_SECOND) as slow_link,
    ):
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        fast = threading.Thread(target=deliver, args=("fast", fast_link.port))
        slow = threading.Thread(target=deliver, args=("slow", slow_link.port))
        fast.start()
        _wait_for(lambda: temporary_bytes() >= SIZE // 2, "the first upload to be half way")
        slow.start()
        fast.join(120)
        slow.join(120)
        stop.set()
        watcher.join(30)

    assert not errors, errors
    assert {label: r.sha256 for label, r in receipts.items()} == {
        "fast": expected,
        "slow": expected,
    }
    assert seen, "the watcher never saw the final file"
    assert set(seen) == {expected}, f"{sum(s != expected for s in seen)} of {len(seen)} looks bad"
    assert _sha256(final) == expected
    assert sorted(p.name for p in folder.iterdir()) == [NAME], "a temporary file was left"


@pytest.mark.parametrize("damage", ["flip a byte", "drop the last byte"])
def test_a_file_that_changes_between_the_archive_record_and_the_upload_is_never_renamed_into_place(
    tmp_path: Path, damage: str
) -> None:
    archived = tmp_path / NAME
    archived.write_bytes(b'"Username"\r\n"alice"\r\n')
    recorded = _sha256(archived)
    data = bytearray(archived.read_bytes())
    if damage == "flip a byte":
        data[13] ^= 0x01
    else:
        del data[-1]
    archived.write_bytes(bytes(data))
    server = LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host_key")
    key = tmp_path / "acme_key"
    folder = server.add_user("acme", authorized_key=generate_key_pair(key, "acme"))
    with (
        server,  # started before the target below reads its port
        open_sftp(target_on(server, "acme", "/", private_key=key.read_text())) as session,
        pytest.raises(DeliveryError, match="archive records") as refused,
    ):
        session.deliver(archived, NAME, expected_sha256=recorded)

    assert recorded in str(refused.value)
    assert list(folder.iterdir()) == []
