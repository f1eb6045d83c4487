"""A files run that follows one which died after delivering some of the client-day's files sends
only what is not there yet; `ods resend` always sends.

The runs here deliver an archived file (the delivery asset alone, as a retry of a run whose export
was done) to a real local SFTP server, with and without the files sensor's tag `ods/marts_run`,
which Dagster's run retries keep. What counts as delivered is the ledger's last delivery of that
name to that folder, with these exact bytes, and the folder still holding them (size and sha256
read back).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ods_local.sftp_server import LocalSftpServer
from orchestration.defs.client_files import delivery_key
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import CLIENT_FILES_JOB, MARTS_RUN_TAG
from orchestration.defs.partitions import client_day_key
from orchestration.delivery import ledger
from orchestration.export import archive
from tests.e2e_support import add_sftp_account, client_entry, write_clients_file
from tests.files_step_support import archive_earlier_file

DAY = dt.date(2026, 3, 9)
NAME = "Completion20260310.csv"
CONTENT = b"username,course_name,completion_date\r\nu1,Fire safety,2026-03-09\r\n"
FROM_THE_SENSOR = {MARTS_RUN_TAG: "a-marts-run"}


@pytest.fixture
def setup(pg: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    server = LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host_key")
    key = add_sftp_account(server, tmp_path / "keys", "acme")
    server.start()
    clients_file = write_clients_file(
        tmp_path / "clients.yaml",
        {"acme": client_entry("moodle_acme", server, "acme", key)},
        archive_dir=str(tmp_path / "archive"),
        first_day="2026-03-01",
    )
    archive_earlier_file(
        tmp_path / "archive", "completion", DAY, NAME, CONTENT, rows=1, made_at=archive.now_utc()
    )
    (tmp_path / "dagster").mkdir()
    with pytest.MonkeyPatch.context() as env:
        for name, value in pg.libpq_env().items():
            env.setenv(name, value)
        env.setenv("ODS_CLIENTS_FILE", str(clients_file))
        env.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        with dg.DagsterInstance.ephemeral() as instance:
            yield {
                "defs": build_definitions(),
                "instance": instance,
                "remote": server.root / "acme" / "outbound" / NAME,
                "archive": tmp_path / "archive",
            }
    server.stop()


def _deliver(setup: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """One delivery run of acme's completion file for DAY; its delivery's metadata."""
    result = (
        setup["defs"]
        .resolve_job_def(CLIENT_FILES_JOB)
        .execute_in_process(
            instance=setup["instance"],
            partition_key=client_day_key("acme", DAY),
            asset_selection=[delivery_key_of_completion()],
            tags=tags,
        )
    )
    (materialised,) = result.asset_materializations_for_node("client_files")
    return {key: value.value for key, value in materialised.metadata.items()}


def delivery_key_of_completion() -> dg.AssetKey:
    from orchestration.feeds import FEEDS

    return delivery_key(FEEDS["completion"])


def _uploads(setup: dict[str, Any]) -> int:
    return sum(1 for d in ledger.read_deliveries(setup["archive"], "acme") if d.file_name == NAME)


def test_a_sensor_runs_retry_does_not_send_again_a_file_that_is_there_with_these_bytes(
    setup: dict[str, Any],
) -> None:
    first = _deliver(setup, FROM_THE_SENSOR)
    assert "already_delivered" not in first
    inode = setup["remote"].stat().st_ino
    again = _deliver(setup, FROM_THE_SENSOR)
    assert again["already_delivered"] is True
    assert again["sha256"] == first["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert setup["remote"].stat().st_ino == inode  # never renamed over: not uploaded
    assert _uploads(setup) == 1


def test_ods_resend_always_sends(setup: dict[str, Any]) -> None:
    _deliver(setup, FROM_THE_SENSOR)
    inode = setup["remote"].stat().st_ino
    resent = _deliver(setup, {"ods/started_by": "ods resend"})
    assert "already_delivered" not in resent
    assert setup["remote"].stat().st_ino != inode
    assert _uploads(setup) == 2


@pytest.mark.parametrize("change", ["same size, other bytes", "removed", "truncated"])
def test_a_file_changed_or_gone_on_the_server_is_sent_again(
    setup: dict[str, Any], change: str
) -> None:
    _deliver(setup, FROM_THE_SENSOR)
    remote: Path = setup["remote"]
    if change == "removed":
        remote.unlink()
    elif change == "truncated":
        remote.write_bytes(CONTENT[:10])
    else:
        remote.write_bytes(CONTENT.upper())
    again = _deliver(setup, FROM_THE_SENSOR)
    assert "already_delivered" not in again
    assert remote.read_bytes() == CONTENT
    assert _uploads(setup) == 2


def test_a_file_renamed_into_place_by_a_run_that_died_before_its_ledger_line_is_not_sent_again(
    setup: dict[str, Any],
) -> None:
    # The dead run's rename happened (the folder holds exactly the archived bytes) and its ledger
    # line did not: the retry takes the file as delivered and writes the missing line.
    remote: Path = setup["remote"]
    remote.parent.mkdir(parents=True, exist_ok=True)
    remote.write_bytes(CONTENT)
    inode = remote.stat().st_ino
    assert _uploads(setup) == 0
    retried = _deliver(setup, FROM_THE_SENSOR)
    assert retried["already_delivered"] is True
    assert remote.stat().st_ino == inode
    assert _uploads(setup) == 1
    # ... and from then on it is known as delivered, once.
    assert _deliver(setup, FROM_THE_SENSOR)["already_delivered"] is True
    assert _uploads(setup) == 1
