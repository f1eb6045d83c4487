"""The ledger of deliveries: what retention may consider ours. Real files, real processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.synchronize
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import TypedDict

import pytest

from orchestration.delivery.ledger import Delivery, delivered_sizes, record

ACME = Delivery(
    client_id="acme",
    feed="completion",
    activity_day="2026-11-27",
    file_name="Completion20261128.csv",
    host="sftp.acme.example",
    port=22,
    username="ods",
    directory="/outbound",
    bytes=1234,
    sha256="a" * 64,
    delivered_at="2026-11-28T04:01:02.000003Z",
    run_id="run-1",
)


class Where(TypedDict):
    host: str
    port: int
    username: str
    directory: str


WHERE = Where(host="sftp.acme.example", port=22, username="ods", directory="/outbound")


def _ledger(root: Path, client_id: str = "acme") -> Path:
    return root / client_id / "deliveries.jsonl"


def test_a_recorded_delivery_is_one_json_line_and_reads_back(tmp_path: Path) -> None:
    record(tmp_path, ACME)

    lines = _ledger(tmp_path).read_text().splitlines(keepends=True)
    assert len(lines) == 1
    assert lines[0].endswith("\n")
    assert json.loads(lines[0]) == asdict(ACME)
    assert delivered_sizes(tmp_path, "acme", **WHERE) == {"Completion20261128.csv": {1234}}


def test_no_ledger_means_nothing_was_delivered(tmp_path: Path) -> None:
    assert delivered_sizes(tmp_path, "acme", **WHERE) == {}


def test_every_size_delivered_under_a_name_is_kept(tmp_path: Path) -> None:
    record(tmp_path, ACME)
    record(tmp_path, replace(ACME, bytes=999, run_id=None))  # a rebuild with other rows
    record(tmp_path, ACME)  # a re-send of the first
    record(tmp_path, replace(ACME, file_name="Completion20261129.csv", bytes=10))

    assert delivered_sizes(tmp_path, "acme", **WHERE) == {
        "Completion20261128.csv": {1234, 999},
        "Completion20261129.csv": {10},
    }


def test_only_deliveries_to_that_exact_folder_count(tmp_path: Path) -> None:
    record(tmp_path, ACME)
    record(tmp_path, replace(ACME, file_name="OtherPort.csv", port=2222))
    record(tmp_path, replace(ACME, file_name="OtherUser.csv", username="Ods"))
    record(tmp_path, replace(ACME, file_name="OtherHost.csv", host="sftp2.acme.example"))
    record(tmp_path, replace(ACME, file_name="Relative.csv", directory="outbound"))
    record(tmp_path, replace(ACME, file_name="Sub.csv", directory="/outbound/sub"))

    assert delivered_sizes(tmp_path, "acme", **WHERE) == {"Completion20261128.csv": {1234}}
    other_port = Where(host="sftp.acme.example", port=2222, username="ods", directory="/outbound")
    assert delivered_sizes(tmp_path, "acme", **other_port) == {"OtherPort.csv": {1234}}
    relative = Where(host="sftp.acme.example", port=22, username="ods", directory="outbound")
    assert delivered_sizes(tmp_path, "acme", **relative) == {"Relative.csv": {1234}}


def test_a_folder_reached_through_dot_dot_is_not_assumed_to_be_the_same(tmp_path: Path) -> None:
    # /data may be a symbolic link on the server, so /data/../outbound need not be /outbound.
    record(tmp_path, replace(ACME, directory="/data/../outbound"))

    assert delivered_sizes(tmp_path, "acme", **WHERE) == {}


@pytest.mark.parametrize(
    ("recorded_host", "recorded_directory", "asked_host", "asked_directory"),
    [
        ("SFTP.Acme.Example", "/outbound/", "sftp.acme.example", "/outbound"),
        ("sftp.acme.example", "/outbound", "SFTP.ACME.EXAMPLE", "//outbound/./"),
        ("sftp.acme.example", "/./outbound/", "sftp.acme.example", "/outbound//"),
        ("sftp.acme.example", "", "sftp.acme.example", "."),
        ("sftp.acme.example", "./", "sftp.acme.example", ""),
    ],
)
def test_host_case_and_folder_spelling_do_not_matter(
    tmp_path: Path,
    recorded_host: str,
    recorded_directory: str,
    asked_host: str,
    asked_directory: str,
) -> None:
    record(tmp_path, replace(ACME, host=recorded_host, directory=recorded_directory))

    found = delivered_sizes(
        tmp_path, "acme", host=asked_host, port=22, username="ods", directory=asked_directory
    )

    assert found == {"Completion20261128.csv": {1234}}


def test_a_half_written_last_line_is_skipped_with_a_warning_and_later_records_still_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record(tmp_path, ACME)
    record(tmp_path, replace(ACME, file_name="Completion20261129.csv", bytes=7))
    ledger = _ledger(tmp_path)
    full_line = ledger.read_bytes().splitlines()[0]
    with ledger.open("ab") as crashed:  # a crash part way through writing a third line
        crashed.write(full_line[: len(full_line) // 2])

    with caplog.at_level(logging.WARNING, logger="orchestration.delivery.ledger"):
        assert delivered_sizes(tmp_path, "acme", **WHERE) == {
            "Completion20261128.csv": {1234},
            "Completion20261129.csv": {7},
        }
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"line 3 of the delivery ledger {ledger}" in warnings[0]
    assert "not valid JSON" in warnings[0]

    # The next delivery is not glued onto the broken line (and lost with it).
    record(tmp_path, replace(ACME, file_name="Completion20261130.csv", bytes=8))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="orchestration.delivery.ledger"):
        assert delivered_sizes(tmp_path, "acme", **WHERE)["Completion20261130.csv"] == {8}
    assert [r.getMessage() for r in caplog.records if "line 3 of" in r.getMessage()]


def test_lines_that_are_not_delivery_records_are_skipped_each_with_its_line_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    record(tmp_path, ACME)
    good = asdict(replace(ACME, file_name="Good.csv"))
    with _ledger(tmp_path).open("a") as ledger:
        ledger.write("[1, 2]\n")  # line 2: JSON, not an object
        ledger.write(json.dumps({**good, "bytes": "1234"}) + "\n")  # line 3: size not a number
        ledger.write(json.dumps({**good, "bytes": True}) + "\n")  # line 4: a bool is no size
        ledger.write(json.dumps({k: v for k, v in good.items() if k != "host"}) + "\n")  # 5
        ledger.write("\n")  # a blank line is no record and no fault
        ledger.write(json.dumps({**good, "client_id": "globex"}) + "\n")  # 7: another client's
    with _ledger(tmp_path).open("ab") as ledger:
        ledger.write(b"\xff\xfe not utf-8\n")  # line 8

    with caplog.at_level(logging.WARNING, logger="orchestration.delivery.ledger"):
        found = delivered_sizes(tmp_path, "acme", **WHERE)

    assert found == {"Completion20261128.csv": {1234}}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [int(w.split("line ")[1].split(" ")[0]) for w in warnings] == [2, 3, 4, 5, 7, 8]
    assert "'host' is missing" in warnings[3]
    assert "client globex" in warnings[4]


def test_keys_a_newer_version_adds_are_ignored_and_run_id_may_be_absent(tmp_path: Path) -> None:
    line = {k: v for k, v in asdict(ACME).items() if k != "run_id"}
    line["verified_by"] = "read-back"
    line["attempt"] = {"number": 2}
    _ledger(tmp_path).parent.mkdir(parents=True)
    _ledger(tmp_path).write_text(json.dumps(line) + "\n")

    assert delivered_sizes(tmp_path, "acme", **WHERE) == {"Completion20261128.csv": {1234}}


def test_a_client_id_that_is_not_one_folder_name_is_refused(tmp_path: Path) -> None:
    for client_id in ["../globex", "", "..", "a/b"]:
        with pytest.raises(ValueError, match="cannot name a folder"):
            record(tmp_path, replace(ACME, client_id=client_id))
    with pytest.raises(ValueError, match="bare file name"):
        record(tmp_path, replace(ACME, file_name="sub/Completion20261128.csv"))
    with pytest.raises(TypeError, match="bytes must be an int"):
        record(tmp_path, replace(ACME, bytes="1234"))  # type: ignore[arg-type]
    assert not (tmp_path / "acme").exists()


# --- appends at the same time -----------------------------------------------------------------

PROCESSES = 4
RECORDS_PER_WRITER = 250


def _append_many(root: str, writer: str, start: multiprocessing.synchronize.Event) -> None:
    """Child process (or thread): wait for the start signal, then append RECORDS_PER_WRITER lines,
    each long enough (about 1.3 kB) that a write split in two would show."""
    start.wait(30)
    for number in range(RECORDS_PER_WRITER):
        record(
            Path(root),
            replace(
                ACME,
                file_name=f"{writer}-{number}.csv",
                bytes=number,
                run_id=writer + "x" * 1000,
            ),
        )


def test_processes_appending_at_once_lose_no_line_and_mix_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [
        context.Process(target=_append_many, args=(str(tmp_path), f"p{n}", start))
        for n in range(PROCESSES)
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0] * PROCESSES

    _check_every_line(tmp_path, [f"p{n}" for n in range(PROCESSES)], caplog)


def test_threads_appending_at_once_lose_no_line_and_mix_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    start = threading.Event()
    names = [f"t{n}" for n in range(6)]
    threads = [
        threading.Thread(target=_append_many, args=(str(tmp_path), name, start)) for name in names
    ]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(120)

    _check_every_line(tmp_path, names, caplog)


def _check_every_line(root: Path, writers: list[str], caplog: pytest.LogCaptureFixture) -> None:
    lines = _ledger(root).read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline
    parsed = [json.loads(line) for line in lines[:-1]]  # every line whole: no mixing
    assert len(parsed) == len(writers) * RECORDS_PER_WRITER
    expected = {f"{w}-{n}.csv": {n} for w in writers for n in range(RECORDS_PER_WRITER)}
    with caplog.at_level(logging.WARNING, logger="orchestration.delivery.ledger"):
        assert delivered_sizes(root, "acme", **WHERE) == expected
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
