"""Per feed: the client's file for a day (exported into the archive) and its delivery over SFTP."""

import csv
import datetime as dt
from typing import Any

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.days import file_name
from orchestration.defs.partitions import feed_partitions
from orchestration.defs.resources import ArchiveResource, WarehouseResource
from orchestration.delivery.sftp import SftpTarget, deliver_file
from orchestration.export import archive
from orchestration.export.feed_file import export_feed_file
from orchestration.feeds import Feed

PREVIEW_ROWS = 5

# Transient faults (a server restarting, a dropped connection) get four tries over about 7 minutes,
# which still leaves time before the 05:00 deadline for a 03:00 run.
DELIVERY_RETRY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _client_and_day(context: dg.AssetExecutionContext) -> tuple[str, dt.date]:
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    by_dimension = key.keys_by_dimension
    return by_dimension["client"], dt.date.fromisoformat(by_dimension["date"])


def preview(made: archive.ArchivedFile, rows: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The header and first rows of a file, as the client will see them."""
    with made.path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        records = [row for _, row in zip(range(rows), reader, strict=False)]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(header, row, strict=True))) for row in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(name=h, type="string") for h in header]),
    )


def _file_metadata(made: archive.ArchivedFile) -> dict[str, Any]:
    return {
        "file_name": made.file_name,
        "rows": dg.MetadataValue.int(made.rows),
        "bytes": dg.MetadataValue.int(made.bytes),
        "sha256": made.sha256,
        "archive_path": dg.MetadataValue.path(str(made.path)),
        "preview": preview(made),
    }


def build_feed_assets(
    feed: Feed, config: ClientsConfig, mart_key: dg.AssetKey
) -> list[dg.AssetsDefinition]:
    """The file and delivery assets of one feed, partitioned by day × subscribed client."""
    partitions = feed_partitions(config, feed.name)

    @dg.asset(
        name=f"{feed.name}_file",
        partitions_def=partitions,
        deps=[
            dg.AssetDep(
                mart_key,
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                    partition_dimension_name="date"
                ),
            )
        ],
        group_name="files",
        description=(
            f"{feed.prefix} CSV file for one client and day: {feed.description} Written in the "
            "client's columns into the local archive."
        ),
        kinds={"csv"},
    )
    def feed_file(
        context: dg.AssetExecutionContext,
        warehouse_db: WarehouseResource,
        archive_dir: ArchiveResource,
    ) -> dg.MaterializeResult:
        client_id, day = _client_and_day(context)
        client = config.clients[client_id]
        with warehouse_db.connect() as conn:
            made = export_feed_file(
                conn,
                feed=feed,
                client_id=client_id,
                client=client,
                day=day,
                archive_root=archive_dir.path,
            )
        context.log.info(f"{made.file_name} for {client_id}: {made.rows} rows, {made.bytes} bytes")
        return dg.MaterializeResult(metadata=_file_metadata(made))

    @dg.asset(
        name=f"{feed.name}_delivery",
        partitions_def=partitions,
        deps=[feed_file],
        group_name="delivery",
        description=(
            f"{feed.prefix} file delivered to the client's SFTP folder: uploaded under a temporary "
            "name, size-checked, then renamed into place."
        ),
        retry_policy=DELIVERY_RETRY,
        kinds={"sftp"},
    )
    def feed_delivery(
        context: dg.AssetExecutionContext, archive_dir: ArchiveResource
    ) -> dg.MaterializeResult:
        client_id, day = _client_and_day(context)
        client = config.clients[client_id]
        name = file_name(feed.prefix, day, client.file_date)
        made = archive.read(archive.feed_folder(archive_dir.path, client_id, feed.name) / name)
        if made is None:
            raise dg.Failure(
                f"client {client_id!r}, feed {feed.name}: no archived file {name} for {day}; "
                f"materialize {feed.name}_file for this partition first"
            )
        private_key, password = client.sftp.credentials(client_id)
        target = SftpTarget(
            client_id=client_id,
            host=client.sftp.host,
            port=client.sftp.port,
            username=client.sftp.username,
            directory=client.sftp.directory,
            host_key=client.sftp.pinned_host_key(),
            private_key=private_key,
            password=password,
        )
        receipt = deliver_file(target, made.path, made.file_name)
        context.log.info(f"delivered {receipt.remote_path} to {client_id} ({receipt.bytes} bytes)")
        return dg.MaterializeResult(
            metadata={
                "remote_path": receipt.remote_path,
                "server": f"{client.sftp.host}:{client.sftp.port}",
                "rows": dg.MetadataValue.int(made.rows),
                "bytes": dg.MetadataValue.int(receipt.bytes),
                "sha256": made.sha256,
                "seconds": receipt.seconds,
            }
        )

    return [feed_file, feed_delivery]
