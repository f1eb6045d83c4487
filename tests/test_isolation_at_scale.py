"""A night for 32 clients of which four have a broken server: the other 28 get every file.

Two clients' servers are down throughout (nothing listens on their ports) and two refuse our
login (their accounts know another key). The night runs as production runs it — one marts run,
the files sensor's requests, one files run per client — and then: every healthy client has its
completion and quiz files for the day with the rows worked out from its raw Moodle tables, and
each broken client's failure shows on its own client-day partitions of both feeds (a failed run
naming the client, and no delivery), while nobody else's partitions are touched.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest

from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB
from orchestration.delivery.keys import generate_key_pair
from synthetic_moodle import SiteSpec, generate_site
from tests.e2e_support import (
    client_entry,
    expected_completions,
    ods_environment,
    parse_csv,
    run_requested,
    sensor_requests,
    start_sftp_server,
    write_clients_file,
)

DAY = dt.date(2026, 11, 3)
CLIENTS = [f"c{n:02d}" for n in range(32)]
DOWN = ["c05", "c17"]
REFUSED = ["c09", "c26"]
BROKEN = DOWN + REFUSED
FEEDS = ("completion", "quiz")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def night(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("isolation")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for seed, client_id in enumerate(CLIENTS, start=1):
            generate_site(
                conn,
                SiteSpec(
                    schema=f"moodle_{client_id}",
                    release="4.3",
                    seed=seed,
                    learners=8,
                    courses=1,
                    start=DAY - dt.timedelta(days=1),
                    days=2,
                ),
            )
    server, keys = start_sftp_server(tmp, CLIENTS)
    try:
        clients = {
            c: client_entry(f"moodle_{c}", server, c, keys[c], feeds={feed: {} for feed in FEEDS})
            for c in CLIENTS
        }
        for client_id in DOWN:
            clients[client_id]["sftp"]["port"] = _closed_port()
        for client_id in REFUSED:
            stranger = tmp / "keys" / f"{client_id}_stranger"
            generate_key_pair(stranger, "not the authorised key")
            clients[client_id]["sftp"]["private_key_path"] = str(stranger)
        clients_file = write_clients_file(
            tmp / "clients.yaml",
            clients,
            archive_dir=str(tmp / "archive"),
            delivery_retries=1,
            delivery_retry_delay_seconds=0.1,
        )
        with ods_environment(module_pg, clients_file):
            defs = build_definitions()
            instance = dg.DagsterInstance.ephemeral()
            marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
                instance=instance, partition_key=DAY.isoformat()
            )
            assert marts.success
            requests = sensor_requests(defs, instance, marts)
            runs = {
                r.partition_key.keys_by_dimension["client"]: run_requested(defs, instance, r)
                for r in requests
            }
            delivered = {
                feed: instance.get_materialized_partitions(dg.AssetKey(f"{feed}_delivery"))
                for feed in FEEDS
            }
        with psycopg.connect(module_pg.conninfo()) as conn:
            expected = {
                c: expected_completions(conn, f"moodle_{c}", "mdl_", "Europe/London", DAY)
                for c in CLIENTS
            }
        yield {
            "server": server,
            "runs": runs,
            "delivered": delivered,
            "expected": expected,
            "requests": requests,
        }
    finally:
        server.stop()


def _key(client_id: str) -> str:
    return str(dg.MultiPartitionKey({"date": DAY.isoformat(), "client": client_id}))


def test_one_files_run_per_client(night):
    assert sorted(night["runs"]) == CLIENTS


def test_every_healthy_client_gets_every_file_with_its_rows(night):
    healthy = [c for c in CLIENTS if c not in BROKEN]
    for client_id in healthy:
        assert night["runs"][client_id].success, client_id
        folder = night["server"].root / client_id / "outbound"
        assert sorted(p.name for p in folder.iterdir()) == [
            "Completion20261104.csv",
            "Quiz20261104.csv",
        ]
        rows = parse_csv((folder / "Completion20261104.csv").read_bytes())
        assert [r[0] for r in rows[1:]] == [row["username"] for row in night["expected"][client_id]]
    for feed in FEEDS:
        assert {_key(c) for c in healthy} <= night["delivered"][feed]
    assert sum(len(night["expected"][c]) for c in healthy) > 20


@pytest.mark.parametrize("client_id", BROKEN)
def test_each_broken_client_fails_on_its_own_partitions_only(night, client_id):
    result = night["runs"][client_id]
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert f"client {client_id}" in description
    reason = "cannot reach the server" if client_id in DOWN else "refused the login"
    assert reason in description
    for feed in FEEDS:
        assert f"feed {feed}" in description
        assert _key(client_id) not in night["delivered"][feed]
    assert result.dagster_run.tags["dagster/partition/client"] == client_id
    assert list((night["server"].root / client_id / "outbound").iterdir()) == []
