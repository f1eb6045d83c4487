"""Delivering a client's archived files to its SFTP folder, then retention there: the pieces the
files step (`client_files`) is made of.

Before anything is sent the archived file is checked against its manifest (size, sha256): a
damaged or substituted file is refused. One delivery per client-day runs at a time
(`delivery.client_day_lock`, a lock in the warehouse that `ods` commands and runs launched
anywhere share); a second one waits for it. Every delivery is written to the archive's ledger of
deliveries (`delivery.ledger`), and retention removes only files that ledger shows we delivered.
Upload and retention share one connection (`open_sftp`). Faults that a later attempt may not meet
(server down, connection lost, disk full) fail the step and Dagster retries it with exponential
backoff; faults that need a person (host key changed, login refused, folder missing, permission
denied, a key's environment variable unset) fail at once, without retries, so the operator sees
them well before 05:00 instead of after half an hour of backoff. Every failure names the client,
feed, activity day, file and server.
"""

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from orchestration.clients import ClientConfig, ClientsConfig
from orchestration.defs.resources import SftpSecrets
from orchestration.delivery import ledger
from orchestration.delivery.client_day_lock import DeliveryBusy, one_delivery_at_a_time
from orchestration.delivery.retention import RetentionReport
from orchestration.delivery.sftp import DeliveryError, DeliveryReceipt, HostKeyMismatch, SftpTarget
from orchestration.export import archive
from orchestration.feeds import FEEDS


def delivery_retry_policy(clients: ClientsConfig) -> dg.RetryPolicy:
    """Retries of faults that may clear by themselves (a server restarting, a dropped
    connection), as the clients file sets them (`delivery_retries`,
    `delivery_retry_delay_seconds`; by default four tries over about 6 minutes, which leaves
    time before the 05:00 deadline for a 03:00 run). Faults that need a person are raised with
    `allow_retries=False` and are not retried whatever this says."""
    return dg.RetryPolicy(
        max_retries=clients.delivery_retries,
        delay=clients.delivery_retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


class DeliveryConfig(dg.Config):
    """Launch-time options of a delivery run (the launchpad's `config` of the delivery op)."""

    retention_dry_run: bool = Field(
        default=False,
        description=(
            "List the client's expired feed files in the metadata without removing them "
            "(retention_would_delete instead of retention_deleted)."
        ),
    )
    lock_wait_seconds: float = Field(
        default=600,
        ge=0,
        description=(
            "How long to wait while another delivery of the same client-day (a nightly run, an "
            "`ods resend`) is in progress before failing this one."
        ),
    )


def sftp_target(
    client_id: str, client: ClientConfig, secrets: SftpSecrets | None = None
) -> SftpTarget:
    """The client's server and login, secrets read now: through the run's `sftp_secrets`
    resource, or from the environment without one (`ods` commands outside a run). ConfigError
    naming the client, the key and the variable when one is missing."""
    lookup = secrets.lookup if secrets is not None else os.environ.get
    private_key, password = client.sftp.credentials(client_id, lookup)
    return SftpTarget(
        client_id=client_id,
        host=client.sftp.host,
        port=client.sftp.port,
        username=client.sftp.username,
        directory=client.sftp.directory,
        host_key=client.sftp.pinned_host_key(),
        private_key=private_key,
        password=password,
    )


def retention_prefixes(client: ClientConfig) -> list[str]:
    """File prefixes of every feed the client gets: each delivery prunes all of them."""
    return sorted(FEEDS[name].prefix for name in client.feeds)


def retention_metadata(report: RetentionReport) -> dict[str, Any]:
    key = "retention_would_delete" if report.dry_run else "retention_deleted"
    return {
        key: dg.MetadataValue.json(report.deleted),
        "retention_kept": dg.MetadataValue.int(report.kept),
        "retention_foreign": dg.MetadataValue.json(report.foreign),
        "retention_temporaries_removed": dg.MetadataValue.json(report.temporaries_removed),
        "retention_dry_run": report.dry_run,
    }


def record_delivery(
    archive_root: Path,
    target: SftpTarget,
    feed: str,
    day: dt.date,
    file_name: str,
    receipt: DeliveryReceipt,
    run_id: str,
    contract_version: str | None = None,
) -> ledger.Delivery:
    """Enter a delivery in the archive's ledger: what retention may later remove. `feed` is the
    feed's name, or `manifest` for a client-day's manifest. The line carries the file's contract
    version and the version of the feed's delivery before it (`contract_change` reads them)."""
    delivery = ledger.Delivery(
        client_id=target.client_id,
        feed=feed,
        activity_day=day.isoformat(),
        file_name=file_name,
        **ledger.target_folder(target),
        bytes=receipt.bytes,
        sha256=receipt.sha256,
        delivered_at=archive.now_utc(),
        run_id=run_id,
        contract_version=contract_version,
        previous_contract_version=(
            ledger.previous_contract_version(
                archive_root, target.client_id, feed, file_name, receipt.sha256
            )
            if contract_version is not None
            else None
        ),
    )
    ledger.record(archive_root, delivery)
    return delivery


def contract_change(delivery: ledger.Delivery) -> dict[str, Any]:
    """`contract_changed` (and `previous_contract_version` when it did) of a delivery: True on
    the first delivery of a feed after the client's contract for it changed. A first delivery
    ever, or one after deliveries that predate contract versions, is not a change."""
    previous = delivery.previous_contract_version
    changed = previous is not None and previous != delivery.contract_version
    return (
        {"contract_changed": True, "previous_contract_version": previous}
        if changed
        else {"contract_changed": False}
    )


@contextmanager
def client_day_lock(
    conn: psycopg.Connection,
    client_id: str,
    day: dt.date,
    run_id: str,
    config: DeliveryConfig,
    where: str,
) -> Iterator[None]:
    """The client-day's delivery lock, or a retryable failure naming who holds it."""
    try:
        with one_delivery_at_a_time(
            conn, client_id, day, holder=f"run {run_id[:8]}", wait_seconds=config.lock_wait_seconds
        ):
            yield
    except DeliveryBusy as error:
        raise dg.Failure(
            description=f"{where}: not delivered: {error}",
            metadata={"retryable": True},
            allow_retries=True,
        ) from error


def delivery_failure_metadata(error: DeliveryError) -> dict[str, Any]:
    """What a failure's metadata says of a delivery fault: both fingerprints of a changed host
    key, so the operator can compare them with what the server's administrator says."""
    if isinstance(error, HostKeyMismatch):
        return {
            "pinned_fingerprint": error.expected_fingerprint,
            "presented_fingerprint": error.presented_fingerprint,
        }
    return {}
