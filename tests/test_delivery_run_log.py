"""A delivery made inside a run writes its line into that run's event log (the UI's run log), not
only to a Python logger nobody reads (issue 15: delivery logs through Dagster's logger)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg

from ods_local.sftp_server import LocalSftpServer
from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.sftp import open_sftp
from tests.e2e_support import target_on

CONTENT = b'"Username","Course Name"\r\n"amy","Fire Safety"\r\n'


def test_a_delivery_inside_a_run_is_in_the_runs_event_log(tmp_path: Path):
    public_key = generate_key_pair(tmp_path / "alice", comment="alice@test")
    server = LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host")
    server.add_user("alice", authorized_key=public_key)
    (server.root / "alice" / "outbound").mkdir(parents=True)
    local = tmp_path / "Completion20261128.csv"
    local.write_bytes(CONTENT)

    with server:
        target = target_on(
            server, "alice", "/outbound", private_key=(tmp_path / "alice").read_text()
        )

        @dg.asset
        def delivered_file() -> None:
            with open_sftp(target) as session:
                session.deliver(local, local.name)

        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize([delivered_file], instance=instance)
            lines = [entry.user_message for entry in instance.all_logs(result.run_id)]

    assert result.success
    assert (server.root / "alice" / "outbound" / local.name).read_bytes() == CONTENT
    expected = (
        f"client acme: delivered {local.name} ({len(CONTENT)} bytes, sha256 "
        f"{hashlib.sha256(CONTENT).hexdigest()}"
    )
    assert any(expected in line for line in lines), lines
