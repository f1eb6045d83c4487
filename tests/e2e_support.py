"""Helpers for end-to-end tests: a clients file for a test SFTP server, expected rows, downloads."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import paramiko
import psycopg
import pytest
import yaml
from day_bounds import local_date_of
from psycopg import sql

from ods_local.postgres import LocalPostgres
from ods_local.sftp_server import LocalSftpServer
from orchestration.delivery import ledger
from orchestration.delivery.keys import generate_key_pair
from orchestration.delivery.sftp import SftpTarget
from synthetic_moodle import SiteSpec, generate_site


def add_sftp_account(server: LocalSftpServer, keys: Path, username: str) -> Path:
    """An account with its own key pair and an `outbound` folder; returns the private key path."""
    private = keys / username
    public = generate_key_pair(private, f"test-{username}")
    folder = server.add_user(username, authorized_key=public)
    (folder / "outbound").mkdir(exist_ok=True)
    return private


def start_sftp_server(
    tmp: Path, usernames: Iterable[str]
) -> tuple[LocalSftpServer, dict[str, Path]]:
    """A local SFTP server under `tmp` (its host key kept there, so a restart keeps it), started,
    with an account (add_sftp_account) per username; returns it and each account's key path."""
    server = LocalSftpServer(tmp / "sftp", host_key_path=tmp / "host_key")
    keys = {name: add_sftp_account(server, tmp / "keys", name) for name in usernames}
    server.start()
    return server, keys


def target_on(
    server: LocalSftpServer,
    username: str,
    directory: str,
    *,
    client_id: str = "acme",
    private_key: str | None = None,
    password: str | None = None,
) -> SftpTarget:
    """`client_id`'s delivery target: `username`'s `directory` on the local `server`, trusting
    the server's own host key, logging in with `private_key` (the key file's text) or
    `password`."""
    return SftpTarget(
        client_id=client_id,
        host=server.host,
        port=server.port,
        username=username,
        directory=directory,
        host_key=server.host_key_line(),
        private_key=private_key,
        password=password,
    )


def client_site(client_id: str, **settings: Any) -> SiteSpec:
    """The client's synthetic Moodle site, in schema moodle_<client id> (what client_entry and
    the clients files of the tests name); `settings` are the rest of its SiteSpec."""
    return SiteSpec(schema=f"moodle_{client_id}", **settings)


def client_sites(clients: dict[str, dict[str, Any]], **common: Any) -> dict[str, SiteSpec]:
    """A site (client_site) per client id: each client's own settings (release, prefix, seed,
    ...) over the `common` ones (start, days, learners, ...)."""
    return {
        client_id: client_site(client_id, **{**common, **own}) for client_id, own in clients.items()
    }


def generate_sites(pg: LocalPostgres, specs: Iterable[SiteSpec]) -> None:
    """Each synthetic Moodle site of `specs` in the warehouse `pg`."""
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        for spec in specs:
            generate_site(conn, spec)


def ledger_delivery(
    file_name: str, size: int, *, client_id: str = "acme", **fields: Any
) -> ledger.Delivery:
    """The ledger's record of `file_name`, `size` bytes, delivered for `client_id`; `fields` give
    what the test reads back (feed, activity_day, sha256, delivered_at, the folder: host, port,
    username, directory), made-up values otherwise (the unreached server of acme_entry)."""
    values: dict[str, Any] = {
        "feed": "test",
        "activity_day": "2026-01-01",
        "host": "sftp.example.org",
        "port": 22,
        "username": client_id,
        "directory": "/",
        "sha256": "0" * 64,
        "delivered_at": "2026-01-02T04:00:00.000000Z",
        **fields,
    }
    return ledger.Delivery(client_id=client_id, file_name=file_name, bytes=size, **values)


def delivery_to(target: SftpTarget, file_name: str, size: int, **fields: Any) -> ledger.Delivery:
    """The ledger's record of `file_name`, `size` bytes, delivered to `target`'s folder (see
    ledger_delivery)."""
    return ledger_delivery(
        file_name,
        size,
        client_id=target.client_id,
        host=target.host,
        port=target.port,
        username=target.username,
        directory=target.directory,
        **fields,
    )


