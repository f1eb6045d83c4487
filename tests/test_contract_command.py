"""`ods contract`: the files a client would receive for a day, its options and contract version,
and `--diff` against a git revision of the clients file or the last delivered files.

The warehouse path is checked against a real night: a synthetic site for acme, the marts built by
the daily marts job and acme's files delivered by the files job to a local SFTP server; the
contract's files must be those bytes. acme takes every non-default option (LF, a byte order mark,
formula neutralising, files dated by the activity day), SCORM with `records: all` and its own quiz
columns. newco has no replica in the warehouse: its files come from a synthetic site, checked
against the rows worked out in Python from the same site (tests/expected_feeds.py).

The diff tests write two clients files by hand into a temporary git repository; the expected
changes are read off the two YAML texts, not computed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
import yaml

from ods_local.contract_site import SCRATCH_PREFIX, site_spec
from orchestration.cli import main
from orchestration.clients import ClientConfig
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB
from orchestration.delivery import ledger
from orchestration.export.contract import (
    ColumnAdded,
    ColumnMoved,
    ColumnRemoved,
    ColumnRenamed,
    OptionChanged,
    contract_from_dict,
    contract_of,
    diff,
)
from orchestration.feeds import FEEDS
from orchestration.paths import PROJECT_ROOT
from synthetic_moodle import generate_site
from tests.e2e_support import (
    client_entry,
    client_site,
    ledger_delivery,
    ods_environment,
    parse_csv,
    sftp_session,
    start_sftp_server,
    write_clients_file,
)
from tests.expected_feeds import DEFAULT_HEADERS, EXPECTED

DAY = dt.date(2026, 10, 20)
ACME_SITE = client_site(
    "acme",
    release="4.2",
    prefix="mdl_",
    seed=17,
    learners=12,
    courses=2,
    start=DAY - dt.timedelta(days=1),
    days=2,
)
ACME_QUIZ_COLUMNS = {
    "idnumber": "Employee ID",
    "quiz_name": "Assessment",
    "attempt": "Attempt",
    "score": "Result %",
    "status": "Outcome",
    "finished_at": "Submitted",
}
ACME_FEEDS: dict[str, dict[str, Any]] = {
    "scorm": {"records": "all"},
    "f2f": {},
    "quiz": {"columns": ACME_QUIZ_COLUMNS},
    "completion": {},
}
ACME_OPTIONS = {
    "compress": "gzip",
    "line_ending": "lf",
    "byte_order_mark": True,
    "neutralise_formulas": True,
    "file_date": "activity_day",
}
# acme dates its files by the activity day: DAY itself.
ACME_FILES = {
    "scorm": "SCORM20261020.csv",
    "f2f": "F2F20261020.csv",
    "quiz": "Quiz20261020.csv",
    "completion": "Completion20261020.csv",
}
ACME_HEADERS = {**DEFAULT_HEADERS, "quiz": list(ACME_QUIZ_COLUMNS.values())}


@pytest.fixture(scope="module")
def night(module_pg, postgres_server, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """acme's site, its marts for DAY and its files of DAY delivered over SFTP, as a night does;
    the environment (PG*, ODS_CLIENTS_FILE, ODS_HOME) stays set for the module's tests."""
    tmp = tmp_path_factory.mktemp("contract")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        generate_site(conn, ACME_SITE)
    server, keys = start_sftp_server(tmp, ["acme"])
    key = keys["acme"]
    try:
        entry = client_entry("moodle_acme", server, "acme", key, feeds=ACME_FEEDS, **ACME_OPTIONS)
        archive = tmp / "archive"
        clients_file = write_clients_file(
            tmp / "clients.yaml", {"acme": entry}, archive_dir=str(archive)
        )
        # ODS_HOME whose pgdata is the running test server: its embedded local PostgreSQL,
        # where the synthetic path makes its scratch database (and logs go under it).
        with ods_environment(
            module_pg, clients_file, ODS_HOME=str(postgres_server.pgdata.parent)
        ) as env:
            defs = build_definitions()
            instance = dg.DagsterInstance.ephemeral()
            marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
                instance=instance, partition_key=DAY.isoformat()
            )
            assert marts.success
            files = defs.resolve_job_def("client_files_job").execute_in_process(
                instance=instance,
                partition_key=dg.MultiPartitionKey({"date": DAY.isoformat(), "client": "acme"}),
            )
            assert files.success
            with sftp_session(server, key, "acme") as sftp:
                delivered = {}
                for feed, name in ACME_FILES.items():
                    with sftp.open(f"/outbound/{name}.gz", "rb") as handle:
                        delivered[feed] = handle.read()
            yield {
                "tmp": tmp,
                "archive": archive,
                "clients_file": clients_file,
                "delivered": delivered,
                "entry": entry,
                "env": env,
            }
    finally:
        server.stop()


