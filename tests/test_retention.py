"""Retention: which names are expired (pure), and pruning a client's folder over real SFTP: only
files the delivery ledger shows we delivered there, at their present size, and only our own stale
temporary files."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from ods_local.sftp_server import LocalSftpServer
from orchestration.delivery import ledger
from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.retention import (
    STALE_TEMPORARY_SECONDS,
    RetentionError,
    RetentionReport,
    expired_files,
    prune_remote,
)
from orchestration.delivery.sftp import HostKeyMismatch, SftpTarget, open_sftp
from orchestration.delivery.temporary_names import temporary_name
from orchestration.feeds import FEEDS
from tests.e2e_support import delivery_to, target_on

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


def test_compressed_and_encrypted_names_and_manifests_are_recognised() -> None:
    names = [
        "SCORM20200101.csv.gz",
        "SCORM20200102.csv.pgp",
        "SCORM20200103.csv.gz.pgp",
        "MANIFEST20200104.json",
        "SCORM20261226.csv.gz.pgp",  # not expired
        "MANIFEST20261226.json",
    ]
    assert expired_files(names, ["SCORM"], TODAY, 28) == names[:4]


@pytest.mark.parametrize(
    "name",
    [
        "SCORM20200101.csv.pgp.gz",
        "SCORM20200101.csv.gz.bak",
        "SCORM20200101.gz",
        "SCORM20200101.pgp",
        "SCORM20200101.csv.gpg",
        "SCORM20200101.csv.gz.gz",
        "SCORM20200101.json",
        "MANIFEST20200101.csv",
        "MANIFEST20200101.json.part",
        "manifest20200101.json",
        "MANIFEST20201399.json",
        "Quiz20200101.csv.gz",  # a feed acme does not take
    ],
)
def test_names_that_only_resemble_a_suffixed_file_or_a_manifest_are_never_expired(
    name: str,
) -> None:
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


_folder_numbers = itertools.count(1)


@pytest.fixture
def outbound(sftp_server: LocalSftpServer) -> Path:
    """acme's folder for this test, holding old, new, future and foreign files; a folder named
    like an old feed file; and the other client's (globex's) old feed files in its own chroot."""
    folder = sftp_server.root / "acme" / f"outbound{next(_folder_numbers)}"
    folder.mkdir()
    for name in [*EXPIRED, *KEPT_FEED_FILES, *FOREIGN_FILES]:
        (folder / name).write_text(f"{name}\r\n")
    (folder / "SCORM20261002.csv").mkdir()
    (folder / "archive").mkdir()
    (folder / "archive" / "SCORM20261001.csv").write_text("archived\r\n")
    other = sftp_server.root / "globex" / folder.name
    other.mkdir()
    (other / "SCORM20261101.csv").write_text("the other client's\r\n")
    return folder


@pytest.fixture
def target(sftp_server: LocalSftpServer, sftp_keys: Path, outbound: Path) -> SftpTarget:
    key = (sftp_keys / "acme").read_text()
    return target_on(sftp_server, "acme", f"/{outbound.name}", private_key=key)


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _record(
    archive: Path, target: SftpTarget, folder: Path, names: Iterable[str], **changes: object
) -> None:
    """Record each named file in `folder` in the ledger as delivered by us to `target`'s folder,
    at the size it has now (or as `changes` say)."""
    for name in names:
        delivery = delivery_to(target, name, (folder / name).stat().st_size)
        ledger.record(archive, replace(delivery, **changes))  # type: ignore[arg-type]


def _delivered(archive: Path, target: SftpTarget) -> dict[str, set[int]]:
    return ledger.delivered_sizes(
        archive,
        target.client_id,
        host=target.host,
        port=target.port,
        username=target.username,
        directory=target.directory,
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def ours(archive: Path, outbound: Path, target: SftpTarget) -> dict[str, set[int]]:
    """The ledger after we delivered each of the fixture's feed files (none of FOREIGN_FILES)."""
    _record(archive, target, outbound, [*EXPIRED, *KEPT_FEED_FILES])
    return _delivered(archive, target)


def test_dry_run_names_the_expired_files_and_removes_nothing(
    outbound: Path, target: SftpTarget, ours: dict[str, set[int]]
) -> None:
    before = _tree(outbound)

    report = prune_remote(
        target, target.directory, SUBSCRIBED, TODAY, 28, dry_run=True, delivered=ours
    )

    assert report == RetentionReport(deleted=EXPIRED, kept=3, dry_run=True)
    assert report.foreign == [] and report.temporaries_removed == []
    assert _tree(outbound) == before


