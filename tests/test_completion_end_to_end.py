"""The Completion feed end to end: Moodle replicas → dbt → Dagster → CSV → SFTP, two clients."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest

from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB
from orchestration.local.sftp_server import LocalSftpServer
from orchestration.moodle.synthetic import SiteSpec, generate_site
from tests.e2e_support import (
    add_sftp_account,
    client_entry,
    download,
    expected_completions,
    list_remote,
    parse_csv,
    write_clients_file,
)

# 2026-10-25 is the 25-hour day on which Europe/London leaves summer time.
DAY = dt.date(2026, 10, 25)
SITES = {
    "acme": SiteSpec(
        schema="moodle_acme",
        release="4.2",
        seed=11,
        learners=30,
        courses=5,
        start=DAY - dt.timedelta(days=2),
        days=4,
    ),
    "globex": SiteSpec(
        schema="moodle_globex",
        release="4.5",
        prefix="m_",
        seed=22,
        learners=30,
        courses=5,
        start=DAY - dt.timedelta(days=2),
        days=4,
    ),
}
ACME_COLUMNS = {
    "username": "Employee ID",
    "firstname": "First Name",
    "lastname": "Last Name",
    "course_shortname": "Course Code",
    "completion_date": "Completed On",
}


@pytest.fixture(scope="module")
def deployment(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Two generated sites, an SFTP server with one account each, and a clients file for them."""
    tmp = tmp_path_factory.mktemp("e2e")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        for spec in SITES.values():
            generate_site(conn, spec)
    server = LocalSftpServer(tmp / "sftp", host_key_path=tmp / "host_key")
    keys = {name: add_sftp_account(server, tmp / "keys", name) for name in SITES}
    server.start()
    clients = {
        "acme": client_entry(
            "moodle_acme",
            server,
            "acme",
            keys["acme"],
            feeds={"completion": {"columns": ACME_COLUMNS}},
        ),
        "globex": client_entry(
            "moodle_globex", server, "globex", keys["globex"], table_prefix="m_"
        ),
    }
    clients_file = write_clients_file(
        tmp / "clients.yaml", clients, archive_dir=str(tmp / "archive")
    )
    with pytest.MonkeyPatch.context() as env:
        for name, value in module_pg.libpq_env().items():
            env.setenv(name, value)
        env.setenv("ODS_CLIENTS_FILE", str(clients_file))
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        yield {
            "defs": defs,
            "instance": instance,
            "server": server,
            "keys": keys,
            "pg": module_pg,
            "tmp": tmp,
        }
    server.stop()


def _run_day(deployment: dict[str, Any], day: dt.date) -> None:
    defs, instance = deployment["defs"], deployment["instance"]
    marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
        instance=instance, partition_key=day.isoformat()
    )
    assert marts.success
    job = defs.resolve_job_def("completion_files_job")
    for client_id in SITES:
        key = dg.MultiPartitionKey({"date": day.isoformat(), "client": client_id})
        assert job.execute_in_process(instance=instance, partition_key=key).success


def _expected(deployment: dict[str, Any], client_id: str, day: dt.date) -> list[dict[str, Any]]:
    spec = SITES[client_id]
    with psycopg.connect(deployment["pg"].conninfo()) as conn:
        return expected_completions(conn, spec.schema, spec.prefix, "Europe/London", day)


@pytest.fixture(scope="module")
def delivered(deployment) -> dict[str, bytes]:
    _run_day(deployment, DAY)
    server, keys = deployment["server"], deployment["keys"]
    name = f"Completion{DAY + dt.timedelta(days=1):%Y%m%d}.csv"
    return {c: download(server, keys[c], c, f"/outbound/{name}") for c in SITES}


def test_each_client_gets_its_own_rows_in_its_own_columns(deployment, delivered):
    acme_rows = parse_csv(delivered["acme"])
    assert acme_rows[0] == list(ACME_COLUMNS.values())
    assert acme_rows[1:] == [
        [row[column] for column in ACME_COLUMNS] for row in _expected(deployment, "acme", DAY)
    ]
    globex_rows = parse_csv(delivered["globex"])
    assert globex_rows[0] == [
        "Username",
        "ID Number",
        "First Name",
        "Last Name",
        "Email",
        "Course Name",
        "Completion Date",
    ]
    default = [
        "username",
        "idnumber",
        "firstname",
        "lastname",
        "email",
        "course_name",
        "completion_date",
    ]
    assert globex_rows[1:] == [
        [row[column] for column in default] for row in _expected(deployment, "globex", DAY)
    ]


def test_the_day_has_rows_and_no_row_of_one_client_is_in_the_other_file(deployment, delivered):
    acme = {tuple(row[c] for c in ACME_COLUMNS) for row in _expected(deployment, "acme", DAY)}
    globex = {tuple(row[c] for c in ACME_COLUMNS) for row in _expected(deployment, "globex", DAY)}
    assert acme and globex, "the generator should put completions on the test day"
    globex_only = globex - acme
    assert globex_only, "the two sites should not have identical activity"
    in_acme_file = {tuple(row) for row in parse_csv(delivered["acme"])[1:]}
    assert not in_acme_file & globex_only


def test_files_are_crlf_quoted_and_no_temporary_file_is_left(deployment, delivered):
    for client_id, data in delivered.items():
        assert data.endswith(b'"\r\n')
        assert data.startswith(b'"')
        remote = list_remote(
            deployment["server"], deployment["keys"][client_id], client_id, "/outbound"
        )
        assert remote == ["Completion20261026.csv"]


def test_a_rerun_of_the_day_gives_byte_identical_files(deployment, delivered):
    _run_day(deployment, DAY)
    server, keys = deployment["server"], deployment["keys"]
    for client_id in SITES:
        again = download(server, keys[client_id], client_id, "/outbound/Completion20261026.csv")
        assert again == delivered[client_id]


def test_materialisations_carry_rows_bytes_sha256_and_remote_path(deployment, delivered):
    instance = deployment["instance"]
    key = dg.MultiPartitionKey({"date": DAY.isoformat(), "client": "acme"})
    file_event = instance.get_latest_materialization_event(dg.AssetKey("completion_file"))
    assert file_event is not None
    delivery = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("completion_delivery"), asset_partitions=[str(key)]
            ),
            limit=1,
        )
        .records[0]
        .asset_materialization
    )
    assert delivery is not None
    metadata = delivery.metadata
    assert metadata["remote_path"].value == "/outbound/Completion20261026.csv"
    assert metadata["rows"].value == len(_expected(deployment, "acme", DAY))
    assert metadata["bytes"].value == len(delivered["acme"])
    assert metadata["sha256"].value == hashlib.sha256(delivered["acme"]).hexdigest()