def _contract(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["contract", *args])
    out, err = capsys.readouterr()
    return status, out, err


def _warehouse_state(conninfo: str) -> list[Any]:
    """What a contract must leave as it was: the marts' rows and the ledger of days built."""
    with psycopg.connect(conninfo) as conn:
        counts = [
            conn.execute(f"select count(*) from marts.{feed.mart}").fetchone()
            for feed in FEEDS.values()
        ]
        built = conn.execute(
            "select feed, client_id, report_date from marts.feed_days_built order by 1, 2, 3"
        ).fetchall()
        schemas = conn.execute("select nspname from pg_namespace order by 1").fetchall()
    return [counts, built, schemas]


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------ the warehouse path


def test_the_files_are_byte_for_byte_those_the_night_delivered(night, module_pg, capsys):
    out = night["tmp"] / "signed-off"
    archive_before = _files_in(night["archive"])
    warehouse_before = _warehouse_state(module_pg.conninfo())

    status, printed, _ = _contract(["acme", "--day", DAY.isoformat(), "--out", str(out)], capsys)

    assert status == 0, printed
    assert "from the warehouse's marts" in printed
    # The CSV, and beside it the form acme is sent (compress: gzip).
    assert sorted(p.name for p in out.iterdir()) == sorted(
        name + suffix for name in ACME_FILES.values() for suffix in ("", ".gz")
    )
    for feed, name in ACME_FILES.items():
        assert (out / f"{name}.gz").read_bytes() == night["delivered"][feed], feed
        made = (out / name).read_bytes()
        assert made == gzip.decompress(night["delivered"][feed]), feed
        assert made == (night["archive"] / "acme" / feed / name).read_bytes(), feed
    # Nothing of the night's was written: the archive and the warehouse are as they were.
    assert _files_in(night["archive"]) == archive_before
    assert _warehouse_state(module_pg.conninfo()) == warehouse_before


def test_the_headers_are_the_clients_columns_and_the_options_are_in_the_bytes(night, capsys):
    out = night["tmp"] / "headers"
    status, _, _ = _contract(["acme", "--day", DAY.isoformat(), "--out", str(out)], capsys)
    assert status == 0
    for feed, name in ACME_FILES.items():
        data = (out / name).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf"), f"{name}: byte_order_mark: true"
        assert b"\r\n" not in data and data.endswith(b'"\n'), f"{name}: line_ending: lf"
        rows = parse_csv(data[3:])
        assert rows[0] == ACME_HEADERS[feed], feed


