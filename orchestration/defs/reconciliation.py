"""Each client's SFTP folder, looked at after the night: `folder_reconciliation`, one partition
per client, its `no_altered_files` check, and one 05:30 schedule per time zone.

At 05:30 local (after the 05:00 deadline, when the night's files are in place) each zone's
schedule asks for one run per client of that zone: the client's folder is listed and compared
with the ledger of deliveries (`delivery.reconcile`). One run per client, so an unreachable server
fails only that client's run; the others are looked at as usual. The asset's metadata is the
table of the folder (present, altered, gone early, foreign, temporary files; the count of files
removed after retention) and the check warns when a file we delivered is there with other bytes.

Files gone before their retention date do not warn: many clients' pickup jobs move each file
away as soon as it arrives, so "gone early" is their normal morning, and a warning every day
would teach operators to ignore the check. They are listed with when they were first seen
missing, which is what answers "did you send X?". An altered file is never normal: the client's
loader may read something other than what we sent.
"""

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from orchestration.clients import ClientsConfig, ConfigError
from orchestration.defs.feed_delivery import sftp_target
from orchestration.defs.jobs import SFTP_HOST_TAG, in_process_job
from orchestration.defs.partitions import zone_slug
from orchestration.defs.resources import ArchiveResource, SftpSecrets
from orchestration.defs.schedules import zone_schedules
from orchestration.delivery.reconcile import (
    FileStatus,
    FolderReport,
    ReconciliationError,
    counts_line,
    reconcile_folder,
)
from orchestration.delivery.sftp import open_sftp

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

# No `from __future__ import annotations` here: Dagster reads the asset's `config` annotation
# (ReconciliationConfig) at definition time, and cannot resolve it from a string.

RECONCILIATION_ASSET = "folder_reconciliation"
ALTERED_CHECK = "no_altered_files"
RECONCILIATION_JOB = "folder_reconciliation_job"
RECONCILIATION_CRON = "30 5 * * *"
# Metadata keys of the counts: one per class, in report order.
COUNT_KEYS = {status: status.value.replace(" ", "_") for status in FileStatus}


def reconcile_client(
    config: ClientsConfig,
    client_id: str,
    archive_root: Path,
    *,
    now: dt.datetime | None = None,
    read_back_all: bool = False,
    secrets: SftpSecrets | None = None,
) -> FolderReport:
    """Look at one client's folder over its own connection (pinned host key, secrets read now:
    through the run's `sftp_secrets` resource, or from the environment for `ods reconcile`).
    `today`, against which retention dates are compared, is the client's local date at `now`.
    Raises ReconciliationError naming the client when it cannot (a secret unset included)."""
    client = config.clients[client_id]
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(ZoneInfo(config.timezone_of(client_id))).date()
    try:
        target = sftp_target(client_id, client, secrets)
    except ConfigError as error:
        raise ReconciliationError(
            f"client {client_id}: the folder was not reconciled: {error}"
        ) from error
    with open_sftp(target) as session:
        return reconcile_folder(
            session,
            archive_root,
            retention_days=client.retention_days,
            today=today,
            now=now,
            read_back_all=read_back_all,
        )


def table_rows(report: FolderReport, *, with_expired: bool = False) -> list[dict[str, Any]]:
    """One row per file, as the asset's table and `ods reconcile` show them. Files removed after
    retention only count (the ledger keeps every delivery, so they grow without end) unless
    `with_expired`."""
    return [
        {
            "status": file.status.value,
            "file": file.name,
            "sent_bytes": file.sent_bytes,
            "bytes_now": file.bytes_now,
            "delivered_at": file.delivered_at,
            "keep_until": file.keep_until.isoformat() if file.keep_until else None,
            "missing_since": file.missing_since,
            "note": file.note,
        }
        for file in report.files
        if with_expired or file.status is not FileStatus.EXPIRED
    ]


_TABLE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("status", "string", description="present, altered, gone early, …"),
        dg.TableColumn("file", "string"),
        dg.TableColumn("sent_bytes", "int", description="size of our latest delivery"),
        dg.TableColumn("bytes_now", "int", description="size on the server now"),
        dg.TableColumn("delivered_at", "string", description="our latest delivery (UTC)"),
        dg.TableColumn("keep_until", "string", description="retention keeps it to this date"),
        dg.TableColumn("missing_since", "string", description="first seen missing (UTC)"),
        dg.TableColumn("note", "string"),
    ]
)