def write_clients_file(path: Path, clients: dict[str, Any], **top: Any) -> Path:
    path.write_text(
        yaml.safe_dump({"timezone": "Europe/London", **top, "clients": clients}, sort_keys=False)
    )
    return path


UNREACHED_HOST_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)


def acme_entry(**extra: Any) -> dict[str, Any]:
    """acme's entry in a clients file: one Completion feed, on an SFTP server no test reaches
    (a key from an unset variable) unless `extra` gives its own `sftp`; for tests that load the
    clients file but deliver nothing."""
    return {
        "name": "Acme",
        "moodle_schema": "moodle_acme",
        "feeds": {"completion": {}},
        "sftp": {
            "host": "sftp.example.org",
            "username": "acme",
            "private_key_env": "ODS_TEST_UNUSED_KEY",
            "host_key": UNREACHED_HOST_KEY,
        },
        **extra,
    }


def client_entry(
    schema: str, server: LocalSftpServer, username: str, key: Path, **extra: Any
) -> dict[str, Any]:
    return {
        "name": f"{username.title()} Ltd",
        "moodle_schema": schema,
        "feeds": {"completion": {}},
        "sftp": {
            "host": "127.0.0.1",
            "port": server.port,
            "username": username,
            "directory": "/outbound",
            "private_key_path": str(key),
            "host_key": server.host_key_line(),
        },
        **extra,
    }


def site_clients(
    sites: dict[str, SiteSpec], server: LocalSftpServer, keys: dict[str, Path], **extra: Any
) -> dict[str, Any]:
    """A client entry (client_entry) per generated site, keyed by client id, reading the site's
    schema and table prefix; `extra` settings go into every entry."""
    return {
        client_id: client_entry(
            spec.schema, server, client_id, keys[client_id], table_prefix=spec.prefix, **extra
        )
        for client_id, spec in sites.items()
    }


def dagster_home_with_shipped_launcher(folder: Path) -> Path:
    """A DAGSTER_HOME whose instance launches runs as deploy/dagster.yaml does (forked from the
    PreloadedRunLauncher's server), everything else Dagster's defaults; `ods` commands then load
    the code location in-process (orchestration/defs/queued_runs.py). Dagster's own
    DefaultRunLauncher, with a code server per command: tests/test_reruns_through_instance.py."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_launcher:\n  module: orchestration.run_launcher\n  class: PreloadedRunLauncher\n"
    )
    return folder


def instance_database_url(warehouse: LocalPostgres) -> str:
    """A database of the instance's own beside the warehouse's, as SQLAlchemy's URL."""
    name = f"{warehouse.database}_dagster"
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return f"postgresql+psycopg2://{quote(warehouse.user)}@/{name}?host={quote(warehouse.host)}&port={warehouse.port}"


def set_warehouse_env(env: pytest.MonkeyPatch, pg: LocalPostgres) -> None:
    """The warehouse `pg`'s PG* variables in the environment, where the product's resources read
    their connection."""
    for name, value in pg.libpq_env().items():
        env.setenv(name, value)


@contextmanager
def ods_environment(
    pg: LocalPostgres, clients_file: Path, **variables: str
) -> Iterator[pytest.MonkeyPatch]:
    """For the block, the environment the code location loads with: the warehouse's PG*, the
    clients file and any other `variables` (DAGSTER_HOME, ODS_HOME, ...)."""
    with pytest.MonkeyPatch.context() as env:
        set_warehouse_env(env, pg)
        env.setenv("ODS_CLIENTS_FILE", str(clients_file))
        for name, value in variables.items():
            env.setenv(name, value)
        yield env


def _rows(conn: psycopg.Connection, schema: str, table: str, columns: str) -> list[tuple]:
    query = sql.SQL("select " + columns + " from {}").format(sql.Identifier(schema, table))
    return conn.execute(query).fetchall()