def test_each_file_is_printed_with_its_name_options_version_header_and_first_rows(night, capsys):
    out = night["tmp"] / "printed"
    status, printed, _ = _contract(
        ["acme", "--day", DAY.isoformat(), "--out", str(out), "--rows", "3"], capsys
    )
    assert status == 0
    blocks = _blocks(printed)
    assert list(blocks) == list(ACME_FILES.values())
    client = ClientConfig.model_validate(night["entry"], context={"require_files": False})
    for feed, name in ACME_FILES.items():
        lines = blocks[name]
        prefix = name[: -len("20261020.csv")]
        assert f"  feed:             {feed}" in lines
        assert f"  contract version: {contract_of(client, FEEDS[feed]).version}" in lines
        assert (
            f"  file name:        {prefix}<YYYYMMDD>.csv, dated the activity day itself "
            "(file_date: activity_day)"
        ) in lines
        assert (
            "  quoting:          every value in double quotes, the header too; a quote inside "
            'a value doubled (""); an empty value or NULL as ""; newlines inside a value kept '
            "inside its quotes"
        ) in lines
        assert "  line endings:     LF (\\n), the last line too (line_ending: lf)" in lines
        assert (
            "  byte order mark:  yes: the file starts with the UTF-8 BOM EF BB BF "
            "(byte_order_mark: true)"
        ) in lines
        assert (
            "  formulas:         neutralised: a text value starting =, +, -, @, tab or CR (not a "
            "plain number) gets a leading ' (neutralise_formulas: true)"
        ) in lines
        size = len(night["delivered"][feed])
        assert f"  sent as:          {name}.gz: the CSV below, gzip ({size} bytes)" in lines
        records = [line for line in lines if line.startswith("  records:")]
        assert records == (
            ["  records:          every status (records: all)"] if feed == "scorm" else []
        )
        # The header and the first rows as the file has them (newlines inside values shown as \n).
        file_lines = (out / name).read_bytes()[3:].decode().split("\n")
        header_at = lines.index(f"  header:           {file_lines[0]}")
        data_rows = [line for line in file_lines[1:] if line]
        assert len(data_rows) >= 3, f"{name}: the fixture's day has rows"
        assert lines[header_at + 1] == "  rows (first 3):"
        assert lines[header_at + 2 : header_at + 5] == [f"    {row}" for row in data_rows[:3]]
        assert f"  rows:             {len(data_rows)} (" in "\n".join(lines)