def report_metadata(report: FolderReport) -> dict[str, Any]:
    counts = report.counts()
    return {
        "folder": report.folder,
        "checked_at": report.checked_at,
        **{COUNT_KEYS[status]: dg.MetadataValue.int(count) for status, count in counts.items()},
        "summary": counts_line(counts.items()),
        "files": dg.MetadataValue.table(
            records=[dg.TableRecord(row) for row in table_rows(report)],
            schema=_TABLE_SCHEMA,
        ),
        "read_back": dg.MetadataValue.json(list(report.read_back)),
    }


def altered_check_result(report: FolderReport) -> dg.AssetCheckResult:
    altered = report.altered
    description = (
        f"client {report.client_id}: {len(altered)} file(s) in {report.folder} are not what we "
        f"sent: {', '.join(f'{f.name} ({f.note})' for f in altered)}. Ask the client who changed "
        "them; re-send the day (`ods resend`) if the client needs our file back."
        if altered
        else f"client {report.client_id}: every file of ours in {report.folder} is as we sent it"
    )
    return dg.AssetCheckResult(
        check_name=ALTERED_CHECK,
        passed=not altered,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"altered": dg.MetadataValue.json([f.name for f in altered])},
    )


class ReconciliationConfig(dg.Config):
    """Launch-time options of a reconciliation run."""

    read_back_all: bool = Field(
        default=False,
        description=(
            "Read back every file of ours that is present and compare its sha256 with the "
            "ledger's (costs the folder's bytes); by default only files whose modification "
            "time changed are read back."
        ),
    )


def client_partitions(config: ClientsConfig) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(sorted(config.clients))


def build_reconciliation_asset(config: ClientsConfig) -> dg.AssetsDefinition:
    """The `folder_reconciliation` asset. Its SFTP secrets come from the code location's
    `sftp_secrets` resource (as `build_client_files_asset`'s do)."""
    clients = config  # the asset's own `config` parameter is its launch-time options

    @dg.asset(
        name=RECONCILIATION_ASSET,
        partitions_def=client_partitions(config),
        group_name="delivery",
        kinds={"sftp"},
        check_specs=[
            dg.AssetCheckSpec(
                ALTERED_CHECK,
                asset=RECONCILIATION_ASSET,
                description=(
                    "Warns when a file we delivered is in the client's folder with another size "
                    "(or, when read back, other bytes) than we sent. Files gone early do not warn: "
                    "picking files up is what clients do."
                ),
            )
        ],
    )
    def folder_reconciliation(
        context: dg.AssetExecutionContext,
        config: ReconciliationConfig,
        archive_dir: ArchiveResource,
        sftp_secrets: SftpSecrets,
    ) -> dg.MaterializeResult:
        """The client's SFTP folder now, against the ledger of our deliveries: present, altered,
        gone early, foreign, temporary (listed only; nothing on the server is changed)."""
        client_id = context.partition_key
        try:
            report = reconcile_client(
                clients,
                client_id,
                archive_dir.path,
                read_back_all=config.read_back_all,
                secrets=sftp_secrets,
            )
        except ReconciliationError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from error
        context.log.info(f"client {client_id}: {counts_line(report.counts().items())}")
        return dg.MaterializeResult(
            metadata=report_metadata(report), check_results=[altered_check_result(report)]
        )

    return folder_reconciliation


def reconciliation_job(asset: dg.AssetsDefinition) -> "UnresolvedAssetJobDefinition":
    return in_process_job(
        RECONCILIATION_JOB,
        dg.AssetSelection.assets(asset),
        description=(
            "List one client's SFTP folder and compare it with the ledger of deliveries "
            "(never changes the server)."
        ),
    )


def reconciliation_schedules(
    config: ClientsConfig, job: "UnresolvedAssetJobDefinition"
) -> list[dg.ScheduleDefinition]:
    return zone_schedules(
        config,
        job,
        name=lambda zone: f"{RECONCILIATION_ASSET}_{zone_slug(zone)}",
        cron=RECONCILIATION_CRON,
        description=lambda zone, client_ids: (
            f"05:30 {zone}, after the deadline: look at the SFTP folder of each of the "
            f"{len(client_ids)} client(s) in this time zone, one run per client."
        ),
        requests=_reconciliation_requests,
    )


def _reconciliation_requests(
    config: ClientsConfig,
    zone: str,
    client_ids: list[str],
    context: dg.ScheduleEvaluationContext,
) -> list[dg.RunRequest]:
    day = context.scheduled_execution_time.astimezone(ZoneInfo(zone)).date()
    return [
        dg.RunRequest(
            run_key=f"{zone}|{day.isoformat()}|{client_id}",
            partition_key=client_id,
            tags={SFTP_HOST_TAG: config.clients[client_id].sftp.host},
        )
        for client_id in client_ids
    ]
