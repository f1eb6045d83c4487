"""The local demo: synthetic Moodle sites for the clients file, then a real run through Dagster.

Runs go through the Dagster instance in `.ods/dagster` (DAGSTER_HOME), so `dagster dev` shows the
same run history, materialisations and metadata afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from ods_local.instance import write_local_instance
from ods_local.postgres import start_postgres
from orchestration.clients import ClientsConfig, load_clients
from orchestration.paths import ods_home
from synthetic_moodle import SiteSpec, SiteSummary, check_replaceable, generate_site

if TYPE_CHECKING:
    from orchestration.defs.reruns import FileRun

# Moodle release of each demo site: one before the 4.3 SCORM table change, two after it.
DEMO_RELEASES = {"acme": "4.2", "globex": "4.5", "initech": "5.0"}
DEFAULT_RELEASE = "4.3"
HISTORY_DAYS = 7


def generate_demo_sites(
    conn: psycopg.Connection, config: ClientsConfig, first: dt.date, last: dt.date, learners: int
) -> list[SiteSummary]:
    """One synthetic site per client, with activity from a week before `first` through `last`.

    Every client's schema is checked first (UnmarkedSchemaError naming all that the generator did
    not make), so a refusal leaves every schema as it was, not half the sites regenerated."""
    start = first - dt.timedelta(days=HISTORY_DAYS)
    check_replaceable(conn, [client.moodle_schema for client in config.clients.values()])
    specs = []
    for seed, (client_id, client) in enumerate(sorted(config.clients.items()), start=1):
        spec = SiteSpec(
            schema=client.moodle_schema,
            release=DEMO_RELEASES.get(client_id, DEFAULT_RELEASE),
            prefix=client.table_prefix,
            seed=seed,
            learners=learners,
            start=start,
            days=(last - start).days + 1,
            timezone=config.timezone_of(client_id),
        )
        specs.append(spec)
    return [generate_site(conn, spec) for spec in specs]


def use_demo_dagster_home() -> None:
    """Point DAGSTER_HOME at `<ODS_HOME>/dagster` unless it is set (not empty), with the shipped
    instance settings on the embedded PostgreSQL (ods_local/instance.py), which is
    started when it is not running. A DAGSTER_HOME that is set is used as it is."""
    if os.environ.get("DAGSTER_HOME"):
        return
    home = ods_home() / "dagster"
    write_local_instance(home, start_postgres(ods_home() / "pgdata"))
    os.environ["DAGSTER_HOME"] = str(home)


def run_days(first: dt.date, last: dt.date, log_level: str = "WARNING") -> list[FileRun]:
    """Build the marts for first..last in one run, then each client's files, one run a day."""
    import dagster as dg

    from orchestration.defs.code_location import build_definitions
    from orchestration.defs.partitions import days_between
    from orchestration.defs.reruns import build_marts, run_client_files
    from orchestration.feeds import FEEDS

    use_demo_dagster_home()
    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    config = load_clients()
    build_marts(defs, instance, first, last, by="demo", log_level=log_level)
    return [
        file_run
        for day in days_between(first, last)
        for client_id, client in sorted(config.clients.items())
        for file_run in run_client_files(
            defs,
            instance,
            config,
            client_id,
            day,
            [feed for feed in FEEDS.values() if feed.name in client.feeds],
            deliver_only=False,
            by="demo",
            log_level=log_level,
        )
    ]


def what_clients_received(config: ClientsConfig, home: Path | None = None) -> list[str]:
    """Lines for the demo's summary: where each client with a manifest found it, and where each
    client with compressed or encrypted files found them, with the command that opens one.

    Read from the local SFTP server's folders (what the clients see), newest file date first."""
    from ods_local.pgp_keys import demo_keyring
    from ods_local.services import SftpPaths
    from orchestration.export.envelope import envelope_of

    home = home or ods_home()
    root = SftpPaths(home).root
    lines = []
    for client_id, client in sorted(config.clients.items()):
        folder = root / client.sftp.username / client.sftp.directory.strip("/")
        if client.manifest:
            manifests = sorted(folder.glob("MANIFEST*.json"), reverse=True)
            where = manifests[0] if manifests else f"none yet in {folder}"
            lines.append(f"{client_id}: manifest {where}")
        envelope = envelope_of(client)
        if envelope.is_plain:
            continue
        wrapped = sorted(folder.glob(f"*.csv{envelope.suffix}"), reverse=True)
        if not wrapped:
            lines.append(f"{client_id}: no *.csv{envelope.suffix} file yet in {folder}")
            continue
        kind = " and ".join(
            what
            for what, on in (
                ("gzip-compressed", envelope.compression),
                ("OpenPGP-encrypted", envelope.public_key),
            )
            if on
        )
        lines.append(f"{client_id}: {kind} files, e.g. {wrapped[0]}")
        if envelope.public_key is not None:
            unzip = " | gunzip" if envelope.compression else ""
            lines.append(
                f"  open it: gpg --homedir {demo_keyring(home)} --decrypt {wrapped[0]}{unzip}"
            )
    return lines
