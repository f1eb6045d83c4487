"""Retention: which names are expired (pure), and pruning a client's folder over real SFTP."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.retention import (
    RetentionError,
    RetentionReport,
    expired_files,
    prune_remote,
)
from orchestration.delivery.sftp import HostKeyMismatch, SftpTarget, open_sftp
from orchestration.feeds import FEEDS
from orchestration.local.sftp_server import LocalSftpServer

TODAY = dt.date(2026, 12, 26)
# 28 days before 2026-12-26 is 2026-11-28: that file is kept, 2026-11-27 is the newest removed.
SUBSCRIBED = ("SCORM", "Completion")


def test_file_dated_exactly_retention_days_ago_is_kept_and_a_day_older_is_expired() -> None:
    names = ["SCORM20261128.csv", "SCORM20261127.csv"]

    assert expired_files(names, ["SCORM"], TODAY, 28) == ["SCORM20261127.csv"]


def test_longer_retention_keeps_files_the_minimum_would_remove() -> None:
    names = ["Completion20261127.csv", "Completion20261027.csv", "Completion20261026.csv"]

    # 60 days before 2026-12-26 is 2026-10-27.
    assert expired_files(names, ["Completion"], TODAY, 60) == ["Completion20261026.csv"]


def test_expired_files_come_oldest_first() -> None:
    names = ["SCORM20261001.csv", "Completion20250101.csv", "SCORM20260101.csv"]

    assert expired_files(names, SUBSCRIBED, TODAY, 28) == [
        "Completion20250101.csv",
        "SCORM20260101.csv",
        "SCORM20261001.csv",
    ]


def test_future_dated_and_todays_files_are_never_expired() -> None:
    names = ["SCORM20261226.csv", "SCORM20261227.csv", "SCORM20991231.csv"]

    assert expired_files(names, SUBSCRIBED, TODAY, 28) == []


def test_files_of_feeds_the_client_does_not_take_are_left_alone() -> None:
    names = ["Quiz20200101.csv", "F2F20200101.csv", "SCORM20200101.csv"]

    assert expired_files(names, ["SCORM"], TODAY, 28) == ["SCORM20200101.csv"]


@pytest.mark.parametrize(
    "name",
    [
        ".SCORM20200101.csv.part",
        "SCORM20200101.csv.part",
        "SCORM20200101.csv.bak",
        "scorm20200101.csv",
        "SCORM20200101.CSV",
        "SCORM2020010.csv",
        "SCORM202001011.csv",
        "SCORM20201399.csv",
        "SCORM20230229.csv",
        "SCORM20200101csv",
        "SCORM20200101.csv\n",
        "SCORM20200101.csv ",
        " SCORM20200101.csv",
        "xSCORM20200101.csv",
        "SCORM_20200101.csv",
        "SCORM\uff12\uff10\uff12\uff10\uff10\uff11\uff10\uff11.csv",  # full-width digits
        "archive/SCORM20200101.csv",
        "20200101.csv",
        "readme.txt",
    ],
)
def test_names_that_only_resemble_a_feed_file_are_never_expired(name: str) -> None:
    assert expired_files([name], SUBSCRIBED, TODAY, 28) == []


def test_a_leap_day_is_a_real_date() -> None:
    assert expired_files(["SCORM20240229.csv"], ["SCORM"], TODAY, 28) == ["SCORM20240229.csv"]


def test_a_prefix_is_matched_literally_not_as_a_pattern() -> None:
    assert expired_files(["AxB20200101.csv", "A.B20200101.csv"], ["A.B"], TODAY, 28) == [
        "A.B20200101.csv"
    ]


def test_each_feed_claims_only_its_own_files() -> None:
    for feed, other in itertools.permutations(FEEDS.values(), 2):
        old_file = f"{other.prefix}20200101.csv"
        assert expired_files([old_file], [feed.prefix], TODAY, 28) == [], (feed.name, other.name)
        assert expired_files([old_file], [other.prefix], TODAY, 28) == [old_file]


def test_retention_shorter_than_the_promised_28_days_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 28"):
        expired_files(["SCORM20200101.csv"], ["SCORM"], TODAY, 27)


def test_today_must_be_a_date_not_a_timestamp() -> None:
    with pytest.raises(TypeError, match="must be a date"):
        expired_files([], ["SCORM"], dt.datetime(2026, 12, 26, 5), 28)


def test_an_empty_prefix_is_refused_rather_than_matching_every_dated_csv() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        expired_files(["20200101.csv"], [""], TODAY, 28)


# --- over SFTP, against the local asyncssh server --------------------------------------------

EXPIRED = ["SCORM20261101.csv", "Completion20261127.csv"]
KEPT_FEED_FILES = ["SCORM20261128.csv", "Completion20261225.csv", "SCORM20270115.csv"]
FOREIGN_FILES = [
    "Quiz20261001.csv",  # a feed acme does not take
    "F2F20261001.csv",
    "readme.txt",
    ".SCORM20261001.csv.part",
    "SCORM20261001.csv.bak",
    "scorm20261001.csv",
    "SCORM20261399.csv",
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[LocalSftpServer]:
    server = LocalSftpServer(tmp_path_factory.mktemp("sftp"), host_key_path=keys / "host")
    for user in ("acme", "other"):
        server.add_user(user, authorized_key=generate_key_pair(keys / user, comment=user))
    with server:
        yield server


_folder_numbers = itertools.count(1)


@pytest.fixture
def outbound(server: LocalSftpServer) -> Path:
    """acme's folder for this test, holding old, new, future and foreign files; a folder named
    like an old feed file; and the other client's old feed files in its own chroot."""
    folder = server.root / "acme" / f"outbound{next(_folder_numbers)}"
    folder.mkdir()
    for name in [*EXPIRED, *KEPT_FEED_FILES, *FOREIGN_FILES]:
        (folder / name).write_text(f"{name}\r\n")
    (folder / "SCORM20261002.csv").mkdir()
    (folder / "archive").mkdir()
    (folder / "archive" / "SCORM20261001.csv").write_text("archived\r\n")
    other = server.root / "other" / folder.name
    other.mkdir()
    (other / "SCORM20261101.csv").write_text("the other client's\r\n")
    return folder