def expected_completions(
    conn: psycopg.Connection, schema: str, prefix: str, timezone: str, day: dt.date
) -> list[dict[str, Any]]:
    """Completion rows of local day `day`, worked out in Python from the raw Moodle tables:
    completed rows only, no deleted users, no guest, no site course; ordered by user, course."""
    users = {
        row[0]: row
        for row in _rows(
            conn,
            schema,
            f"{prefix}user",
            "id, username, idnumber, email, firstname, lastname, deleted",
        )
    }
    courses = {
        row[0]: row
        for row in _rows(conn, schema, f"{prefix}course", "id, shortname, fullname, format")
    }
    expected = []
    for user_id, course_id, completed in _rows(
        conn, schema, f"{prefix}course_completions", "userid, course, timecompleted"
    ):
        if completed is None or local_date_of(completed, timezone) != day:
            continue
        user, course = users.get(user_id), courses.get(course_id)
        if user is None or course is None:
            continue
        if user[6] == 1 or user[1] == "guest" or course[3] == "site":
            continue
        expected.append(
            {
                "user_id": user_id,
                "username": user[1],
                "idnumber": user[2],
                "email": user[3],
                "firstname": user[4],
                "lastname": user[5],
                "course_id": course_id,
                "course_shortname": course[1],
                "course_name": course[2],
                "completion_date": day.isoformat(),
            }
        )
    return sorted(expected, key=lambda row: (row["user_id"], row["course_id"]))


@contextmanager
def sftp_session(
    server: LocalSftpServer, key: Path, username: str
) -> Iterator[paramiko.SFTPClient]:
    """Log in as the client would, trusting only the server's own host key."""
    client = paramiko.SSHClient()
    host_key = paramiko.Ed25519Key(data=base64.b64decode(server.host_key_line().split()[1]))
    client.get_host_keys().add(f"[127.0.0.1]:{server.port}", "ssh-ed25519", host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=server.port,
        username=username,
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=False,
    )
    try:
        with client.open_sftp() as sftp:
            yield sftp
    finally:
        client.close()


def download(server: LocalSftpServer, key: Path, username: str, remote: str) -> bytes:
    with sftp_session(server, key, username) as sftp, sftp.open(remote, "rb") as handle:
        return handle.read()


def list_remote(server: LocalSftpServer, key: Path, username: str, folder: str) -> list[str]:
    with sftp_session(server, key, username) as sftp:
        return sorted(sftp.listdir(folder))


def csv_file_of_size(path: Path, size: int, fill: bytes = b"x") -> Path:
    """`path` written with `size` bytes of quoted CSV rows (`fill` repeated in the first value):
    a file to upload whose every byte can be compared."""
    row = b'"' + fill * 30 + b'","42"\r\n'
    path.write_bytes((row * (size // len(row) + 1))[:size])
    return path


def names_in(folder: Path) -> list[str]:
    """The names in a local folder (a server's view of a client's folder), sorted."""
    return sorted(path.name for path in folder.iterdir())


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))


def run_each_clients_files(
    defs: dg.Definitions, instance: dg.DagsterInstance, day: dt.date, clients: Iterable[str]
) -> None:
    """Each client's files run of `day` (client_files_job, the client-day partition), one after
    the other in this process, as the files sensor starts them after the marts; each must
    succeed."""
    for client_id in clients:
        key = dg.MultiPartitionKey({"date": day.isoformat(), "client": client_id})
        result = defs.resolve_job_def("client_files_job").execute_in_process(
            instance=instance, partition_key=key
        )
        assert result.success, (client_id, day)


def sensor_requests(
    defs: dg.Definitions, instance: dg.DagsterInstance, marts: dg.ExecuteInProcessResult
) -> list[dg.RunRequest]:
    """What the files sensor requests after `marts` succeeded, as the daemon would evaluate it."""
    sensor = defs.resolve_sensor_def("files_after_marts_sensor")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=marts.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=marts.dagster_run,
        repository_def=defs.get_repository_def(),
    )
    return list(sensor(context))


def run_requested(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """Run what a request asks for, in this process: its job, partition, assets and tags."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=False,
    )
