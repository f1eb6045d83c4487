"""The file checks can fail: a tampered file fails the right check, and is not delivered.

A real Completion file is exported from a small mart on the embedded PostgreSQL, then changed on
disk the way a writer bug would change it (a dropped row, a renamed column, a value without its
quotes, a bare LF in a CRLF file); each change fails its check with a description that says
where. The strict reader is also tested on its own, at every block size, against the faults the
contract rules out. Expected values come from the fixture's rows and the bytes of the file, not
from the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
import yaml

from ods_local.sftp_server import LocalSftpServer
from orchestration.clients import load_clients
from orchestration.defs.client_files import build_client_files_asset
from orchestration.defs.file_checks import (
    HEADER_MATCHES_CONFIG,
    ROWS_MATCH_MART,
    ContractUnreadable,
    count_mart_rows,
    evaluate_file_checks,
    written_contract,
)
from orchestration.defs.partitions import client_day_key, client_day_partitions
from orchestration.defs.resources import ArchiveResource, SftpSecrets, WarehouseResource
from orchestration.export.archive import ArchivedFile
from orchestration.export.feed_file import export_feed_file
from orchestration.export.strict_csv import CsvContract, MalformedCsv, read_back
from orchestration.feeds import COMPLETION, SCORM
from tests.e2e_support import acme_entry, add_sftp_account, client_entry, write_clients_file
from tests.expected_feeds import DEFAULT_HEADERS
from tests.files_step_support import create_completion_mart

DAY = dt.date(2026, 11, 27)
CRLF = CsvContract(line_ending=b"\r\n", byte_order_mark=False)
LF = CsvContract(line_ending=b"\n", byte_order_mark=False)

# user_id, username, idnumber, email, firstname, lastname, course_id, shortname, name
ROWS = [
    (7, "zoe", "E7", "zoe@example.org", "Zoë", 'Smith, "Jr"', 3, "FS", 'Fire "\r\n" Safety'),
    (3, "amy", None, "amy@example.org", "Amy", "O'Brien", 2, "GDPR", "Data, Privacy"),
    (5, "bob", "E5", "bob@example.org", "Bob", "Li", 2, "GDPR", 'Line\nbreak and ""'),
]


# --- the strict reader on its own ---------------------------------------------------------------

GOOD = (
    '"A","B ""b""","Ç"\r\n"1","x, y","é"\r\n"","""","a""\r\nb"\r\n"\r\n","\n","end"""\r\n'
).encode()


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "file.csv"
    path.write_bytes(data)
    return path


def test_the_reader_gives_the_same_header_and_count_at_every_block_size(tmp_path):
    path = _write(tmp_path, GOOD)
    for block_bytes in range(1, len(GOOD) + 2):
        shape = read_back(path, CRLF, block_bytes=block_bytes)
        assert shape.header == ["A", 'B "b"', "Ç"], block_bytes
        assert shape.data_rows == 3, block_bytes
        assert shape.bytes == len(GOOD)


def test_a_header_only_file_has_no_data_rows_and_an_lf_file_reads_with_the_lf_contract(tmp_path):
    assert read_back(_write(tmp_path, b'"A","B"\r\n'), CRLF).data_rows == 0
    lf_file = _write(tmp_path, b'"A","B"\n"1","x\r\ny"\n"2",""\n')
    for block_bytes in (1, 2, 3, 5, 1 << 22):
        assert read_back(lf_file, LF, block_bytes=block_bytes).data_rows == 2


def test_the_reader_agrees_with_pythons_csv_writer_on_random_values(tmp_path):
    pieces = ["a", "é", ",", '"', '""', "\r", "\n", "\r\n", " ", "'", "=1"]
    rng = random.Random(15)
    for line_ending in ("\r\n", "\n"):
        rows = [
            ["".join(rng.choices(pieces, k=rng.randrange(6))) for _ in range(4)] for _ in range(300)
        ]
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator=line_ending).writerows(rows)
        path = _write(tmp_path, text.getvalue().encode())
        contract = CsvContract(line_ending.encode(), byte_order_mark=False)
        for block_bytes in (1, 5, 64, 1000, 1 << 22):
            shape = read_back(path, contract, block_bytes=block_bytes)
            assert (shape.header, shape.data_rows) == (rows[0], len(rows) - 1)