@pytest.fixture
def target(server: LocalSftpServer, keys: Path, outbound: Path) -> SftpTarget:
    return SftpTarget(
        client_id="acme",
        host=server.host,
        port=server.port,
        username="acme",
        directory=f"/{outbound.name}",
        host_key=server.host_key_line(),
        private_key=(keys / "acme").read_text(),
    )


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_dry_run_names_the_expired_files_and_removes_nothing(
    outbound: Path, target: SftpTarget
) -> None:
    before = _tree(outbound)

    report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, dry_run=True)

    assert report == RetentionReport(deleted=EXPIRED, kept=3, dry_run=True)
    assert _tree(outbound) == before


def test_prune_removes_only_the_clients_expired_feed_files(
    server: LocalSftpServer, outbound: Path, target: SftpTarget
) -> None:
    before = _tree(outbound)

    report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28)

    assert report == RetentionReport(deleted=EXPIRED, kept=3, dry_run=False)
    assert _tree(outbound) == sorted(set(before) - set(EXPIRED))
    assert (server.root / "other" / outbound.name / "SCORM20261101.csv").exists()
    assert prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28).deleted == []


def test_delivery_and_retention_share_one_connection(
    outbound: Path, target: SftpTarget, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    local = tmp_path / "SCORM20261226.csv"
    local.write_bytes(b'"Username"\r\n"u1"\r\n')
    caplog.set_level(logging.INFO, logger="orchestration.local.sftp_server")

    with open_sftp(target) as session:
        session.deliver(local, "SCORM20261226.csv")
        report = prune_remote(session, target.directory, SUBSCRIBED, TODAY, 28)

    assert report.deleted == EXPIRED
    assert report.kept == 4
    assert (outbound / "SCORM20261226.csv").read_bytes() == local.read_bytes()
    logins = [r for r in caplog.records if "logged in" in r.getMessage()]
    assert len(logins) == 1


def test_a_missing_folder_is_a_clear_error_naming_client_folder_and_server(
    server: LocalSftpServer, target: SftpTarget
) -> None:
    with pytest.raises(RetentionError) as raised:
        prune_remote(target, "/no-such-folder", SUBSCRIBED, TODAY, 28)

    message = str(raised.value)
    assert "client acme" in message
    assert f"acme@127.0.0.1:{server.port}:/no-such-folder" in message
    assert "does not exist" in message
    assert raised.value.retryable is False
    assert raised.value.deleted == []


def test_a_server_with_another_host_key_gets_no_request_to_remove_anything(
    outbound: Path, target: SftpTarget, tmp_path: Path
) -> None:
    impostor = replace(target, host_key=generate_key_pair(tmp_path / "other-host", comment="x"))
    before = _tree(outbound)

    with pytest.raises(HostKeyMismatch):
        prune_remote(impostor, target.directory, SUBSCRIBED, TODAY, 28)

    assert _tree(outbound) == before