def test_prune_removes_only_the_clients_expired_feed_files(
    sftp_server: LocalSftpServer, outbound: Path, target: SftpTarget, ours: dict[str, set[int]]
) -> None:
    before = _tree(outbound)

    report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered=ours)

    assert report == RetentionReport(deleted=EXPIRED, kept=3, dry_run=False)
    assert _tree(outbound) == sorted(set(before) - set(EXPIRED))
    assert (sftp_server.root / "globex" / outbound.name / "SCORM20261101.csv").exists()
    again = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered=ours)
    assert again.deleted == []


def test_delivery_and_retention_share_one_connection(
    outbound: Path,
    target: SftpTarget,
    archive: Path,
    ours: dict[str, set[int]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    local = tmp_path / "SCORM20261226.csv"
    local.write_bytes(b'"Username"\r\n"u1"\r\n')
    caplog.set_level(logging.INFO, logger="ods_local.sftp_server")

    with open_sftp(target) as session:
        session.deliver(local, "SCORM20261226.csv")
        _record(archive, target, outbound, ["SCORM20261226.csv"])
        delivered = _delivered(archive, target)
        report = prune_remote(session, target.directory, SUBSCRIBED, TODAY, 28, delivered=delivered)

    assert report.deleted == EXPIRED
    assert report.kept == 4
    assert (outbound / "SCORM20261226.csv").read_bytes() == local.read_bytes()
    logins = [r for r in caplog.records if "logged in" in r.getMessage()]
    assert len(logins) == 1


def test_an_expired_feed_file_we_never_delivered_there_is_left_and_reported_foreign(
    outbound: Path, target: SftpTarget, archive: Path
) -> None:
    # Ours: the fixture's feed files, and a file delivered twice with different rows, of which
    # the folder holds the second.
    (outbound / "Completion20261119.csv").write_text("second version, longer\r\n")
    _record(archive, target, outbound, [*EXPIRED, *KEPT_FEED_FILES, "Completion20261119.csv"])
    _record(archive, target, outbound, ["Completion20261119.csv"], bytes=5)
    # Not ours, although named like expired feed files of acme's feeds:
    (outbound / "SCORM20261010.csv").write_text("the client's own copy\r\n")  # never delivered
    (outbound / "Completion20261120.csv").write_text("replaced by the client\r\n")
    _record(archive, target, outbound, ["Completion20261120.csv"], bytes=4096)  # other size
    (outbound / "Completion20261121.csv").write_text("delivered elsewhere\r\n")
    _record(archive, target, outbound, ["Completion20261121.csv"], directory="/elsewhere")
    (outbound / "SCORM20261012.csv").write_text("globex's, same server and folder\r\n")
    _record(archive, target, outbound, ["SCORM20261012.csv"], client_id="globex")
    # Not ours and not expired: neither foreign (yet) nor counted as kept.
    (outbound / "SCORM20261215.csv").write_text("the client's, recent\r\n")
    delivered = _delivered(archive, target)
    foreign = [
        "Completion20261120.csv",
        "Completion20261121.csv",
        "SCORM20261010.csv",
        "SCORM20261012.csv",
    ]
    ours_expired = ["SCORM20261101.csv", "Completion20261119.csv", "Completion20261127.csv"]
    before = _tree(outbound)

    dry = prune_remote(
        target, target.directory, SUBSCRIBED, TODAY, 28, dry_run=True, delivered=delivered
    )
    report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered=delivered)

    assert dry == RetentionReport(deleted=ours_expired, kept=3, dry_run=True, foreign=foreign)
    assert report == RetentionReport(deleted=ours_expired, kept=3, dry_run=False, foreign=foreign)
    assert _tree(outbound) == sorted(set(before) - set(ours_expired))
    for name in [*foreign, "SCORM20261215.csv"]:
        assert (outbound / name).exists(), name


def test_with_an_empty_ledger_nothing_is_removed(outbound: Path, target: SftpTarget) -> None:
    before = _tree(outbound)

    report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered={})

    assert report == RetentionReport(
        deleted=[], kept=0, dry_run=False, foreign=["Completion20261127.csv", "SCORM20261101.csv"]
    )
    assert _tree(outbound) == before


def test_the_ledger_is_required(target: SftpTarget) -> None:
    with pytest.raises(TypeError, match="delivered must map file names"):
        prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered=None)  # type: ignore[arg-type]


# --- temporary files of crashed uploads --------------------------------------------------------

HOUR = 3600


def _aged(path: Path, seconds: float, *, directory: bool = False) -> Path:
    if directory:
        path.mkdir()
    elif not path.exists():
        path.write_bytes(b"partial upload")
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
    return path


def test_a_temporary_file_counts_as_stale_after_a_day() -> None:
    assert STALE_TEMPORARY_SECONDS == 24 * HOUR


