"""One client's files for one day, every feed it takes, in one step: export, check, deliver.

Each feed keeps its own assets in the UI — `<feed>_file` (the CSV in the archive, with its
checks) and `<feed>_delivery` (the file in the client's folder) — partitioned by date × client,
but one run makes all of them for a client-day: one process, one warehouse connection, one SSH
session, one retention pass. That is what makes a night of hundreds of clients cost SQL and bytes
rather than process starts (issue 13: a run per feed cost about 14 CPU-seconds of start-up for
0.6 s of work). A client that does not take a feed never materialises that feed's partitions.

Selecting a subset works as in the UI: a feed's file and delivery re-run that feed; a delivery
alone re-sends the archived file unchanged (`ods resend`).

Within the step, feeds fail separately: a file whose blocking check fails is kept in the archive
and not delivered, while the client's other files are; a delivery that fails does not stop the
next one. The step then fails, naming every feed that failed and why, and is retried (the whole
client-day: exports are cheap and deliveries idempotent) only when every failure may clear by
itself.

A client with `manifest: true` gets `MANIFEST<YYYYMMDD>.json` last, over the same session, once
every one of its feeds' files for the day is in its folder (`export.manifest`). If any is not (a
feed failed in this run, or was never delivered), the manifest is withheld — a loader that waits
for it must never take a partial day as complete — and the step's failure says so; the run that
delivers the missing file writes it.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.clients import ClientConfig, ClientsConfig, ConfigError
from orchestration.days import file_date, file_name, manifest_name
from orchestration.defs.feed_delivery import (
    DeliveryConfig,
    client_day_lock,
    contract_change,
    delivery_failure_metadata,
    delivery_retry_policy,
    record_delivery,
    retention_metadata,
    retention_prefixes,
    sftp_target,
)
from orchestration.defs.feed_files import file_metadata
from orchestration.defs.file_checks import evaluate_file_checks, file_check_specs
from orchestration.defs.jobs import MARTS_RUN_TAG
from orchestration.defs.partitions import client_and_day
from orchestration.defs.resources import ArchiveResource, SftpSecrets, WarehouseResource
from orchestration.delivery import ledger
from orchestration.delivery.retention import RetentionError, RetentionReport, prune_remote
from orchestration.delivery.sftp import (
    DeliveryError,
    DeliveryReceipt,
    SftpDelivery,
    SftpTarget,
    open_sftp,
)
from orchestration.export import archive
from orchestration.export.feed_file import export_feed_file
from orchestration.export.manifest import MANIFEST_FEED, archive_manifest, manifest_entry
from orchestration.feeds import FEEDS, Feed

CLIENT_FILES = "client_files"
SFTP_SECRETS = "sftp_secrets"


def file_key(feed: Feed) -> dg.AssetKey:
    return dg.AssetKey(f"{feed.name}_file")


def delivery_key(feed: Feed) -> dg.AssetKey:
    return dg.AssetKey(f"{feed.name}_delivery")


def offered_feeds(config: ClientsConfig) -> list[Feed]:
    """The feeds at least one client takes: the ones with assets."""
    return [feed for feed in FEEDS.values() if config.subscribers(feed.name)]


def client_selection(
    client: ClientConfig, *, deliver_only: bool = False, feeds: list[Feed] | None = None
) -> tuple[list[dg.AssetKey], list[dg.AssetCheckKey]]:
    """The assets and checks of a files run for a client: its feeds (or those asked for), each
    file with its checks and delivery, or the deliveries alone (a re-send)."""
    from orchestration.defs.deadline import DEADLINE_CHECK
    from orchestration.defs.file_checks import FILE_CHECKS

    chosen = [f for f in (feeds or FEEDS.values()) if f.name in client.feeds]
    assets = [delivery_key(f) for f in chosen]
    checks = [dg.AssetCheckKey(delivery_key(f), DEADLINE_CHECK) for f in chosen]
    if not deliver_only:
        assets += [file_key(f) for f in chosen]
        checks += [dg.AssetCheckKey(file_key(f), name) for f in chosen for name in FILE_CHECKS]
    return assets, checks


@dataclass
class _Problem:
    """One feed of the client-day that failed (None: the client-day's manifest), and whether a
    retry may help."""

    feed: Feed | None
    message: str
    retryable: bool
    metadata: dict[str, Any]


def build_client_files_asset(
    clients: ClientsConfig,
    mart_keys: dict[str, dg.AssetKey],
    partitions: dg.MultiPartitionsDefinition,
) -> dg.AssetsDefinition:
    """Every offered feed's `<feed>_file` and `<feed>_delivery`, made by one step per client-day.

    The step reads the SFTP secrets through the `sftp_secrets` resource, which the code location
    binds in its Definitions, so the UI lists it."""
    feeds = offered_feeds(clients)
    specs = []
    for feed in feeds:
        specs.append(
            dg.AssetSpec(
                key=file_key(feed),
                deps=[
                    dg.AssetDep(
                        mart_keys[feed.name],
                        partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                            partition_dimension_name="date"
                        ),
                    )
                ],
                group_name="files",
                description=(
                    f"{feed.prefix} CSV file for one client and day: {feed.description} "
                    "Written in the client's columns into the local archive."
                ),
                kinds={"csv"},
                skippable=True,
            )
        )
        specs.append(
            dg.AssetSpec(
                key=delivery_key(feed),
                deps=[file_key(feed)],
                group_name="delivery",
                description=(
                    f"{feed.prefix} file delivered to the client's SFTP folder (unique temporary "
                    "name, size and sha256 checked, rename), then the client's expired feed "
                    "files removed in the same session."
                ),
                kinds={"sftp"},
                skippable=True,
            )
        )
    check_specs = [
        spec for feed in feeds for spec in file_check_specs(feed, file_key(feed).path[-1])
    ]

    @dg.multi_asset(
        name=CLIENT_FILES,
        specs=specs,
        check_specs=check_specs,
        partitions_def=partitions,
        can_subset=True,
        retry_policy=delivery_retry_policy(clients),
        description="One client's files for one day: export, check and deliver every feed it takes.",
    )
    def client_files(
        context: dg.AssetExecutionContext,
        config: DeliveryConfig,
        warehouse_db: WarehouseResource,
        archive_dir: ArchiveResource,
        sftp_secrets: SftpSecrets,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        client_id, day = client_and_day(context.partition_key)
        client = clients.clients[client_id]
        selected = context.selected_asset_keys
        mine = [f for f in feeds if f.name in client.feeds]
        problems: list[_Problem] = []
        notes: list[str] = []
        ready: dict[str, archive.ArchivedFile] = {}
        exports = [f for f in mine if file_key(f) in selected]
        if exports:
            with warehouse_db.connect() as conn:
                for feed in exports:
                    made = export_feed_file(
                        conn,
                        feed=feed,
                        client_id=client_id,
                        client=client,
                        day=day,
                        archive_root=archive_dir.path,
                    )
                    context.log.info(f"{made.file_name}: {made.rows} rows, {made.bytes} bytes")
                    yield dg.MaterializeResult(
                        asset_key=file_key(feed), metadata=file_metadata(made)
                    )
                    results = list(
                        evaluate_file_checks(
                            conn, feed, client_id, client, day, made, asset_key=file_key(feed)
                        )
                    )
                    yield from results
                    failed = [str(r.check_name) for r in results if not r.passed]
                    if failed:
                        problems.append(
                            _Problem(
                                feed,
                                f"{_where(client_id, feed, day, made.file_name)}: the file failed "
                                f"its check {', '.join(failed)}, so it was not delivered; it is "
                                "kept in the archive for a look",
                                False,
                                {},
                            )
                        )
                    else:
                        ready[feed.name] = made
        deliveries = [f for f in mine if delivery_key(f) in selected]
        if deliveries:
            yield from _deliver(
                context,
                client_id,
                clients.clients[client_id],
                day,
                config,
                deliveries,
                ready,
                archive_dir,
                warehouse_db,
                sftp_secrets,
                problems,
                clients.timezone_of(client_id),
                notes,
            )
        if problems:
            raise dg.Failure(
                description=_failure_description(client_id, day, problems, notes),
                metadata={
                    "failed_feeds": dg.MetadataValue.json(
                        [p.feed.name for p in problems if p.feed is not None]
                    ),
                    "retryable": all(p.retryable for p in problems),
                    **{k: v for p in problems for k, v in p.metadata.items()},
                },
                allow_retries=all(p.retryable for p in problems),
            )

    return client_files


def _where(client_id: str, feed: Feed, day: dt.date, name: str) -> str:
    return f"client {client_id}, feed {feed.name}, day {day}, file {name}"


def _failure_description(
    client_id: str, day: dt.date, problems: list[_Problem], notes: list[str]
) -> str:
    if len(problems) == 1:
        described = problems[0].message
    else:
        listed = "\n".join(f"- {p.message}" for p in problems)
        described = f"client {client_id}, day {day}: {len(problems)} feeds failed:\n{listed}"
    return "\n".join([described, *notes])


def _archived(
    client_id: str,
    client: ClientConfig,
    day: dt.date,
    feeds: list[Feed],
    ready: dict[str, archive.ArchivedFile],
    archive_dir: ArchiveResource,
    exported: set[str],
    problems: list[_Problem],
    server: str,
) -> list[tuple[Feed, archive.ArchivedFile]]:
    """The files to send, each checked against its manifest; the others become problems."""
    to_send = []
    for feed in feeds:
        name = file_name(feed.prefix, day, client.file_date)
        where = _where(client_id, feed, day, name)
        if feed.name in ready:
            made: archive.ArchivedFile | None = ready[feed.name]
        elif feed.name in exported:
            continue  # made in this run but failed its checks: already a problem
        else:
            made = archive.read(archive.feed_folder(archive_dir.path, client_id, feed.name) / name)
        if made is None:
            problems.append(
                _Problem(
                    feed,
                    f"{where}: nothing to deliver to {server}, the archive has no such file; "
                    f"materialize {feed.name}_file for this partition first",
                    False,
                    {},
                )
            )
            continue
        try:
            archive.verify(made)
        except archive.ArchiveMismatch as error:
            problems.append(
                _Problem(feed, f"{where}: not delivered to {server}: {error}", False, {})
            )
            continue
        to_send.append((feed, made))
    return to_send


def _last_delivery(archive_root: Path, target: SftpTarget, name: str) -> ledger.Delivery | None:
    return ledger.last_delivery(
        archive_root, target.client_id, name, **ledger.target_folder(target)
    )


def _delivered_already(
    archive_root: Path,
    target: SftpTarget,
    feed: str,
    day: dt.date,
    made: archive.ArchivedFile,
    session: SftpDelivery,
    run_id: str,
) -> ledger.Delivery | None:
    """The delivery of this file to this folder, when the folder holds these exact bytes under its
    name (size, then sha256 read back); else None.

    Normally that is the ledger's last delivery of the name there. A run that died between a
    file's rename and its ledger line left the file in place and no line: the folder holds
    exactly the bytes we would send, so they were delivered, and the missing line is written now
    (by this run), so that retention knows the file as ours."""
    if not session.holds(made.sent_name, made.sent_size, made.sent_digest):
        return None
    earlier = _last_delivery(archive_root, target, made.sent_name)
    if (
        earlier is not None
        and earlier.sha256 == made.sent_digest
        and earlier.bytes == made.sent_size
    ):
        return earlier
    receipt = DeliveryReceipt(
        target.remote_path(made.sent_name), made.sent_size, made.sent_digest, 0.0
    )
    return record_delivery(
        archive_root, target, feed, day, made.sent_name, receipt, run_id, made.contract_version
    )


def _deliver(
    context: dg.AssetExecutionContext,
    client_id: str,
    client: ClientConfig,
    day: dt.date,
    options: DeliveryConfig,
    feeds: list[Feed],
    ready: dict[str, archive.ArchivedFile],
    archive_dir: ArchiveResource,
    warehouse_db: WarehouseResource,
    secrets: SftpSecrets,
    problems: list[_Problem],
    timezone: str,
    notes: list[str],
) -> Iterator[dg.MaterializeResult]:
    """Send the client-day's files over one SSH session, then its manifest (clients with
    `manifest: true`), then one retention pass."""
    server = f"{client.sftp.username}@{client.sftp.host}:{client.sftp.port}"
    exported: set[str] = {f.name for f in feeds if file_key(f) in context.selected_asset_keys}
    to_send = _archived(
        client_id, client, day, feeds, ready, archive_dir, exported, problems, server
    )
    if not to_send:
        if client.manifest:
            notes.append(_withheld(client, day, "none of the run's files could be sent"))
        return
    try:
        target = sftp_target(client_id, client, secrets)
    except ConfigError as error:
        for feed, made in to_send:
            where = _where(client_id, feed, day, made.sent_name)
            problems.append(
                _Problem(feed, f"{where}: not delivered to {server}: {error}", False, {})
            )
        return
    sent: list[tuple[Feed, archive.ArchivedFile, DeliveryReceipt, ledger.Delivery]] = []
    already: list[tuple[Feed, archive.ArchivedFile, ledger.Delivery]] = []
    # A files run the sensor requested, or Dagster's retry of one (it keeps the tags), may follow
    # a run that died after delivering some of the client-day's files: those are not sent again.
    # `ods resend` and operators' runs always send.
    skip_delivered = MARTS_RUN_TAG in context.run.tags
    report: RetentionReport | None = None
    retention_error: RetentionError | None = None
    manifest: dict[str, Any] = {}
    with (
        warehouse_db.connect(autocommit=True) as lock_conn,
        client_day_lock(
            lock_conn, client_id, day, context.run.run_id, options, f"client {client_id}, day {day}"
        ),
        open_sftp(target) as session,
    ):
        for feed, made in to_send:
            where = _where(client_id, feed, day, made.sent_name)
            try:
                earlier = (
                    _delivered_already(
                        archive_dir.path, target, feed.name, day, made, session, context.run.run_id
                    )
                    if skip_delivered
                    else None
                )
                if earlier is not None:
                    context.log.info(
                        f"{made.sent_name} is already in {target.directory} with these bytes "
                        f"(sha256 {made.sent_digest}, delivered {earlier.delivered_at} by run "
                        f"{earlier.run_id}): not sent again"
                    )
                    already.append((feed, made, earlier))
                    continue
                receipt = session.deliver(
                    made.sent_path, made.sent_name, expected_sha256=made.sent_digest
                )
            except DeliveryError as error:
                problems.append(
                    _Problem(
                        feed, f"{where}: {error}", error.retryable, delivery_failure_metadata(error)
                    )
                )
                continue
            context.log.info(
                f"delivered {receipt.remote_path} ({receipt.bytes} bytes, sha256 {receipt.sha256})"
            )
            line = record_delivery(
                archive_dir.path,
                target,
                feed.name,
                day,
                made.sent_name,
                receipt,
                context.run.run_id,
                made.contract_version,
            )
            sent.append((feed, made, receipt, line))
        if client.manifest:
            manifest = _send_manifest(
                context,
                client_id,
                client,
                day,
                timezone,
                target,
                session,
                archive_dir.path,
                failed={p.feed.name for p in problems if p.feed is not None},
                skip_delivered=skip_delivered,
                problems=problems,
                notes=notes,
            )
        if sent or manifest.get("manifest_sent"):
            try:
                report = prune_remote(
                    session,
                    target.directory,
                    retention_prefixes(client),
                    today=file_date(day, client.file_date),
                    retention_days=client.retention_days,
                    dry_run=options.retention_dry_run,
                    delivered=ledger.delivered_sizes(
                        archive_dir.path, client_id, **ledger.target_folder(target)
                    ),
                )
            except RetentionError as error:
                retention_error = error
    for feed, made, receipt, line in sent:
        metadata: dict[str, Any] = {
            "remote_path": receipt.remote_path,
            "server": target.server,
            "rows": dg.MetadataValue.int(made.rows),
            "bytes": dg.MetadataValue.int(receipt.bytes),
            "sha256": receipt.sha256,
            "seconds": receipt.seconds,
            **_contract_metadata(made, line),
            **_envelope_metadata(made),
            **manifest,
        }
        if report is not None:
            metadata |= retention_metadata(report)
        if retention_error is not None:
            metadata["retention_error"] = str(retention_error)
        yield dg.MaterializeResult(asset_key=delivery_key(feed), metadata=metadata)
    for feed, made, earlier in already:
        yield dg.MaterializeResult(
            asset_key=delivery_key(feed),
            metadata={
                "remote_path": target.remote_path(made.sent_name),
                "server": target.server,
                "rows": dg.MetadataValue.int(made.rows),
                "bytes": dg.MetadataValue.int(made.sent_size),
                "sha256": made.sent_digest,
                "already_delivered": True,
                "delivered_at": earlier.delivered_at,
                "delivered_by_run": earlier.run_id or "",
                **_contract_metadata(made, earlier),
                **_envelope_metadata(made),
                **manifest,
            },
        )
    if report is not None and report.deleted:
        verb = "would remove" if report.dry_run else "removed"
        context.log.info(f"retention {verb} {', '.join(report.deleted)}")
    if report is not None and report.foreign:
        context.log.info(
            f"retention left {', '.join(report.foreign)}: expired by name, but not files this "
            "project delivered there (or changed since)"
        )
    if retention_error is not None:
        # The files are in place, so their partitions are delivered (and the 05:00 check passes);
        # the step still fails so the operator sees it. Not retried: a retry would upload the
        # same bytes again, and retention runs with the next delivery anyway.
        delivered = [m.sent_name for _, m, _, _ in sent]
        problems.append(
            _Problem(
                sent[-1][0] if sent else None,
                f"client {client_id}, day {day}: delivered "
                f"{', '.join(delivered) or 'the manifest'}, but {retention_error}",
                False,
                {"deleted_before_stopping": dg.MetadataValue.json(retention_error.deleted)},
            )
        )


def _contract_metadata(made: archive.ArchivedFile, line: ledger.Delivery) -> dict[str, Any]:
    """The file's contract version, and whether this is the first delivery after it changed."""
    if made.contract_version is None:
        return {}
    return {"contract_version": made.contract_version, **contract_change(line)}