FAULTS = [
    # (file bytes, contract, reason, where it breaks: the bytes before the fault)
    (b'"A","B"\r\n"1",2\r\n', CRLF, "not enclosed in double quotes", b'"A","B"\r\n"1",'),
    (b'"A","B"\r\n"1",\r\n', CRLF, "an empty value without its double quotes", b'"A","B"\r\n"1",'),
    (b'"A","B"\r\n"1","2"\n', CRLF, "LF alone", b'"A","B"\r\n"1","2"'),
    (b'"A","B"\n"1","2"\r\n', LF, "ends with CRLF", b'"A","B"\n"1","2"'),
    (b'"A","B"\r\n"1","2"', CRLF, "no line ending", b'"A","B"\r\n"1","2"'),
    (b'"A","B"\r\n"1","2\r\n', CRLF, "never closed", b'"A","B"\r\n"1",'),
    (b'"A","B"\r\n"1","2"\r\nxyz', CRLF, "not enclosed", b'"A","B"\r\n"1","2"\r\n'),
    (b'"A","B"\r\n"1"\r\n', CRLF, "only 1 of the header's 2 values", b'"A","B"\r\n"1"'),
    (b'"A","B"\r\n"1","2","3"\r\n', CRLF, "more values than", b'"A","B"\r\n"1","2"'),
    (b'"A","B"\r\n"1","a"b"\r\n', CRLF, "not doubled", b'"A","B"\r\n"1","a"'),
    (b'"A","B"\r\n"1","\xe9"\r\n', CRLF, "not UTF-8", b'"A","B"\r\n"1","'),
    (b'\xef\xbb\xbf"A"\r\n', CRLF, "starts with a byte-order mark", b""),
    (b'"A"\r\n', CsvContract(b"\r\n", True), "no byte-order mark", b""),
    (b"", CRLF, "no header row", b""),
]


@pytest.mark.parametrize(("data", "contract", "reason", "before"), FAULTS)
def test_the_reader_names_the_fault_and_where_it_is(tmp_path, data, contract, reason, before):
    path = _write(tmp_path, data)
    for block_bytes in (1, 2, 3, 7, 1 << 22):
        with pytest.raises(MalformedCsv) as raised:
            read_back(path, contract, block_bytes=block_bytes)
        assert reason in raised.value.reason, (block_bytes, raised.value)
        assert raised.value.offset == len(before), (block_bytes, raised.value)
        assert raised.value.line == 1 + before.count(b"\n"), (block_bytes, raised.value)


def test_a_bom_file_reads_with_the_bom_contract(tmp_path):
    path = _write(tmp_path, b'\xef\xbb\xbf"A"\r\n"1"\r\n')
    for block_bytes in (1, 2, 4, 1 << 22):
        shape = read_back(path, CsvContract(b"\r\n", True), block_bytes=block_bytes)
        assert (shape.header, shape.data_rows) == (["A"], 1)


# --- the checks on a real exported file ---------------------------------------------------------


def _clients(path: Path, **acme: Any) -> Path:
    return write_clients_file(path, {"acme": acme_entry(**acme)})


def _fill_mart(pg) -> None:
    nine = dt.datetime(2026, 11, 27, 9)
    create_completion_mart(
        pg,
        [
            *(("acme", DAY, *row, DAY, nine) for row in ROWS),
            ("globex", DAY, *ROWS[0], DAY, nine),
            ("acme", DAY - dt.timedelta(days=1), *ROWS[0], DAY, None),
        ],
    )


