"""Reconciling a client's SFTP folder with the ledger of deliveries, over the local SFTP server:
files present, altered (size, or same size with other bytes), gone before their retention date
(with when first seen missing, kept across looks), removed by retention after it, foreign ones
and temporary upload names; the folder is never changed. Then the Dagster asset and its check,
the 05:30 schedules, `ods reconcile`, and one client's unreachable server next to a healthy one.

Every expectation comes from what the test itself did to the folder: which files it delivered
(for real, through `open_sftp`, each recorded in the ledger), which it then removed, rewrote or
added on the server's disk as the client would."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from ods_local.sftp_server import LocalSftpServer
from orchestration import cli
from orchestration.clients import ClientsConfig, load_clients
from orchestration.defs.code_location import build_definitions
from orchestration.defs.feed_delivery import sftp_target
from orchestration.defs.jobs import SFTP_HOST_TAG
from orchestration.defs.reconciliation import (
    ALTERED_CHECK,
    RECONCILIATION_JOB,
    build_reconciliation_asset,
    reconcile_client,
)
from orchestration.defs.resources import ArchiveResource, SftpSecrets
from orchestration.delivery import ledger
from orchestration.delivery.reconcile import FileStatus, FolderReport, ReconciliationError
from orchestration.delivery.retention import prune_remote
from orchestration.delivery.sftp import SftpTarget, open_sftp
from tests.e2e_support import client_entry, delivery_to, write_clients_file

LONDON = ZoneInfo("Europe/London")
# A look at 05:30 London on 2026-12-26; retention_days 28, so a file dated 2026-11-28 is kept
# through 2026-12-26 and one dated 2026-11-27 is past its retention date.
NOW = dt.datetime(2026, 12, 26, 5, 30, tzinfo=LONDON)
LATER = NOW + dt.timedelta(days=1)
TEMPORARY = ".Completion20261226.csv.0123456789abcdef.part"


@dataclass
class Site:
    """The clients file of one test: acme and globex on the server, each in a fresh folder."""

    config: ClientsConfig
    clients_file: Path
    archive: Path
    folders: dict[str, Path]

    def target(self, client_id: str) -> SftpTarget:
        return sftp_target(client_id, self.config.clients[client_id])


_numbers = itertools.count(1)


def _site(
    server: LocalSftpServer,
    keys: Path,
    tmp_path: Path,
    *,
    options: dict[str, dict] | None = None,
    **extra_clients: dict,
) -> Site:
    """acme and globex (each with its `options`, if any) and the `extra_clients`."""
    number = next(_numbers)
    entries, folders = {}, {}
    for client_id in ("acme", "globex"):
        entry = client_entry(f"moodle_{client_id}", server, client_id, keys / client_id)
        entry["sftp"]["directory"] = f"/outbound{number}"
        folders[client_id] = server.root / client_id / f"outbound{number}"
        folders[client_id].mkdir()
        entries[client_id] = {**entry, **(options or {}).get(client_id, {})}
    entries.update(extra_clients)
    archive = tmp_path / "archive"
    clients_file = write_clients_file(tmp_path / "clients.yaml", entries, archive_dir=str(archive))
    return Site(load_clients(clients_file), clients_file, archive, folders)


@pytest.fixture
def site(sftp_server: LocalSftpServer, sftp_keys: Path, tmp_path: Path) -> Site:
    return _site(sftp_server, sftp_keys, tmp_path)


def deliver(
    site: Site, client_id: str, name: str, content: bytes, feed: str = "completion"
) -> None:
    """Deliver `content` as `name` for real (temporary name, check, rename) and record it in the
    ledger, as the files step does."""
    local = site.archive.parent / "made" / name
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(content)
    target = site.target(client_id)
    with open_sftp(target) as session:
        receipt = session.deliver(local, name)
    ledger.record(
        site.archive,
        delivery_to(
            target,
            name,
            receipt.bytes,
            feed=feed,
            activity_day="2026-12-01",
            sha256=receipt.sha256,
            delivered_at=dt.datetime.now(dt.UTC).isoformat(),
        ),
    )


def csv_bytes(name: str, rows: int = 2) -> bytes:
    return b'"Username"\r\n' + b"".join(f'"{name}-u{n}"\r\n'.encode() for n in range(rows))


def deliver_each(site: Site, names: Iterable[str]) -> None:
    """Deliver each of acme's files `names` (deliver), each with bytes of its own (csv_bytes of
    its name), so that no two files are alike."""
    for name in names:
        deliver(site, "acme", name, csv_bytes(name))


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Everything under the folder: each path's bytes (None for a folder) and mtime."""
    return {
        str(path.relative_to(folder)): (
            path.read_bytes() if path.is_file() else None,
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
    }


def look(site: Site, client_id: str = "acme", now: dt.datetime = NOW, **options) -> FolderReport:
    return reconcile_client(site.config, client_id, site.archive, now=now, **options)


def statuses(report: FolderReport) -> dict[str, FileStatus]:
    return {file.name: file.status for file in report.files}


def files_of(report: FolderReport) -> dict[str, object]:
    return {file.name: file for file in report.files}


def test_each_name_in_the_folder_is_classified_and_nothing_on_the_server_changes(
    site: Site,
) -> None:
    folder = site.folders["acme"]
    present = ["Completion20261225.csv", "Completion20261224.csv.gz.pgp", "MANIFEST20261225.json"]
    for name in present:
        deliver(
            site, "acme", name, csv_bytes(name), "manifest" if "MANIFEST" in name else "completion"
        )
    deliver(site, "acme", "Completion20261223.csv", csv_bytes("altered"))
    deliver(site, "acme", "Completion20261220.csv", csv_bytes("gone"))
    deliver(site, "acme", "Completion20261120.csv", csv_bytes("expired"))
    # The client: picks one file up, appends to another; someone leaves their own files; a
    # file named like ours that we never delivered; an upload of ours in progress.
    (folder / "Completion20261220.csv").unlink()
    with (folder / "Completion20261223.csv").open("ab") as handle:
        handle.write(b'"extra"\r\n')
    (folder / "readme.txt").write_text("the client's own\n")
    (folder / "Completion20261219.csv").write_bytes(csv_bytes("theirs"))
    (folder / "archive").mkdir()
    (folder / "archive" / "Completion20261101.csv").write_bytes(b"kept by the client\r\n")
    (folder / TEMPORARY).write_bytes(b'"Username"\r\n')
    # Retention itself, as the night's delivery runs it, removes the file past its date.
    target = site.target("acme")
    delivered = ledger.delivered_sizes(
        site.archive,
        "acme",
        host=target.host,
        port=target.port,
        username=target.username,
        directory=target.directory,
    )
    removed = prune_remote(
        target, target.directory, ["Completion"], NOW.date(), 28, delivered=delivered
    )
    assert removed.deleted == ["Completion20261120.csv"]
    before = snapshot(folder)

    report = look(site)

    assert snapshot(folder) == before
    assert statuses(report) == {
        **dict.fromkeys(present, FileStatus.PRESENT),
        "Completion20261223.csv": FileStatus.ALTERED,
        "Completion20261220.csv": FileStatus.GONE_EARLY,
        "Completion20261120.csv": FileStatus.EXPIRED,
        "readme.txt": FileStatus.FOREIGN,
        "Completion20261219.csv": FileStatus.FOREIGN,
        "archive": FileStatus.FOREIGN,
        TEMPORARY: FileStatus.TEMPORARY,
    }
    files = files_of(report)
    altered = files["Completion20261223.csv"]
    sent = len(csv_bytes("altered"))
    assert (altered.sent_bytes, altered.bytes_now) == (sent, sent + len(b'"extra"\r\n'))
    gone = files["Completion20261220.csv"]
    assert gone.missing_since == "2026-12-26T05:30:00Z"
    assert gone.keep_until == dt.date(2027, 1, 17)  # 2026-12-20 + 28 days
    assert files["Completion20261120.csv"].missing_since is None
    assert report.counts() == {
        FileStatus.ALTERED: 1,
        FileStatus.GONE_EARLY: 1,
        FileStatus.PRESENT: 3,
        FileStatus.FOREIGN: 3,
        FileStatus.TEMPORARY: 1,
        FileStatus.EXPIRED: 1,
    }
    assert report.folder == f"acme@127.0.0.1:{target.port}:{target.directory}"
    assert report.read_back == ()  # first sightings are not read back


def test_first_seen_missing_is_kept_across_looks_and_forgotten_when_the_file_is_back(
    site: Site,
) -> None:
    folder = site.folders["acme"]
    deliver(site, "acme", "Completion20261224.csv", csv_bytes("a"))
    deliver(site, "acme", "Completion20261225.csv", csv_bytes("b"))
    assert look(site).with_status(FileStatus.GONE_EARLY) == []
    (folder / "Completion20261224.csv").unlink()

    first = look(site, now=NOW + dt.timedelta(hours=1))
    second = look(site, now=LATER)

    assert [f.missing_since for f in first.with_status(FileStatus.GONE_EARLY)] == [
        "2026-12-26T06:30:00Z"
    ]
    assert [f.missing_since for f in second.with_status(FileStatus.GONE_EARLY)] == [
        "2026-12-26T06:30:00Z"
    ]
    state = json.loads((site.archive / "acme" / "reconciliation.json").read_text())
    (remembered,) = state["folders"].values()
    assert remembered["missing_since"] == {"Completion20261224.csv": "2026-12-26T06:30:00Z"}
    # Delivered again (a re-send): present, and a later loss is dated afresh.
    deliver(site, "acme", "Completion20261224.csv", csv_bytes("a"))
    assert statuses(look(site, now=LATER))["Completion20261224.csv"] is FileStatus.PRESENT
    (folder / "Completion20261224.csv").unlink()
    again = look(site, now=LATER + dt.timedelta(days=1))
    assert [f.missing_since for f in again.with_status(FileStatus.GONE_EARLY)] == [
        "2026-12-28T05:30:00Z"
    ]


def test_the_retention_date_is_the_one_retention_keeps_files_to(site: Site) -> None:
    # Retention at 2026-12-26 keeps 2026-11-28 and removes 2026-11-27 (tests/test_retention.py).
    # Both gone: the first went before its date (early), the second after it.
    folder = site.folders["acme"]
    for name in ("Completion20261128.csv", "Completion20261127.csv"):
        deliver(site, "acme", name, csv_bytes(name))
        (folder / name).unlink()

    report = look(site)

    assert statuses(report) == {
        "Completion20261128.csv": FileStatus.GONE_EARLY,
        "Completion20261127.csv": FileStatus.EXPIRED,
    }
    assert files_of(report)["Completion20261128.csv"].keep_until == NOW.date()


def test_a_longer_retention_makes_the_same_loss_early(
    sftp_server: LocalSftpServer, sftp_keys: Path, tmp_path: Path
) -> None:
    site = _site(sftp_server, sftp_keys, tmp_path, options={"acme": {"retention_days": 60}})
    deliver(site, "acme", "Completion20261127.csv", csv_bytes("x"))
    (site.folders["acme"] / "Completion20261127.csv").unlink()

    gone = look(site).with_status(FileStatus.GONE_EARLY)

    assert [(f.name, f.keep_until) for f in gone] == [
        ("Completion20261127.csv", dt.date(2027, 1, 26))
    ]


def test_a_same_size_rewrite_is_caught_by_reading_back_only_files_whose_time_changed(
    site: Site,
) -> None:
    folder = site.folders["acme"]
    names = ["Completion20261223.csv", "Completion20261224.csv", "Completion20261225.csv"]
    deliver_each(site, names)
    assert look(site).read_back == ()  # the first look trusts the delivery's own check
    rewritten, touched, untouched = (folder / name for name in names)
    original = rewritten.read_bytes()
    rewritten.write_bytes(original.replace(b"u0", b"u9"))  # same size, other bytes
    assert len(rewritten.read_bytes()) == len(original)
    later = rewritten.stat().st_mtime + 120
    os.utime(rewritten, (later, later))
    os.utime(touched, (later, later))  # touched only: same bytes
    before = snapshot(folder)

    report = look(site, now=LATER)

    assert report.read_back == (rewritten.name, touched.name)
    assert statuses(report) == {
        rewritten.name: FileStatus.ALTERED,
        touched.name: FileStatus.PRESENT,
        untouched.name: FileStatus.PRESENT,
    }
    assert "same size, other bytes" in files_of(report)[rewritten.name].note
    assert snapshot(folder) == before
    # Next look: the touched file's new time is remembered (no read), the altered one stays
    # altered (read again) until it is delivered again.
    again = look(site, now=LATER + dt.timedelta(hours=1))
    assert again.read_back == (rewritten.name,)
    assert statuses(again)[rewritten.name] is FileStatus.ALTERED
    deliver(site, "acme", rewritten.name, original)
    fixed = look(site, now=LATER + dt.timedelta(hours=2))
    assert statuses(fixed)[rewritten.name] is FileStatus.PRESENT
    assert fixed.read_back == ()


def test_read_back_all_compares_every_present_file(site: Site) -> None:
    folder = site.folders["acme"]
    deliver(site, "acme", "Completion20261225.csv", csv_bytes("a"))
    deliver(site, "acme", "Completion20261224.csv", csv_bytes("b"))
    path = folder / "Completion20261225.csv"
    stamp = path.stat().st_mtime
    path.write_bytes(path.read_bytes().replace(b"a-u0", b"a-u7"))
    os.utime(path, (stamp, stamp))  # even its time put back

    report = look(site, read_back_all=True)

    assert report.read_back == ("Completion20261224.csv", "Completion20261225.csv")
    assert statuses(report)["Completion20261225.csv"] is FileStatus.ALTERED
    assert statuses(report)["Completion20261224.csv"] is FileStatus.PRESENT


def test_only_deliveries_to_this_folder_are_ours(site: Site) -> None:
    # globex's ledger says nothing of acme's folder; a file of the same name there is foreign.
    deliver(site, "globex", "Completion20261225.csv", csv_bytes("g"))
    (site.folders["acme"] / "Completion20261225.csv").write_bytes(csv_bytes("g"))

    assert statuses(look(site)) == {"Completion20261225.csv": FileStatus.FOREIGN}
    assert statuses(look(site, "globex")) == {"Completion20261225.csv": FileStatus.PRESENT}


def test_a_missing_folder_is_named_and_the_state_is_left_alone(site: Site) -> None:
    deliver(site, "acme", "Completion20261225.csv", csv_bytes("a"))
    look(site)
    state = (site.archive / "acme" / "reconciliation.json").read_bytes()
    site.folders["acme"].rename(site.folders["acme"].with_name("moved"))

    with pytest.raises(ReconciliationError, match=r"client acme: .* does not exist on the server"):
        look(site, now=LATER)

    assert (site.archive / "acme" / "reconciliation.json").read_bytes() == state


def test_an_unreadable_state_starts_afresh_and_is_replaced_by_a_whole_one(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(site, "acme", "Completion20261224.csv", csv_bytes("a"))
    (site.folders["acme"] / "Completion20261224.csv").unlink()
    state = site.archive / "acme" / "reconciliation.json"
    state.write_text('{"folders": {"acme@')  # half a file, as a hand edit might leave

    report = look(site)

    assert [f.missing_since for f in report.with_status(FileStatus.GONE_EARLY)] == [
        "2026-12-26T05:30:00Z"
    ]
    assert "cannot be read" in caplog.text and str(state) in caplog.text
    assert json.loads(state.read_text())["version"] == 1
    assert sorted(p.name for p in state.parent.iterdir() if "reconciliation" in p.name) == [
        "reconciliation.json",
        "reconciliation.lock",
    ]


# --- Dagster: the asset, its check, the schedules --------------------------------------------


def _today() -> dt.date:
    return dt.datetime.now(LONDON).date()


def _dated(prefix: str, days_ago: int, suffix: str = ".csv") -> str:
    """A name dated relative to today (for the asset and the command, which read the clock);
    every status below holds whichever side of midnight the look falls."""
    return f"{prefix}{_today() - dt.timedelta(days=days_ago):%Y%m%d}{suffix}"


def _materialize(site: Site, client_id: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_reconciliation_asset(site.config)],
        partition_key=client_id,
        resources={
            "archive_dir": ArchiveResource(root=str(site.archive)),
            "sftp_secrets": SftpSecrets(),
        },
        raise_on_error=False,
    )


def test_the_asset_reports_the_folder_and_its_check_warns_on_an_altered_file(site: Site) -> None:
    kept, changed, gone = _dated("Completion", 1), _dated("Completion", 2), _dated("Completion", 3)
    deliver_each(site, (kept, changed, gone))
    deliver(site, "globex", _dated("Completion", 1), csv_bytes("g"))
    with (site.folders["acme"] / changed).open("ab") as handle:
        handle.write(b"x")
    (site.folders["acme"] / gone).unlink()

    acme, globex = _materialize(site, "acme"), _materialize(site, "globex")

    assert acme.success and globex.success
    (warned,) = acme.get_asset_check_evaluations()
    assert warned.check_name == ALTERED_CHECK
    assert not warned.passed and warned.severity is dg.AssetCheckSeverity.WARN
    assert warned.metadata["altered"].value == [changed]
    (clean,) = globex.get_asset_check_evaluations()
    assert clean.passed
    (materialization,) = acme.asset_materializations_for_node("folder_reconciliation")
    metadata = materialization.metadata
    assert {key: metadata[key].value for key in ("present", "altered", "gone_early")} == {
        "present": 1,
        "altered": 1,
        "gone_early": 1,
    }
    rows = {record.data["file"]: record.data for record in metadata["files"].value.records}
    assert {name: row["status"] for name, row in rows.items()} == {
        kept: "present",
        changed: "altered",
        gone: "gone early",
    }
    assert rows[changed]["bytes_now"] == rows[changed]["sent_bytes"] + 1


def test_an_unreachable_server_fails_only_its_own_clients_run(
    sftp_server: LocalSftpServer, sftp_keys: Path, tmp_path: Path
) -> None:
    site = _site(
        sftp_server, sftp_keys, tmp_path, hooli=_unreachable_client(sftp_server, sftp_keys)
    )
    deliver(site, "acme", _dated("Completion", 1), csv_bytes("a"))

    hooli, acme = _materialize(site, "hooli"), _materialize(site, "acme")

    assert acme.success
    assert not hooli.success
    failure = hooli.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None
    assert "client hooli: the folder hooli@127.0.0.1" in failure.description
    assert "cannot reach the server" in failure.description


def _unreachable_client(server: LocalSftpServer, keys: Path) -> dict:
    """A client whose server is down: nothing listens on its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    entry = client_entry("moodle_hooli", server, "hooli", keys / "acme")
    entry["sftp"]["port"] = port
    return entry


def test_each_zone_looks_at_its_clients_folders_at_0530_one_run_per_client(
    sftp_server: LocalSftpServer,
    sftp_keys: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sydney = client_entry(
        "moodle_koala", sftp_server, "koala", sftp_keys / "acme", timezone="Australia/Sydney"
    )
    site = _site(sftp_server, sftp_keys, tmp_path, koala=sydney)
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(site.clients_file))
    defs = build_definitions()  # the code location, as `dagster dev` loads it
    repository = defs.get_repository_def()
    schedules = {
        s.name: s for s in repository.schedule_defs if s.name.startswith("folder_reconciliation")
    }

    assert {name: (s.cron_schedule, s.execution_timezone) for name, s in schedules.items()} == {
        "folder_reconciliation_europe_london": ("30 5 * * *", "Europe/London"),
        "folder_reconciliation_australia_sydney": ("30 5 * * *", "Australia/Sydney"),
    }
    assert all(s.job_name == RECONCILIATION_JOB for s in schedules.values())
    assert all(s.default_status is dg.DefaultScheduleStatus.RUNNING for s in schedules.values())
    tick = dt.datetime(2026, 12, 26, 5, 30, tzinfo=LONDON)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=repository
    ) as context:
        london = schedules["folder_reconciliation_europe_london"].evaluate_tick(context)
    assert [
        (r.partition_key, r.run_key, r.tags[SFTP_HOST_TAG]) for r in london.run_requests or []
    ] == [
        ("acme", "Europe/London|2026-12-26|acme", "127.0.0.1"),
        ("globex", "Europe/London|2026-12-26|globex", "127.0.0.1"),
    ]
    job = defs.resolve_job_def(RECONCILIATION_JOB)
    assert job.partitions_def is not None
    assert job.partitions_def.get_partition_keys() == ["acme", "globex", "koala"]


# --- ods reconcile ---------------------------------------------------------------------------


def _ods(site: Site, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(site.clients_file))
    return cli.main(["reconcile", *args])


def test_ods_reconcile_prints_each_clients_table_and_exits_0_when_nothing_is_altered(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, gone = _dated("Completion", 1), _dated("Completion", 2)
    deliver_each(site, (kept, gone))
    (site.folders["acme"] / gone).unlink()
    (site.folders["acme"] / "readme.txt").write_text("theirs")
    before = snapshot(site.folders["acme"])

    status = _ods(site, monkeypatch)

    out = capsys.readouterr().out
    assert status == 0
    assert out.index("acme  acme@127.0.0.1") < out.index("globex  globex@127.0.0.1")
    acme_block = out[: out.index("globex  ")]
    assert f"gone early  {gone}" in acme_block and "first seen missing" in acme_block
    assert "foreign     readme.txt" in acme_block
    assert kept not in acme_block  # present files are counted, listed with --all
    assert (
        "altered 0 · gone early 1 · present 1 · foreign 1 · temporary 0 · "
        "removed after retention 0" in acme_block
    )
    assert snapshot(site.folders["acme"]) == before
    assert _ods(site, monkeypatch, "acme", "--all") == 0
    listed = capsys.readouterr().out
    assert f"present     {kept}" in listed and "globex" not in listed


def test_ods_reconcile_exits_1_on_an_altered_file_and_2_for_an_unknown_client(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _dated("Completion", 1)
    deliver(site, "globex", name, csv_bytes(name))
    (site.folders["globex"] / name).write_bytes(b"replaced by the client\r\n")

    assert _ods(site, monkeypatch, "globex") == 1
    out = capsys.readouterr().out
    sent, now = len(csv_bytes(name)), len(b"replaced by the client\r\n")
    assert re.search(rf"^  altered +{name} +{sent} +{now}  {now} bytes, we sent {sent}", out, re.M)
    assert _ods(site, monkeypatch, "acme") == 0
    capsys.readouterr()

    assert _ods(site, monkeypatch, "umbrella") == 2
    err = capsys.readouterr().err
    assert "client 'umbrella' is not in the clients file; known clients: acme, globex" in err


def test_ods_reconcile_reports_an_unreachable_server_and_still_reconciles_the_others(
    sftp_server: LocalSftpServer,
    sftp_keys: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = _site(
        sftp_server, sftp_keys, tmp_path, hooli=_unreachable_client(sftp_server, sftp_keys)
    )
    deliver(site, "acme", _dated("Completion", 1), csv_bytes("a"))

    status = _ods(site, monkeypatch)

    captured = capsys.readouterr()
    assert status == 1
    assert "acme  acme@127.0.0.1" in captured.out and "globex  globex@127.0.0.1" in captured.out
    assert "NOT RECONCILED: client hooli: the folder hooli@127.0.0.1" in captured.err
    assert "cannot reach the server" in captured.err
    assert "could not deliver" not in captured.err  # the folder is named once, as a folder


def test_ods_reconcile_help_explains_the_classes_and_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["reconcile", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for words in ("gone early", "foreign", "temporary", "--read-back", "--all", "exit status"):
        assert words in text