def _blocks(printed: str) -> dict[str, list[str]]:
    """The printed lines of each file, by the file name that starts its block."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in printed.splitlines():
        if re.fullmatch(r"[A-Za-z0-9]+\d{8}\.csv", line):
            current = blocks.setdefault(line, [])
        elif current is not None and line:
            current.append(line)
    return blocks


def test_without_a_day_the_latest_day_the_warehouse_built_is_written(night, capsys):
    out = night["tmp"] / "latest"
    status, printed, _ = _contract(["acme", "--feed", "quiz", "--out", str(out)], capsys)
    assert status == 0
    assert f"the files of activity day {DAY}, from the warehouse's marts" in printed
    name = ACME_FILES["quiz"]
    assert sorted(p.name for p in out.iterdir()) == [name, f"{name}.gz"]
    assert (out / f"{name}.gz").read_bytes() == night["delivered"]["quiz"]


def test_the_warehouse_source_refuses_a_day_it_has_not_built(night, capsys):
    out = night["tmp"] / "not-built"
    status, _, err = _contract(
        ["acme", "--day", "2026-10-01", "--source", "warehouse", "--out", str(out)], capsys
    )
    assert status == 2
    assert err.strip() == (
        "error: the warehouse holds no day 2026-10-01 of client 'acme' for every feed asked "
        "(scorm: 2026-10-20 to 2026-10-20 (1 days); f2f: 2026-10-20 to 2026-10-20 (1 days); "
        "quiz: 2026-10-20 to 2026-10-20 (1 days); completion: 2026-10-20 to 2026-10-20 (1 days)); "
        "give a --day it has, or --source synthetic"
    )
    assert not out.exists()


# ------------------------------------------------------------------ the synthetic path


def test_a_client_without_a_replica_gets_files_from_a_synthetic_site(night, module_pg, pg, capsys):
    newco = {
        "name": "Newco",
        "moodle_schema": "moodle_newco",
        "table_prefix": "nc_",
        "feeds": {"quiz": {}, "completion": {}},
        "sftp": {**night["entry"]["sftp"], "username": "newco"},
    }
    clients_file = write_clients_file(night["tmp"] / "newco.yaml", {"newco": newco})
    night["env"].setenv("ODS_CLIENTS_FILE", str(clients_file))
    out = night["tmp"] / "newco"
    warehouse_before = _warehouse_state(module_pg.conninfo())
    try:
        status, printed, err = _contract(
            ["newco", "--day", DAY.isoformat(), "--out", str(out)], capsys
        )
    finally:
        night["env"].setenv("ODS_CLIENTS_FILE", str(night["clients_file"]))
    assert status == 0, err
    assert (
        f"newco (Newco): the files of activity day {DAY}, from a synthetic Moodle site (the "
        f"warehouse has no day {DAY} of 'newco' for these feeds)"
    ) in printed
    # Defaults: dated the day after, CRLF, no byte order mark, the default columns.
    names = {"quiz": "Quiz20261021.csv", "completion": "Completion20261021.csv"}
    assert sorted(p.name for p in out.iterdir()) == sorted(names.values())

    # The same site, generated into a database of the test's own: its rows, worked out in Python.
    client = ClientConfig.model_validate(newco, context={"require_files": False})
    spec = site_spec(client, "Europe/London", DAY)
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        generate_site(conn, spec)
        for feed, name in names.items():
            data = (out / name).read_bytes()
            assert data.startswith(b'"Username"') and data.endswith(b'"\r\n'), name
            rows = parse_csv(data)
            assert rows[0] == DEFAULT_HEADERS[feed]
            expected = EXPECTED[feed](conn, spec.schema, spec.prefix, spec.timezone, DAY)
            columns = list(FEEDS[feed].default_columns)
            assert rows[1:] == [[row[c] for c in columns] for row in expected], feed
            assert len(rows) > 1, f"{feed}: the synthetic day has rows"

    # The warehouse was not touched (no newco schema, rows or days) and the scratch database
    # is gone.
    assert _warehouse_state(module_pg.conninfo()) == warehouse_before
    with psycopg.connect(module_pg.conninfo()) as conn:
        left = conn.execute(
            "select datname from pg_database where datname like %s", (SCRATCH_PREFIX + "%",)
        ).fetchall()
    assert left == []


# ------------------------------------------------------------------ refusals


def test_an_unknown_client_or_feed_or_a_day_not_over_is_refused(night, capsys):
    status, _, err = _contract(["zed"], capsys)
    assert status == 2
    assert err.strip() == (
        f"error: unknown client 'zed' in the clients file {night['clients_file']}; clients: acme"
    )
    clients = yaml.safe_load(night["clients_file"].read_text())
    clients["clients"]["acme"]["feeds"] = {"quiz": {}}
    one_feed = night["tmp"] / "one-feed.yaml"
    one_feed.write_text(yaml.safe_dump(clients))
    night["env"].setenv("ODS_CLIENTS_FILE", str(one_feed))
    try:
        status, _, err = _contract(["acme", "--feed", "scorm"], capsys)
        assert status == 2
        assert err.strip() == "error: client 'acme' does not take the scorm feed; it takes quiz"
    finally:
        night["env"].setenv("ODS_CLIENTS_FILE", str(night["clients_file"]))
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    status, _, err = _contract(["acme", "--day", tomorrow.isoformat()], capsys)
    assert status == 2
    assert f"error: day {tomorrow} of client 'acme' is not over yet" in err
    with pytest.raises(SystemExit) as exited:
        main(["contract", "acme", "--day", "20-10-2026"])
    assert exited.value.code == 2
    assert "'20-10-2026' is not a date: use YYYY-MM-DD" in capsys.readouterr().err


# ------------------------------------------------------------------ --diff REV

V1 = """\
timezone: Europe/London
clients:
  acme:
    name: Acme
    moodle_schema: moodle_acme
    feeds:
      f2f: {}
      quiz:
        columns:
          username: Username
          quiz_name: Quiz Name
          attempt: Attempt
          score: Score
          status: Status
      completion: {}
    sftp: {host: sftp.example.org, username: acme, password_env: ACME_PW,
           host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}
    retention_days: 28
"""
# From V1: quiz loses `attempt`, `username` is renamed, `status` moves to the front and
# `finished_at` is added at the end; every file gets LF line endings and is sent gzipped; scorm is
# taken, f2f no longer. The server's port and the retention change too, which shape no file.
V2 = """\
timezone: Europe/London
clients:
  acme:
    name: Acme
    moodle_schema: moodle_acme
    line_ending: lf
    compress: gzip
    feeds:
      scorm: {records: all}
      quiz:
        columns:
          status: Status
          username: Employee ID
          quiz_name: Quiz Name
          score: Score
          finished_at: Finished
      completion: {}
    sftp: {host: sftp.example.org, port: 2022, username: acme, password_env: ACME_PW,
           host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}
    retention_days: 60