@pytest.fixture(scope="module")
def mart(module_pg):
    _fill_mart(module_pg)
    return module_pg


@pytest.fixture
def exported(mart, tmp_path, monkeypatch) -> Iterator[ArchivedFile]:
    """acme's Completion file of DAY in the archive, with the clients file it was made from."""
    clients_file = _clients(tmp_path / "clients.yaml")
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients_file))
    client = load_clients(clients_file).clients["acme"]
    with psycopg.connect(mart.conninfo()) as conn:
        yield export_feed_file(
            conn,
            feed=COMPLETION,
            client_id="acme",
            client=client,
            day=DAY,
            archive_root=tmp_path / "archive",
        )


def _checks(pg, made: ArchivedFile) -> dict[str, dg.AssetCheckResult]:
    client = load_clients().clients["acme"]
    with psycopg.connect(pg.conninfo()) as conn:
        results = evaluate_file_checks(
            conn, COMPLETION, "acme", client, DAY, made, asset_key=dg.AssetKey("completion_file")
        )
        return {str(result.check_name): result for result in results}


def _tamper(made: ArchivedFile, old: bytes, new: bytes) -> bytes:
    data = made.path.read_bytes()
    assert data.count(old) == 1, old
    made.path.write_bytes(data.replace(old, new))
    return data


def _value(result: dg.AssetCheckResult, key: str) -> Any:
    return result.metadata[key].value


def test_the_untampered_file_passes_both_checks(mart, exported):
    checks = _checks(mart, exported)
    assert all(check.passed for check in checks.values()), checks
    rows = checks[ROWS_MATCH_MART]
    acme_rows = sum(1 for _ in ROWS)  # every fixture row is acme's on DAY
    assert (_value(rows, "file_rows"), _value(rows, "mart_rows")) == (acme_rows, acme_rows)
    assert _value(rows, "copied_rows") == acme_rows
    assert _value(checks[HEADER_MATCHES_CONFIG], "file_header") == ", ".join(
        DEFAULT_HEADERS["completion"]
    )


def test_a_dropped_row_fails_rows_match_mart(mart, exported):
    original = exported.path.read_bytes()
    second_row = b'"bob","E5","Bob","Li","bob@example.org","Line\nbreak and """"","2026-11-27"\r\n'
    _tamper(exported, second_row, b"")
    assert len(exported.path.read_bytes()) == len(original) - len(second_row)
    checks = _checks(mart, exported)
    rows = checks[ROWS_MATCH_MART]
    assert not rows.passed
    assert rows.description is not None
    assert "the file has 2 data rows but course_completions has 3" in rows.description
    assert "the export's COPY sent 3" in rows.description
    assert "client acme, feed completion" in rows.description
    assert str(exported.path) in rows.description
    assert checks[HEADER_MATCHES_CONFIG].passed


def test_a_renamed_column_fails_header_matches_config(mart, exported):
    _tamper(exported, b'"Email"', b'"E-mail"')
    checks = _checks(mart, exported)
    header = checks[HEADER_MATCHES_CONFIG]
    assert not header.passed
    assert header.description is not None
    assert "column 5: file 'E-mail', clients file 'Email'" in header.description
    assert checks[ROWS_MATCH_MART].passed


def test_a_value_without_its_quotes_fails_rows_match_mart_at_its_byte(mart, exported):
    data = _tamper(exported, b'"amy"', b"amy")
    checks = _checks(mart, exported)
    rows = checks[ROWS_MATCH_MART]
    assert not rows.passed
    assert rows.description is not None
    assert "a value not enclosed in double quotes: found b'a'" in rows.description
    at = data.index(b'"amy"')
    assert _value(rows, "broken_at_byte") == at
    assert _value(rows, "broken_at_line") == 1 + data[:at].count(b"\n")
    assert f"byte {at}, line 2, record 2" in rows.description
    assert checks[HEADER_MATCHES_CONFIG].passed  # the header before it reads fine


