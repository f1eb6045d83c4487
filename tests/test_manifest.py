"""The client-day manifest (`manifest: true`): written last, only when every file of the day is in
the client's folder, valid against the shipped JSON Schema, the same bytes on a re-send, archived,
in the ledger and removed by retention like the files; and the contract recorded with each file.

Runs are the real files step (export from a small Completion mart, delivery to a real local SFTP
server). acme takes completion and quiz; its quiz file is put in the archive by the test, as an
earlier run would have made it, so a day can be left half delivered. Expected values come from
the fixture's rows and the bytes found on the server.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import jsonschema
import pytest
import yaml

from orchestration.delivery import ledger
from orchestration.export import archive
from orchestration.export.manifest import SCHEMA_PATH
from orchestration.feeds import FEEDS
from tests.e2e_support import ledger_delivery
from tests.expected_feeds import DEFAULT_COLUMNS
from tests.files_step_support import (
    DAY,
    NEXT_DAY,
    ROWS,
    archive_earlier_file,
    delivery_metadata,
    failure_message,
    files_asset,
    run_files,
    sha256,
)

MANIFEST = "MANIFEST20261128.json"
COMPLETION_FILE = "Completion20261128.csv"
QUIZ_FILE = "Quiz20261128.csv"
QUIZ_HEADER_ONLY = (
    b'"Username","ID Number","First Name","Last Name","Email","Course Name","Quiz Name",'
    b'"Attempt Number","Score","Status"\r\n'
)
RESEND = {"ods/started_by": "ods resend"}


@pytest.fixture
def site(acme_files_site: dict[str, Any]) -> dict[str, Any]:
    """acme's files site, its clients file written: completion and quiz, with a manifest."""
    clients_file = acme_files_site["clients"](manifest=True, feeds={"completion": {}, "quiz": {}})
    return {**acme_files_site, "clients_file": clients_file}


def _archive_quiz(archive_root: Path, day: dt.date = DAY, version: str = "0123456789ab") -> None:
    """acme's header-only quiz file of `day`, as an earlier run made it."""
    archive_earlier_file(
        archive_root,
        "quiz",
        day,
        f"Quiz{day + dt.timedelta(days=1):%Y%m%d}.csv",
        QUIZ_HEADER_ONLY,
        rows=0,
        made_at="2026-11-28T03:00:00.000000Z",
        contract_version=version,
    )