"""
VERSION = r"[0-9a-f]{12}"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose clients file was V1 at its first commit and is V2 now."""
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    _git(repo, "init", "-q")
    clients = repo / "config" / "clients.yaml"
    clients.write_text(V1)
    _git(repo, "add", "config/clients.yaml")
    _git(repo, "commit", "-q", "-m", "v1")
    clients.write_text(V2)
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients))
    return clients


def _assert_lines_after_the_first_match(printed: str, pattern: list[str]) -> None:
    """The lines of `printed` after its first each match their regular expression of `pattern`,
    one for one."""
    lines = printed.splitlines()
    assert len(lines[1:]) == len(pattern), printed
    for line, expected in zip(lines[1:], pattern, strict=True):
        assert re.fullmatch(expected, line), (line, expected)


def test_diff_against_a_revision_names_each_column_change_and_option(repo, capsys):
    status, printed, _ = _contract(["acme", "--diff", "HEAD"], capsys)
    assert status == 0
    lines = printed.splitlines()
    assert lines[0] == f"acme: the contracts in {repo} now, against the clients file at HEAD"
    pattern = [
        r"  every file: sent as <name>.csv -> sent as <name>.csv.gz \(compress, encrypt\)",
        rf"  scorm: feed added \(version {VERSION}\)",
        rf"  f2f: feed removed \(was version {VERSION}\)",
        rf"  quiz: version {VERSION} -> {VERSION}",
        r"    added    finished_at as 'Finished' \(column 5\)",
        r"    removed  attempt \('Attempt', was column 3\)",
        r"    renamed  username: 'Username' -> 'Employee ID'",
        r"    moved    status: column 5 -> 1",
        r"    option   line_ending: 'crlf' -> 'lf'",
        rf"  completion: version {VERSION} -> {VERSION}",
        r"    option   line_ending: 'crlf' -> 'lf'",
    ]
    _assert_lines_after_the_first_match(printed, pattern)


def test_diff_with_one_feed_and_no_change(repo, capsys):
    _git(repo.parent.parent, "commit", "-q", "-am", "v2")
    status, printed, _ = _contract(["acme", "--feed", "quiz", "--diff", "HEAD"], capsys)
    assert status == 0
    assert re.fullmatch(rf"  quiz: unchanged \(version {VERSION}\)", printed.splitlines()[1])
    status, printed, _ = _contract(["acme", "--feed", "quiz", "--diff", "HEAD~1"], capsys)
    assert status == 0
    assert [line.strip().split()[0] for line in printed.splitlines()[3:]] == [
        "added",
        "removed",
        "renamed",
        "moved",
        "option",
    ]


def test_diff_refuses_an_unknown_revision_a_client_not_in_it_and_no_repository(
    repo, tmp_path, monkeypatch, capsys
):
    status, _, err = _contract(["acme", "--diff", "nosuchbranch"], capsys)
    assert status == 2
    assert err.strip() == (
        f"error: 'nosuchbranch' is not a revision of the git repository {repo.parent.parent}: "
        "give a commit, branch or tag (e.g. HEAD~1, main, a commit id) that `git log` shows"
    )

    repo.write_text(V2.replace("  acme:", "  zed:").replace("moodle_acme", "moodle_zed"))
    status, _, err = _contract(["zed", "--diff", "HEAD"], capsys)
    assert status == 2
    assert re.fullmatch(
        r"error: client 'zed' is not in the clients file at HEAD \(commit [0-9a-f]{12}\) "
        r"\(clients there: acme\); it may have been added after that revision",
        err.strip(),
    )

    outside = tmp_path / "outside" / "clients.yaml"
    outside.parent.mkdir()
    outside.write_text(V2)
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(outside))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    status, _, err = _contract(["acme", "--diff", "HEAD"], capsys)
    assert status == 2
    assert err.strip() == (
        f"error: the clients file {outside} is not in a git repository, so there is no "
        "revision 'HEAD' of it to compare with; use --diff last to compare with the contracts "
        "of the last files delivered (from the archive)"
    )


# ------------------------------------------------------------------ --diff last


