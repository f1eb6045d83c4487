"""The CSV contract: quoting, NULLs, line endings, BOM and formula neutralising, on a real PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import psycopg
import pytest

from orchestration.clients.config import ClientConfig
from orchestration.export.csv_stream import record_ends
from orchestration.export.feed_file import export_feed_file
from orchestration.feeds import COMPLETION
from tests.e2e_support import acme_entry
from tests.expected_feeds import DEFAULT_HEADERS
from tests.files_step_support import create_completion_mart

DAY = dt.date(2026, 11, 27)

ROWS = [
    # user_id, username, idnumber, email, firstname, lastname, course_id, shortname, name,
    # completion_date, completed_at
    (
        7,
        "zoe",
        "E7",
        "zoe@example.org",
        "Zoë",
        'Smith, "Jr"',
        3,
        "FS",
        "Fire\nSafety",
        DAY,
        dt.datetime(2026, 11, 27, 23, 30, 5),
    ),
    (
        3,
        "amy",
        None,
        "amy@example.org",
        "Amy",
        "O'Brien",
        2,
        "GDPR",
        "Data, Privacy",
        DAY,
        dt.datetime(2026, 11, 27, 0, 0, 0),
    ),
    (
        5,
        "=cmd",
        "-42",
        "+x@example.org",
        "@me",
        "-lead",
        2,
        "GDPR",
        "Data, Privacy",
        DAY,
        dt.datetime(2026, 11, 27, 12, 1, 2),
    ),
]


def _client(**overrides: object) -> ClientConfig:
    settings = acme_entry(**overrides)
    return ClientConfig.model_validate(settings)


@pytest.fixture(scope="module")
def mart(module_pg):
    create_completion_mart(
        module_pg, [*(("acme", DAY, *row) for row in ROWS), ("globex", DAY, *ROWS[0])]
    )
    return module_pg


def _export(pg, tmp_path: Path, client: ClientConfig, day: dt.date = DAY) -> bytes:
    with psycopg.connect(pg.conninfo()) as conn:
        made = export_feed_file(
            conn, feed=COMPLETION, client_id="acme", client=client, day=day, archive_root=tmp_path
        )
    return made.path.read_bytes()


def test_every_value_and_the_header_are_quoted_with_crlf_and_null_as_empty(mart, tmp_path):
    client = _client(
        feeds={
            "completion": {
                "columns": {
                    "user_id": "User ID",
                    "idnumber": "ID Number",
                    "lastname": "Last Name",
                    "course_name": "Course",
                    "completed_at": "Completed At",
                }
            }
        }
    )
    data = _export(mart, tmp_path, client)
    assert data == (
        b'"User ID","ID Number","Last Name","Course","Completed At"\r\n'
        b'"3","","O\'Brien","Data, Privacy","2026-11-27 00:00:00"\r\n'
        b'"5","-42","-lead","Data, Privacy","2026-11-27 12:01:02"\r\n'
        b'"7","E7","Smith, ""Jr""","Fire\nSafety","2026-11-27 23:30:05"\r\n'
    )


def test_default_columns_parse_back_with_a_strict_reader(mart, tmp_path):
    data = _export(mart, tmp_path, _client())
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))
    assert rows[0] == DEFAULT_HEADERS["completion"]
    expected = [
        [r[1], r[2] or "", r[4], r[5], r[3], r[8], r[9].isoformat()]
        for r in sorted(ROWS, key=lambda r: (r[0], r[6]))
    ]
    assert rows[1:] == expected
    assert data.endswith(b"\r\n")


def test_lf_option_and_byte_order_mark(mart, tmp_path):
    data = _export(mart, tmp_path, _client(line_ending="lf", byte_order_mark=True))
    assert data.startswith(b'\xef\xbb\xbf"Username"')
    assert b"\r" not in data
    assert data.count(b"\n") == 1 + len(ROWS) + 1  # header, rows, and the newline inside a value


def test_formulas_are_neutralised_only_when_the_client_opts_in(mart, tmp_path):
    plain = _export(mart, tmp_path / "plain", _client())
    assert b'"=cmd"' in plain and b'"+x@example.org"' in plain
    safe = _export(mart, tmp_path / "safe", _client(neutralise_formulas=True))
    assert b'"\'=cmd"' in safe
    assert b'"\'+x@example.org"' in safe
    assert b'"\'@me"' in safe
    assert b'"\'-lead"' in safe
    assert b'"-42"' in safe  # a plain number stays as it is


def test_an_empty_day_gives_a_header_only_file(mart, tmp_path):
    data = _export(mart, tmp_path, _client(), day=DAY - dt.timedelta(days=1))
    assert data == (
        b'"Username","ID Number","First Name","Last Name","Email","Course Name",'
        b'"Completion Date"\r\n'
    )


def test_file_is_named_for_the_delivery_day_or_the_activity_day(mart, tmp_path):
    with psycopg.connect(mart.conninfo()) as conn:
        next_day = export_feed_file(
            conn,
            feed=COMPLETION,
            client_id="acme",
            client=_client(),
            day=DAY,
            archive_root=tmp_path,
        )
        same_day = export_feed_file(
            conn,
            feed=COMPLETION,
            client_id="acme",
            client=_client(file_date="activity_day"),
            day=DAY,
            archive_root=tmp_path,
        )
    assert next_day.file_name == "Completion20261128.csv"
    assert same_day.file_name == "Completion20261127.csv"
    assert next_day.rows == 3


def test_only_record_ends_become_crlf_when_a_value_holds_a_newline():
    rows = [b'"a","b"\n', b'"x\n""y""\n","z"\n', b'"",""\n']
    block = bytearray(b"".join(rows))
    assert record_ends(block, 3, b"\r\n") == b'"a","b"\r\n"x\n""y""\n","z"\r\n"",""\r\n'
    assert record_ends(bytearray(rows[0] + rows[2]), 2, b"\r\n") == b'"a","b"\r\n"",""\r\n'
    assert record_ends(block, 3, b"\n") == b"".join(rows)