def _envelope_metadata(made: archive.ArchivedFile) -> dict[str, Any]:
    """For a compressed or encrypted client: what wraps the CSV, and the CSV's own sha256."""
    if made.sent_file_name is None:
        return {}
    metadata: dict[str, Any] = {
        "csv_file_name": made.file_name,
        "csv_bytes": dg.MetadataValue.int(made.bytes),
        "csv_sha256": made.sha256,
        "compression": made.compression or "none",
    }
    if made.encryption:
        metadata["openpgp_fingerprint"] = made.encryption.get("openpgp_fingerprint", "")
    return metadata


def _withheld(client: ClientConfig, day: dt.date, why: str) -> str:
    return (
        f"{manifest_name(day, client.file_date)} was not written ({why}): the client's loader "
        "waits for it, so it never takes a partial day as complete; the run that delivers the "
        "missing files writes it"
    )


def _send_manifest(
    context: dg.AssetExecutionContext,
    client_id: str,
    client: ClientConfig,
    day: dt.date,
    timezone: str,
    target: SftpTarget,
    session: SftpDelivery,
    archive_root: Path,
    *,
    failed: set[str],
    skip_delivered: bool,
    problems: list[_Problem],
    notes: list[str],
) -> dict[str, Any]:
    """Upload the client-day's manifest when every file of the client's feeds for the day is in
    its folder (as the ledger shows: delivered there with the archived bytes); its metadata for
    the deliveries, or {} when it was withheld (a note for the step's failure says why)."""
    if failed:
        notes.append(_withheld(client, day, f"failed: {', '.join(sorted(failed))}"))
        return {}
    entries = []
    missing = []
    for feed in (f for f in FEEDS.values() if f.name in client.feeds):
        name = file_name(feed.prefix, day, client.file_date)
        made = archive.read(archive.feed_folder(archive_root, client_id, feed.name) / name)
        line = _last_delivery(archive_root, target, made.sent_name) if made else None
        if made is None or line is None or line.sha256 != made.sent_digest:
            missing.append((feed, made.sent_name if made else name))
            continue
        entries.append(manifest_entry(made, timezone, line))
    if missing:
        listed = ", ".join(f"{name} ({feed.name})" for feed, name in missing)
        why = f"not in {target.directory} with the archived bytes: {listed}"
        problems.append(
            _Problem(
                missing[0][0],
                f"client {client_id}, day {day}: {_withheld(client, day, why)}; deliver them "
                f"with `ods resend --client {client_id} --from {day}` (or `ods rebuild`)",
                False,
                {},
            )
        )
        return {}
    made = archive_manifest(archive_root, client_id, day, client.file_date, timezone, entries)
    where = f"client {client_id}, day {day}, manifest {made.file_name}"
    try:
        earlier = (
            _delivered_already(
                archive_root, target, MANIFEST_FEED, day, made, session, context.run.run_id
            )
            if skip_delivered
            else None
        )
        receipt = (
            None
            if earlier is not None
            else session.deliver(made.path, made.file_name, expected_sha256=made.sha256)
        )
    except DeliveryError as error:
        problems.append(
            _Problem(
                None,
                f"{where}: {error} (the day's files are in place; the manifest follows them)",
                error.retryable,
                delivery_failure_metadata(error),
            )
        )
        return {}
    if receipt is not None:
        record_delivery(
            archive_root, target, MANIFEST_FEED, day, made.file_name, receipt, context.run.run_id
        )
        context.log.info(
            f"manifest {receipt.remote_path} delivered ({len(entries)} files, sha256 "
            f"{receipt.sha256})"
        )
    return {
        "manifest_path": target.remote_path(made.file_name),
        "manifest_sha256": made.sha256,
        "manifest_archive_path": dg.MetadataValue.path(str(made.path)),
        "manifest_sent": receipt is not None,
    }