def _archived(root: Path, feed: str, name: str, sha256: str, contract: dict | None) -> None:
    """An archived file's record as the export writes it (with a contract, or as records made
    before contracts were recorded, without), and the ledger line of its delivery."""
    folder = root / "acme" / feed
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("not read")
    record: dict[str, Any] = {
        "client_id": "acme",
        "feed": feed,
        "activity_day": "2026-10-20",
        "file_name": name,
        "rows": 1,
        "bytes": 8,
        "sha256": sha256,
        "made_at": "2026-10-21T03:00:00.000000Z",
    }
    if contract is not None:
        record["contract"] = contract
    (folder / f"{name}.json").write_text(json.dumps(record))
    ledger.record(
        root,
        ledger_delivery(
            name,
            8,
            feed=feed,
            activity_day="2026-10-20",
            sha256=sha256,
            delivered_at="2026-10-21T04:00:00Z",
        ),
    )


def test_diff_last_compares_with_the_contract_recorded_with_the_last_delivered_file(
    tmp_path, monkeypatch, capsys
):
    root = tmp_path / "archive"
    clients = tmp_path / "clients.yaml"
    clients.write_text(V2.replace("timezone: Europe/London", f"archive_dir: {root}"))
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients))
    # The quiz file delivered under V1's quiz contract, written out by hand.
    v1_quiz = {
        "feed": "quiz",
        "prefix": "Quiz",
        "columns": [
            {"column": "username", "header": "Username"},
            {"column": "quiz_name", "header": "Quiz Name"},
            {"column": "attempt", "header": "Attempt"},
            {"column": "score", "header": "Score"},
            {"column": "status", "header": "Status"},
        ],
        "records": None,
        "line_ending": "crlf",
        "byte_order_mark": False,
        "neutralise_formulas": False,
        "file_date": "next_day",
    }
    _archived(root, "quiz", "Quiz20261021.csv", "a" * 64, v1_quiz)
    _archived(root, "completion", "Completion20261021.csv", "b" * 64, None)
    _archived(root, "f2f", "F2F20261021.csv", "c" * 64, None)

    status, printed, _ = _contract(["acme", "--diff", "last"], capsys)

    assert status == 0
    lines = printed.splitlines()
    assert lines[0] == (
        f"acme: the contracts now, against the last file of each feed delivered ({root})"
    )
    pattern = [
        rf"  scorm: never delivered \(version now {VERSION}\)",
        rf"  quiz: version {VERSION} -> {VERSION}; last delivered Quiz20261021.csv at "
        r"2026-10-21T04:00:00Z",
        r"    added    finished_at as 'Finished' \(column 5\)",
        r"    removed  attempt \('Attempt', was column 3\)",
        r"    renamed  username: 'Username' -> 'Employee ID'",
        r"    moved    status: column 5 -> 1",
        r"    option   line_ending: 'crlf' -> 'lf'",
        r"    sent as <name>.csv -> sent as <name>.csv.gz \(compress, encrypt\)",
        r"  completion: Completion20261021.csv \(delivered 2026-10-21T04:00:00Z\): the archive "
        r"record of Completion20261021.csv has no contract: it was made before contract "
        r"versions were recorded",
        r"    sent as <name>.csv -> sent as <name>.csv.gz \(compress, encrypt\)",
        r"  f2f: feed no longer taken \(last delivered F2F20261021.csv at 2026-10-21T04:00:00Z\)",
    ]
    _assert_lines_after_the_first_match(printed, pattern)


# ------------------------------------------------------------------ the contract version


def _client(**changes: Any) -> ClientConfig:
    entry = yaml.safe_load(V1)["clients"]["acme"]
    entry.update(changes)
    return ClientConfig.model_validate(entry)


def test_the_version_is_the_same_in_another_process():
    client = _client()
    here = {feed: contract_of(client, FEEDS[feed]).version for feed in client.feeds}
    program = (
        "import sys, yaml\n"
        "from orchestration.clients import ClientConfig\n"
        "from orchestration.export.contract import contract_of\n"
        "from orchestration.feeds import FEEDS\n"
        "c = ClientConfig.model_validate(yaml.safe_load(sys.stdin.read())['clients']['acme'])\n"
        "print(' '.join(contract_of(c, FEEDS[f]).version for f in c.feeds))\n"
    )
    for seed in ("1", "2"):  # another str hash seed: nothing may hang on set or dict order
        done = subprocess.run(
            [sys.executable, "-c", program],
            input=V1,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=PROJECT_ROOT,
        )
        assert done.stdout.split() == list(here.values())