def test_only_our_own_stale_temporary_files_are_removed(
    outbound: Path, target: SftpTarget, ours: dict[str, set[int]]
) -> None:
    stale = sorted(
        [
            temporary_name("SCORM20261225.csv"),  # a crashed upload of a recent file
            temporary_name("Completion20261101.csv"),  # of a file whose date is long past
        ]
    )
    for name in stale:
        _aged(outbound / name, 25 * HOUR)
    fresh = [temporary_name("SCORM20261226.csv"), temporary_name("Completion20261226.csv")]
    _aged(outbound / fresh[0], 23 * HOUR)
    _aged(outbound / fresh[1], 0)  # an upload in progress right now
    others = [
        ".SCORM20261001.csv.part",  # older versions' fixed name, or another tool's
        "SCORM20261001.csv.part",
        ".x.0123456789abcdef.part",
        ".x.part",
        ".SCORM20261001.csv.0123456789abcde.part",  # a 15-hex token
        ".SCORM20261001.csv.0123456789abcdef0.part",  # 17
        ".SCORM20261001.csv.0123456789ABCDEF.part",
        "SCORM20261001.csv.0123456789abcdef.part",
        ".SCORM20261001.csv.0123456789abcdef.part.bak",
        ".scorm20261001.csv.0123456789abcdef.part",
        ".Quiz20261001.csv.0123456789abcdef.part",  # a feed acme does not take
        ".SCORM20261399.csv.0123456789abcdef.part",  # not a date
        ".SCORM20261001.csv.bak.0123456789abcdef.part",
    ]
    for name in others:
        _aged(outbound / name, 40 * 24 * HOUR)
    _aged(outbound / ".SCORM20261001.csv.2222222222222222.part", 40 * 24 * HOUR, directory=True)
    before = _tree(outbound)

    dry = prune_remote(
        target, target.directory, SUBSCRIBED, TODAY, 28, dry_run=True, delivered=ours
    )
    assert _tree(outbound) == before
    report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered=ours)

    assert dry == RetentionReport(deleted=EXPIRED, kept=3, dry_run=True, temporaries_removed=stale)
    assert report == RetentionReport(
        deleted=EXPIRED, kept=3, dry_run=False, temporaries_removed=stale
    )
    assert _tree(outbound) == sorted(set(before) - set(EXPIRED) - set(stale))


def test_an_upload_in_progress_on_another_connection_is_not_touched(
    sftp_server: LocalSftpServer, outbound: Path, target: SftpTarget, ours: dict[str, set[int]]
) -> None:
    name = temporary_name("Completion20261226.csv")
    with (
        open_sftp(target) as uploading,
        uploading.sftp_client().open(target.remote_path(name), "wb") as remote,
    ):
        remote.write(b'"Username"\r\n')
        remote.flush()

        report = prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered=ours)

        remote.write(b'"u1"\r\n')
    assert report.temporaries_removed == []
    assert (outbound / name).read_bytes() == b'"Username"\r\n"u1"\r\n'


def test_a_temporary_file_that_cannot_be_removed_is_a_clear_error(
    sftp_server: LocalSftpServer, outbound: Path, target: SftpTarget
) -> None:
    name = temporary_name("SCORM20261225.csv")
    _aged(outbound / name, 25 * HOUR)
    sftp_server.faults.deny_removes = True
    try:
        with pytest.raises(RetentionError) as raised:
            prune_remote(target, target.directory, SUBSCRIBED, TODAY, 28, delivered={})
    finally:
        sftp_server.faults.deny_removes = False

    message = str(raised.value)
    assert "client acme" in message
    assert f"acme@127.0.0.1:{sftp_server.port}:{target.directory}" in message
    assert f"permission denied removing the stale temporary file {name}" in message
    assert "Ask the server's administrator" in message
    assert raised.value.retryable is False
    assert raised.value.deleted == [] and raised.value.temporaries_removed == []
    assert (outbound / name).exists()


def test_a_missing_folder_is_a_clear_error_naming_client_folder_and_server(
    sftp_server: LocalSftpServer, target: SftpTarget
) -> None:
    with pytest.raises(RetentionError) as raised:
        prune_remote(target, "/no-such-folder", SUBSCRIBED, TODAY, 28, delivered={})

    message = str(raised.value)
    assert "client acme" in message
    assert f"acme@127.0.0.1:{sftp_server.port}:/no-such-folder" in message
    assert "does not exist" in message
    assert raised.value.retryable is False
    assert raised.value.deleted == []


def test_a_server_with_another_host_key_gets_no_request_to_remove_anything(
    outbound: Path, target: SftpTarget, ours: dict[str, set[int]], tmp_path: Path
) -> None:
    impostor = replace(target, host_key=generate_key_pair(tmp_path / "other-host", comment="x"))
    before = _tree(outbound)

    with pytest.raises(HostKeyMismatch):
        prune_remote(impostor, target.directory, SUBSCRIBED, TODAY, 28, delivered=ours)

    assert _tree(outbound) == before
