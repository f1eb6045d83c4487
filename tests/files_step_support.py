"""A small Completion mart on the embedded PostgreSQL and the real files step run on it, for the
tests of what a client receives (manifests, gzip, OpenPGP): no dbt, no synthetic site.

The mart holds a few hand-written rows for two days; a client's file of a day is those rows in its
columns. Expected values in the tests come from these rows and from the bytes found on the SFTP
server, never from the code under test.

The fixtures over these (`completion_mart`, `acme_files_site`) are in tests/shared_fixtures.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from ods_local.sftp_server import LocalSftpServer
from orchestration.clients import load_clients
from orchestration.defs.client_files import build_client_files_asset, delivery_key, file_key
from orchestration.defs.partitions import client_day_key, client_day_partitions
from orchestration.defs.resources import ArchiveResource, SftpSecrets, WarehouseResource
from orchestration.export import archive
from orchestration.feeds import COMPLETION, FEEDS
from tests.e2e_support import set_warehouse_env, start_sftp_server

DAY = dt.date(2026, 11, 27)  # files dated 2026-11-28
NEXT_DAY = dt.date(2026, 11, 28)
EMPTY_DAY = dt.date(2026, 11, 29)  # no rows: a header-only file

# user_id, username, idnumber, email, firstname, lastname, course_id, shortname, name
ROWS = {
    DAY: [
        (3, "amy", "E3", "amy@example.org", "Amy", "O'Brien", 2, "GDPR", "Data, Privacy"),
        (5, "bob", "E5", "bob@example.org", "Bob", "Li", 2, "GDPR", "Data, Privacy"),
    ],
    NEXT_DAY: [(7, "zoe", "E7", "zoe@example.org", "Zoë", "Smith", 3, "FS", "Fire Safety")],
}


def create_completion_mart(pg: Any, rows: Iterable[tuple[Any, ...]]) -> None:
    """marts.course_completions with `rows`: client_id, report_date, the nine learner and course
    columns, completion_date, completed_at (the mart's columns the files step reads, without the
    change bookkeeping)."""
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute("create schema marts")
        conn.execute(
            """create table marts.course_completions (
                client_id text, report_date date, user_id bigint, username text, idnumber text,
                email text, firstname text, lastname text, course_id bigint,
                course_shortname text, course_name text, completion_date date,
                completed_at timestamp)"""
        )
        with conn.cursor().copy("copy marts.course_completions from stdin") as copy:
            for row in rows:
                copy.write_row(row)


def fill_completion_mart(pg: Any) -> Any:
    """The mart with acme's ROWS, each completed at 09:00 on its day; returns `pg`."""
    create_completion_mart(
        pg,
        [
            ("acme", day, *row, day, dt.datetime.combine(day, dt.time(9)))
            for day, rows in ROWS.items()
            for row in rows
        ],
    )
    return pg


@contextmanager
def acme_sftp_site(
    pg: Any, tmp_path: Path, env: pytest.MonkeyPatch
) -> Iterator[tuple[LocalSftpServer, Path]]:
    """For the block, a local SFTP server (under `tmp_path`) with acme's account, and the
    warehouse `pg` in the environment the files step reads; yields the server and acme's key
    path. The tests write acme's clients file themselves: what they test is in it."""
    server, keys = start_sftp_server(tmp_path, ["acme"])
    set_warehouse_env(env, pg)
    try:
        yield server, keys["acme"]
    finally:
        server.stop()


def archive_earlier_file(
    archive_root: Path,
    feed: str,
    day: dt.date,
    name: str,
    content: bytes,
    *,
    rows: int,
    made_at: str,
    **fields: Any,
) -> Path:
    """acme's `feed` file `name` of `day` (`content`, `rows` data rows) put in the archive with the
    archive's own store, as an earlier run's export left it, for a run that only delivers;
    `fields` give the rest of its record (contract_version, ...). Returns its path."""
    final = archive.feed_folder(archive_root, "acme", feed) / name
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = final.with_name(f"{name}.staged")
    staged.write_bytes(content)
    record = archive.ArchivedFile(
        client_id="acme",
        feed=feed,
        activity_day=day.isoformat(),
        file_name=name,
        rows=rows,
        bytes=len(content),
        sha256=sha256(content),
        made_at=made_at,
        path=final,
        **fields,
    )
    archive.store(staged, final, record)
    return final


def files_asset(clients_file: Path) -> dg.AssetsDefinition:
    """The real client_files step for the clients file as it is now."""
    config = load_clients(clients_file)
    marts = {name: dg.AssetKey(["marts", feed.mart]) for name, feed in FEEDS.items()}
    return build_client_files_asset(config, marts, client_day_partitions(config))


def run_files(
    files: dg.AssetsDefinition,
    archive: Path,
    day: dt.date,
    *,
    feeds: tuple[str, ...] = ("completion",),
    deliver_only: bool | tuple[str, ...] = False,
    tags: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """One files run of acme's day: export and deliver `feeds`, or only deliver them (a re-send;
    `deliver_only` may name the feeds that are delivered only)."""
    keys = [delivery_key(FEEDS[name]) for name in feeds]
    if deliver_only is not True:
        keys += [file_key(FEEDS[name]) for name in feeds if name not in (deliver_only or ())]
    return dg.materialize(
        [files],
        partition_key=client_day_key("acme", day),
        selection=keys,
        resources={
            "warehouse_db": WarehouseResource(),
            "archive_dir": ArchiveResource(root=str(archive)),
            "sftp_secrets": SftpSecrets(),
        },
        tags=tags,
        instance=instance,
        raise_on_error=False,
    )


def delivery_metadata(result: dg.ExecuteInProcessResult, feed: str) -> dict[str, Any]:
    (materialised,) = [
        m
        for m in result.asset_materializations_for_node("client_files")
        if m.asset_key == delivery_key(FEEDS[feed])
    ]
    return {key: value.value for key, value in materialised.metadata.items()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failure = result.get_step_failure_events()[0].step_failure_data
    if failure.user_failure_data is not None and failure.user_failure_data.description:
        return failure.user_failure_data.description
    assert failure.error is not None
    return failure.error.message


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


COMPLETION_PREFIX = COMPLETION.prefix