@pytest.mark.parametrize(
    "change",
    [
        {"feeds": {"quiz": {"columns": {"username": "Username", "quiz_name": "Quiz Name"}}}},
        {
            "feeds": {
                "quiz": {
                    "columns": {
                        "username": "Login",
                        "quiz_name": "Quiz Name",
                        "attempt": "Attempt",
                        "score": "Score",
                        "status": "Status",
                    }
                }
            }
        },
        {
            "feeds": {
                "quiz": {
                    "columns": {
                        "quiz_name": "Quiz Name",
                        "username": "Username",
                        "attempt": "Attempt",
                        "score": "Score",
                        "status": "Status",
                    }
                }
            }
        },
        {"line_ending": "lf"},
        {"byte_order_mark": True},
        {"neutralise_formulas": True},
        {"file_date": "activity_day"},
    ],
    ids=["column removed", "renamed", "reordered", "lf", "bom", "formulas", "file date"],
)
def test_every_shape_change_changes_the_version(change):
    before = contract_of(_client(), FEEDS["quiz"]).version
    assert contract_of(_client(**change), FEEDS["quiz"]).version != before


def test_records_changes_the_scorm_version():
    scorm = FEEDS["scorm"]
    default = _client(feeds={"scorm": {}})
    assert contract_of(_client(feeds={"scorm": {"records": "all"}}), scorm).version != (
        contract_of(default, scorm).version
    )
    # Naming the default changes nothing: the file is the same.
    assert contract_of(
        _client(feeds={"scorm": {"records": "completed_or_passed"}}), scorm
    ).version == (contract_of(default, scorm).version)


def test_server_retention_alerts_and_time_zone_leave_the_version_alone():
    before = contract_of(_client(), FEEDS["quiz"]).version
    sftp = yaml.safe_load(V1)["clients"]["acme"]["sftp"]
    for change in (
        {"sftp": {**sftp, "host": "sftp2.example.org", "port": 2022, "directory": "/in"}},
        {"retention_days": 90},
        {"alerts": {"email": ["ops@acme.example"]}},
        {"timezone": "America/New_York"},
        {"name": "Acme Renamed"},
    ):
        assert contract_of(_client(**change), FEEDS["quiz"]).version == before, change


# ------------------------------------------------------------------ diff, as a function


def test_diff_reports_one_moved_column_not_every_column_it_jumped_over():
    old = contract_of(_client(), FEEDS["quiz"])
    new = contract_of(
        _client(
            feeds={
                "quiz": {
                    "columns": {
                        "score": "Score",
                        "username": "Username",
                        "quiz_name": "Quiz Name",
                        "attempt": "Attempt",
                        "status": "Status",
                    }
                }
            }
        ),
        FEEDS["quiz"],
    )
    change = diff(old, new)
    assert change.moved == (ColumnMoved("score", 4, 1),)
    assert (change.added, change.removed, change.renamed, change.options) == ((), (), (), ())
    assert diff(old, old).changed is False


def test_diff_of_the_two_revisions_as_values():
    old = contract_of(_client(), FEEDS["quiz"])
    new_client = ClientConfig.model_validate(yaml.safe_load(V2)["clients"]["acme"])
    change = diff(old, contract_of(new_client, FEEDS["quiz"]))
    assert change.added == (ColumnAdded("finished_at", "Finished", 5),)
    assert change.removed == (ColumnRemoved("attempt", "Attempt", 3),)
    assert change.renamed == (ColumnRenamed("username", "Username", "Employee ID"),)
    assert change.moved == (ColumnMoved("status", 5, 1),)
    assert change.options == (OptionChanged("line_ending", "crlf", "lf"),)


def test_a_contract_reads_back_from_its_dict_and_a_broken_one_is_named():
    contract = contract_of(_client(), FEEDS["quiz"])
    assert contract_from_dict(contract.as_dict()) == contract
    broken = contract.as_dict()
    del broken["line_ending"]
    with pytest.raises(ValueError, match="the contract has no line_ending"):
        contract_from_dict(broken)