def test_a_bare_lf_record_end_in_a_crlf_file_fails_rows_match_mart(mart, exported):
    data = _tamper(exported, b'"2026-11-27"\r\n"bob"', b'"2026-11-27"\n"bob"')
    rows = _checks(mart, exported)[ROWS_MATCH_MART]
    assert not rows.passed
    assert rows.description is not None
    assert "a record ends with LF alone; the contract's line ending is CRLF" in rows.description
    assert _value(rows, "broken_at_byte") == data.index(b'"2026-11-27"\r\n"bob"') + 12


def test_a_mart_row_the_file_lacks_fails_rows_match_mart(pg, tmp_path, monkeypatch):
    _fill_mart(pg)
    clients_file = _clients(tmp_path / "clients.yaml")
    monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients_file))
    client = load_clients(clients_file).clients["acme"]
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        made = export_feed_file(
            conn, feed=COMPLETION, client_id="acme", client=client, day=DAY, archive_root=tmp_path
        )
        conn.execute(
            "insert into marts.course_completions (client_id, report_date, user_id, course_id) "
            "values ('acme', %s, 99, 1)",
            [DAY],
        )
    rows = _checks(pg, made)[ROWS_MATCH_MART]
    assert not rows.passed
    assert (_value(rows, "file_rows"), _value(rows, "mart_rows")) == (3, 4)


def test_a_manifest_count_that_is_not_the_files_fails_rows_match_mart(mart, exported):
    """The COPY's own count (recorded in the manifest) must agree with the file read back."""
    rows = _checks(mart, replace(exported, rows=2))[ROWS_MATCH_MART]
    assert not rows.passed
    assert rows.description is not None
    assert "the file has 3 data rows but the export's COPY sent 2" in rows.description


def test_the_contract_is_read_from_the_clients_file_with_designs_defaults(tmp_path):
    path = write_clients_file(
        tmp_path / "clients.yaml",
        {
            "acme": {"feeds": {"completion": None, "scorm": {"records": "all"}}},
            "globex": {
                "line_ending": "lf",
                "byte_order_mark": True,
                "feeds": {"scorm": {"columns": {"status": "State", "user_id": "Learner"}}},
            },
        },
    )
    acme = written_contract("acme", COMPLETION, path)
    assert acme.headers == DEFAULT_HEADERS["completion"]
    assert acme.statuses is None
    assert acme.csv == CsvContract(line_ending=b"\r\n", byte_order_mark=False)
    assert written_contract("acme", SCORM, path).statuses is None
    globex = written_contract("globex", SCORM, path)
    assert globex.headers == ["State", "Learner"]
    assert globex.statuses == ("completed", "passed")  # DESIGN.md: SCORM's default records
    assert globex.csv == CsvContract(line_ending=b"\n", byte_order_mark=True)
    with pytest.raises(ContractUnreadable, match="has no feed 'completion' for client 'globex'"):
        written_contract("globex", COMPLETION, path)
    with pytest.raises(ContractUnreadable, match="has no client 'initech'"):
        written_contract("initech", COMPLETION, path)


def test_the_mart_count_keeps_only_the_statuses_of_the_records_choice(pg):
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute("create schema marts")
        conn.execute(
            "create table marts.scorm_sco_attempts (client_id text, report_date date, status text)"
        )
        for client_id, day, status in [
            ("acme", DAY, "completed"),
            ("acme", DAY, "passed"),
            ("acme", DAY, "incomplete"),
            ("acme", DAY - dt.timedelta(days=1), "passed"),
            ("globex", DAY, "passed"),
        ]:
            conn.execute(
                "insert into marts.scorm_sco_attempts values (%s, %s, %s)", [client_id, day, status]
            )
        assert count_mart_rows(conn, SCORM, "acme", DAY, ("completed", "passed")) == 2
        assert count_mart_rows(conn, SCORM, "acme", DAY, None) == 3


