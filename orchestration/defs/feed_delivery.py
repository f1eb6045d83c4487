"""Per feed: delivery of a client's archived file to its SFTP folder, then retention there.

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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from orchestration.clients import ClientConfig, ClientsConfig, ConfigError
from orchestration.days import file_date, file_name
from orchestration.defs.partitions import client_and_day
from orchestration.defs.resources import ArchiveResource, WarehouseResource
from orchestration.delivery import ledger
from orchestration.delivery.client_day_lock import DeliveryBusy, one_delivery_at_a_time
from orchestration.delivery.retention import RetentionError, RetentionReport, prune_remote
from orchestration.delivery.sftp import DeliveryError, HostKeyMismatch, SftpTarget, open_sftp
from orchestration.export import archive
from orchestration.feeds import FEEDS, Feed


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


def sftp_target(client_id: str, client: ClientConfig) -> SftpTarget:
    """The client's server and login, secrets read now; ConfigError when one is missing."""
    private_key, password = client.sftp.credentials(client_id)
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


def _retention_metadata(report: RetentionReport) -> dict[str, Any]:
    key = "retention_would_delete" if report.dry_run else "retention_deleted"
    return {
        key: dg.MetadataValue.json(report.deleted),
        "retention_kept": dg.MetadataValue.int(report.kept),
        "retention_foreign": dg.MetadataValue.json(report.foreign),
        "retention_temporaries_removed": dg.MetadataValue.json(report.temporaries_removed),
        "retention_dry_run": report.dry_run,
    }


def build_delivery_asset(
    feed: Feed,
    clients: ClientsConfig,
    file_asset: dg.AssetsDefinition,
    partitions: dg.MultiPartitionsDefinition,
) -> dg.AssetsDefinition:
    """The feed's file delivered to one client's folder for one day, with retention after it."""

    @dg.asset(
        name=f"{feed.name}_delivery",
        partitions_def=partitions,
        deps=[file_asset],
        group_name="delivery",
        description=(
            f"{feed.prefix} file delivered to the client's SFTP folder (temporary name, size "
            "check, rename), then the client's expired feed files removed over the same connection."
        ),
        retry_policy=delivery_retry_policy(clients),
        kinds={"sftp"},
    )
    def feed_delivery(
        context: dg.AssetExecutionContext,
        config: DeliveryConfig,
        archive_dir: ArchiveResource,
        warehouse_db: WarehouseResource,
    ) -> Iterator[dg.MaterializeResult]:
        client_id, day = client_and_day(context.partition_key)
        client = clients.clients[client_id]
        name = file_name(feed.prefix, day, client.file_date)
        where = f"client {client_id}, feed {feed.name}, day {day}, file {name}"
        server = f"{client.sftp.username}@{client.sftp.host}:{client.sftp.port}"
        made = archive.read(archive.feed_folder(archive_dir.path, client_id, feed.name) / name)
        if made is None:
            raise dg.Failure(
                description=(
                    f"{where}: nothing to deliver to {server}, the archive has no such file; "
                    f"materialize {feed.name}_file for this partition first"
                ),
                allow_retries=False,
            )
        try:
            archive.verify(made)
            target = sftp_target(client_id, client)
        except (archive.ArchiveMismatch, ConfigError) as error:
            raise dg.Failure(
                description=f"{where}: not delivered to {server}: {error}", allow_retries=False
            ) from error
        with (
            warehouse_db.connect(autocommit=True) as lock_conn,
            _client_day_lock(lock_conn, client_id, day, context.run_id, config, where),
            open_sftp(target) as session,
        ):
            try:
                receipt = session.deliver(made.path, made.file_name, expected_sha256=made.sha256)
            except DeliveryError as error:
                raise delivery_failure(error, where) from error
            context.log.info(
                f"delivered {receipt.remote_path} ({receipt.bytes} bytes, sha256 {receipt.sha256})"
            )
            ledger.record(
                archive_dir.path,
                ledger.Delivery(
                    client_id=client_id,
                    feed=feed.name,
                    activity_day=day.isoformat(),
                    file_name=made.file_name,
                    host=target.host,
                    port=target.port,
                    username=target.username,
                    directory=target.directory,
                    bytes=receipt.bytes,
                    sha256=receipt.sha256,
                    delivered_at=archive.now_utc(),
                    run_id=context.run_id,
                ),
            )
            delivered: dict[str, Any] = {
                "remote_path": receipt.remote_path,
                "server": target.server,
                "rows": dg.MetadataValue.int(made.rows),
                "bytes": dg.MetadataValue.int(receipt.bytes),
                "sha256": receipt.sha256,
                "seconds": receipt.seconds,
            }
            try:
                report = prune_remote(
                    session,
                    target.directory,
                    retention_prefixes(client),
                    today=file_date(day, client.file_date),
                    retention_days=client.retention_days,
                    dry_run=config.retention_dry_run,
                    delivered=ledger.delivered_sizes(
                        archive_dir.path,
                        client_id,
                        host=target.host,
                        port=target.port,
                        username=target.username,
                        directory=target.directory,
                    ),
                )
            except RetentionError as error:
                # The file is in place, so the partition is delivered (and the 05:00 check passes);
                # the step still fails so the operator sees it. Not retried: a retry would upload
                # the same bytes again, and retention runs with the next delivery anyway.
                yield dg.MaterializeResult(metadata={**delivered, "retention_error": str(error)})
                raise dg.Failure(
                    description=f"{where}: delivered, but {error}",
                    metadata={"deleted_before_stopping": dg.MetadataValue.json(error.deleted)},
                    allow_retries=False,
                ) from error
        if report.deleted:
            verb = "would remove" if report.dry_run else "removed"
            context.log.info(f"retention {verb} {', '.join(report.deleted)}")
        if report.foreign:
            context.log.info(
                f"retention left {', '.join(report.foreign)}: expired by name, but not files "
                "this project delivered there (or changed since)"
            )
        yield dg.MaterializeResult(metadata={**delivered, **_retention_metadata(report)})

    return feed_delivery


@contextmanager
def _client_day_lock(
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


def delivery_failure(error: DeliveryError, where: str) -> dg.Failure:
    """A Dagster failure that says what failed; `allow_retries` follows the fault's nature."""
    metadata: dict[str, Any] = {"retryable": error.retryable}
    if isinstance(error, HostKeyMismatch):
        metadata["pinned_fingerprint"] = error.expected_fingerprint
        metadata["presented_fingerprint"] = error.presented_fingerprint
    return dg.Failure(
        description=f"{where}: {error}", metadata=metadata, allow_retries=error.retryable
    )