def _validate(document: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


def _manifest(folder: Path, name: str = MANIFEST) -> dict[str, Any]:
    document = json.loads((folder / name).read_bytes())
    _validate(document)
    return document


def test_the_manifest_is_withheld_until_every_file_of_the_day_is_in_place(site):
    files = files_asset(site["clients_file"])
    folder: Path = site["folder"]

    # The completion file goes out; quiz was never made: no manifest, and the step says why.
    first = run_files(files, site["archive"], DAY)
    assert not first.success
    message = failure_message(first)
    assert f"{MANIFEST} was not written" in message
    assert f"{QUIZ_FILE} (quiz)" in message
    assert "never takes a partial day as complete" in message
    assert sorted(p.name for p in folder.iterdir()) == [COMPLETION_FILE]

    # The quiz file is delivered (a delivery-only run): now the day is complete.
    _archive_quiz(site["archive"])
    second = run_files(files, site["archive"], DAY, feeds=("quiz",), deliver_only=True)
    assert second.success, failure_message(second)
    assert sorted(p.name for p in folder.iterdir()) == [COMPLETION_FILE, MANIFEST, QUIZ_FILE]
    document = _manifest(folder)
    completion_bytes = (folder / COMPLETION_FILE).read_bytes()
    assert document["client"] == "acme"
    assert (document["activity_day"], document["file_date"]) == ("2026-11-27", "2026-11-28")
    assert document["time_zone"] == "Europe/London"
    assert document["file_count"] == 2
    by_name = {entry["name"]: entry for entry in document["files"]}
    completion, quiz = by_name[COMPLETION_FILE], by_name[QUIZ_FILE]
    assert completion["feed"] == "completion"
    assert completion["rows"] == len(ROWS[DAY]) == 2
    assert completion["bytes"] == len(completion_bytes)
    assert completion["sha256"] == sha256(completion_bytes)
    assert completion["no_activity"] is False
    assert completion["activity_day"] == "2026-11-27"
    assert quiz == {
        "name": QUIZ_FILE,
        "feed": "quiz",
        "activity_day": "2026-11-27",
        "time_zone": "Europe/London",
        "rows": 0,
        "bytes": len(QUIZ_HEADER_ONLY),
        "sha256": sha256(QUIZ_HEADER_ONLY),
        "contract_version": "0123456789ab",
        "contract_changed": False,
        "generated_at": "2026-11-28T03:00:00.000000Z",
        "no_activity": True,
    }
    metadata = delivery_metadata(second, "quiz")
    assert metadata["manifest_path"] == f"/outbound/{MANIFEST}"
    assert metadata["manifest_sha256"] == sha256((folder / MANIFEST).read_bytes())

    # Archived under <archive>/acme/manifest/ and in the ledger, like the files.
    archived = site["archive"] / "acme" / "manifest" / MANIFEST
    assert archived.read_bytes() == (folder / MANIFEST).read_bytes()
    lines = [d for d in ledger.read_deliveries(site["archive"], "acme") if d.feed == "manifest"]
    assert [(d.file_name, d.sha256) for d in lines] == [(MANIFEST, sha256(archived.read_bytes()))]


def test_a_resend_of_one_feed_rewrites_the_same_manifest_listing_every_file(site):
    files = files_asset(site["clients_file"])
    _archive_quiz(site["archive"])
    delivered = run_files(
        files, site["archive"], DAY, feeds=("completion", "quiz"), deliver_only=("quiz",)
    )
    assert delivered.success, failure_message(delivered)
    before = (site["folder"] / MANIFEST).read_bytes()
    inode = (site["folder"] / MANIFEST).stat().st_ino

    resent = run_files(files, site["archive"], DAY, feeds=("quiz",), deliver_only=True, tags=RESEND)
    assert resent.success, failure_message(resent)
    assert (site["folder"] / MANIFEST).stat().st_ino != inode  # uploaded again ...
    assert (site["folder"] / MANIFEST).read_bytes() == before  # ... byte for byte the same
    assert len(_manifest(site["folder"])["files"]) == 2
    manifests = [d for d in ledger.read_deliveries(site["archive"], "acme") if d.feed == "manifest"]
    assert len(manifests) == 2


def test_a_failed_feed_withholds_the_manifest_of_the_day(site):
    files = files_asset(site["clients_file"])
    _archive_quiz(site["archive"])
    quiz = archive.feed_folder(site["archive"], "acme", "quiz") / QUIZ_FILE
    quiz.write_bytes(QUIZ_HEADER_ONLY.replace(b"Score", b"Grade"))  # damaged in the archive
    result = run_files(
        files, site["archive"], DAY, feeds=("completion", "quiz"), deliver_only=("quiz",)
    )
    assert not result.success
    message = failure_message(result)
    assert "is not the file that was made" in message
    assert f"{MANIFEST} was not written (failed: quiz)" in message
    assert sorted(p.name for p in site["folder"].iterdir()) == [COMPLETION_FILE]


def test_clients_without_the_option_get_no_manifest(site):
    raw = yaml.safe_load(site["clients_file"].read_text())
    del raw["clients"]["acme"]["manifest"]
    raw["clients"]["acme"]["feeds"] = {"completion": {}}
    site["clients_file"].write_text(yaml.safe_dump(raw))
    result = run_files(files_asset(site["clients_file"]), site["archive"], DAY)
    assert result.success, failure_message(result)
    assert sorted(p.name for p in site["folder"].iterdir()) == [COMPLETION_FILE]
    assert "manifest_path" not in delivery_metadata(result, "completion")
    assert not (site["archive"] / "acme" / "manifest").exists()


def test_the_archive_records_the_contract_and_the_first_delivery_after_a_change_says_so(site):
    raw = yaml.safe_load(site["clients_file"].read_text())
    raw["clients"]["acme"]["feeds"] = {"completion": {}}
    site["clients_file"].write_text(yaml.safe_dump(raw))
    first = run_files(files_asset(site["clients_file"]), site["archive"], DAY)
    assert first.success, failure_message(first)
    made = archive.read(
        archive.feed_folder(site["archive"], "acme", "completion") / COMPLETION_FILE
    )
    assert made is not None and made.contract is not None
    assert [(c["column"], c["header"]) for c in made.contract["columns"]] == DEFAULT_COLUMNS[
        "completion"
    ]
    assert made.contract["line_ending"] == "crlf"
    assert made.contract_version is not None and len(made.contract_version) == 12
    assert delivery_metadata(first, "completion")["contract_changed"] is False

    # The client renames a column: the next day's file is the first of the new contract.
    raw["clients"]["acme"]["feeds"] = {"completion": {"columns": {"username": "Login"}}}
    site["clients_file"].write_text(yaml.safe_dump(raw))
    second = run_files(files_asset(site["clients_file"]), site["archive"], NEXT_DAY)
    assert second.success, failure_message(second)
    metadata = delivery_metadata(second, "completion")
    assert metadata["contract_changed"] is True
    assert metadata["previous_contract_version"] == made.contract_version
    assert metadata["contract_version"] not in (None, made.contract_version)
    entry = _manifest(site["folder"], "MANIFEST20261129.json")["files"][0]
    assert entry["contract_changed"] is True
    assert entry["previous_contract_version"] == made.contract_version
    assert entry["contract_version"] == metadata["contract_version"]
    assert (site["folder"] / "Completion20261129.csv").read_bytes().startswith(b'"Login"\r\n')

    # A re-send of that file is the same delivery of the contract: still the first after it.
    again = run_files(
        files_asset(site["clients_file"]), site["archive"], NEXT_DAY, deliver_only=True, tags=RESEND
    )
    assert delivery_metadata(again, "completion")["contract_changed"] is True


def test_retention_removes_our_expired_manifests_and_suffixed_files_and_says_so_in_the_run_log(
    site,
):
    raw = yaml.safe_load(site["clients_file"].read_text())
    raw["clients"]["acme"]["feeds"] = {"completion": {}}
    site["clients_file"].write_text(yaml.safe_dump(raw))
    folder: Path = site["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    ours = {"MANIFEST20261001.json": b"{}\n", "Completion20261001.csv.gz.pgp": b"\x85\x01sealed"}
    for name, data in ours.items():
        (folder / name).write_bytes(data)
        ledger.record(
            site["archive"],
            ledger.Delivery(
                client_id="acme",
                feed="manifest" if name.startswith("MANIFEST") else "completion",
                activity_day="2026-09-30",
                file_name=name,
                host="127.0.0.1",
                port=site["server"].port,
                username="acme",
                directory="/outbound",
                bytes=len(data),
                sha256=sha256(data),
                delivered_at="2026-10-01T03:00:00Z",
            ),
        )
    (folder / "MANIFEST20261002.json").write_bytes(b"the client's own\n")  # not ours
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_files(
            files_asset(site["clients_file"]), site["archive"], DAY, instance=instance
        )
        assert result.success, failure_message(result)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert sorted(p.name for p in folder.iterdir()) == [
        COMPLETION_FILE,
        "MANIFEST20261002.json",
        MANIFEST,
    ]
    metadata = delivery_metadata(result, "completion")
    assert metadata["retention_deleted"] == [
        "Completion20261001.csv.gz.pgp",
        "MANIFEST20261001.json",
    ]
    assert metadata["retention_foreign"] == ["MANIFEST20261002.json"]
    # retention.py's own line (Dagster's logger), not only the step's summary of it.
    assert any(
        "client acme: retention removed ['Completion20261001.csv.gz.pgp', "
        "'MANIFEST20261001.json'] and stale temporary files []" in message
        for message in messages
    ), messages


def test_archive_records_and_ledger_lines_from_before_contracts_still_read(tmp_path):
    folder = archive.feed_folder(tmp_path, "acme", "completion")
    folder.mkdir(parents=True)
    (folder / COMPLETION_FILE).write_bytes(b'"A"\r\n')
    old = {
        "client_id": "acme",
        "feed": "completion",
        "activity_day": "2026-11-27",
        "file_name": COMPLETION_FILE,
        "rows": 0,
        "bytes": 5,
        "sha256": sha256(b'"A"\r\n'),
        "made_at": "2026-11-28T03:00:00.000000Z",
    }
    (folder / f"{COMPLETION_FILE}.json").write_text(json.dumps(old))
    made = archive.read(folder / COMPLETION_FILE)
    assert made is not None
    assert (made.contract, made.contract_version, made.sent_file_name) == (None, None, None)
    assert (made.sent_name, made.sent_path) == (COMPLETION_FILE, folder / COMPLETION_FILE)
    archive.verify(made)
    line = {
        k: v
        for k, v in ledger.asdict(ledger_delivery(COMPLETION_FILE, 5)).items()
        if "contract" not in k
    }
    (tmp_path / "acme" / "deliveries.jsonl").write_text(json.dumps(line) + "\n")
    (read,) = ledger.read_deliveries(tmp_path, "acme")
    assert (read.contract_version, read.previous_contract_version) == (None, None)


def test_the_schema_names_the_feeds_of_the_catalogue_and_refuses_a_partial_entry():
    schema = json.loads(SCHEMA_PATH.read_text())
    file_schema = schema["$defs"]["file"]["properties"]
    assert file_schema["feed"]["enum"] == list(FEEDS)
    prefixes = "|".join(feed.prefix for feed in FEEDS.values())
    assert file_schema["name"]["pattern"].startswith(f"^({prefixes})[0-9]{{8}}")
    entry = {
        "name": COMPLETION_FILE,
        "feed": "completion",
        "activity_day": "2026-11-27",
        "time_zone": "Europe/London",
        "rows": 1,
        "bytes": 10,
        "sha256": "a" * 64,
        "contract_version": "0123456789ab",
        "contract_changed": True,
        "generated_at": "2026-11-28T03:00:00Z",
        "no_activity": False,
    }
    document = {
        "manifest_format": 1,
        "client": "acme",
        "activity_day": "2026-11-27",
        "file_date": "2026-11-28",
        "time_zone": "Europe/London",
        "generated_at": "2026-11-28T03:00:00Z",
        "file_count": 1,
        "files": [entry],
    }
    with pytest.raises(jsonschema.ValidationError, match="previous_contract_version"):
        _validate(document)  # a change must say from which version
    entry["previous_contract_version"] = "ba9876543210"
    _validate(document)
    del entry["sha256"]
    with pytest.raises(jsonschema.ValidationError, match="sha256"):
        _validate(document)