def test_the_header_is_judged_by_the_clients_file_as_written(mart, exported, tmp_path):
    """An operator renamed a column in the clients file after the code location loaded it: the
    file made with the old headers fails, and the description says to reload."""
    _clients(
        tmp_path / "clients.yaml",
        feeds={"completion": {"columns": {"username": "Login", "course_name": "Course"}}},
    )
    header = _checks_with_loaded(mart, exported, tmp_path / "loaded.yaml")[HEADER_MATCHES_CONFIG]
    assert not header.passed
    assert header.description is not None
    assert "column 1: file 'Username', clients file 'Login'" in header.description
    assert "the file has 7 columns, the clients file 2" in header.description
    assert "changed after the code location loaded it" in header.description


def _checks_with_loaded(pg, made: ArchivedFile, loaded: Path) -> dict[str, dg.AssetCheckResult]:
    """The checks with the configuration as loaded before the clients file changed."""
    client = load_clients(_clients(loaded)).clients["acme"]
    with psycopg.connect(pg.conninfo()) as conn:
        results = evaluate_file_checks(
            conn, COMPLETION, "acme", client, DAY, made, asset_key=dg.AssetKey("completion_file")
        )
        return {str(result.check_name): result for result in results}


def test_a_file_that_fails_a_check_is_not_delivered(mart, tmp_path, monkeypatch):
    """Through the real client_files step: the clients file now says LF and names a column
    differently than the configuration the code location loaded, so the file it writes (CRLF,
    old header) fails both blocking checks; nothing reaches the client's folder and the step
    fails naming the checks. Then, with the clients file as loaded, the same step delivers."""
    server = LocalSftpServer(tmp_path / "sftp")
    key = add_sftp_account(server, tmp_path / "keys", "acme")
    server.start()
    try:
        entry = client_entry("moodle_acme", server, "acme", key)
        clients_file = write_clients_file(
            tmp_path / "clients.yaml", {"acme": entry}, archive_dir=str(tmp_path / "archive")
        )
        as_loaded = clients_file.read_text()
        config = load_clients(clients_file)
        files = build_client_files_asset(
            config,
            {"completion": dg.AssetKey(["marts", COMPLETION.mart])},
            client_day_partitions(config),
        )
        raw = yaml.safe_load(as_loaded)
        raw["clients"]["acme"]["line_ending"] = "lf"
        raw["clients"]["acme"]["feeds"]["completion"] = {"columns": {"username": "Login"}}
        clients_file.write_text(yaml.safe_dump(raw, sort_keys=False))
        for name, value in mart.libpq_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ODS_CLIENTS_FILE", str(clients_file))
        folder = server.root / "acme" / "outbound"

        failed = _run(files, tmp_path)
        assert not failed.success
        verdicts = {e.check_name: e.passed for e in failed.get_asset_check_evaluations()}
        assert verdicts == {ROWS_MATCH_MART: False, HEADER_MATCHES_CONFIG: False}
        assert sorted(p.name for p in folder.iterdir()) == []
        failure = failed.get_step_failure_events()[0].step_failure_data.error
        assert failure is not None
        assert "failed its check rows_match_mart, header_matches_config" in failure.message
        assert "it is kept in the archive" in failure.message

        clients_file.write_text(as_loaded)
        delivered = _run(files, tmp_path)
        assert delivered.success
        assert sorted(p.name for p in folder.iterdir()) == ["Completion20261128.csv"]
    finally:
        server.stop()


def _run(files: dg.AssetsDefinition, tmp_path: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [files],
        partition_key=client_day_key("acme", DAY),
        resources={
            "warehouse_db": WarehouseResource(),
            "archive_dir": ArchiveResource(root=str(tmp_path / "archive")),
            "sftp_secrets": SftpSecrets(),
        },
        raise_on_error=False,
    )
