"""Per feed: the client's file for a day, exported into the archive and checked in the same step."""

import csv
from collections.abc import Iterator
from typing import Any

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.defs.file_checks import evaluate_file_checks, file_check_specs
from orchestration.defs.partitions import client_and_day
from orchestration.defs.resources import ArchiveResource, WarehouseResource
from orchestration.export import archive
from orchestration.export.feed_file import export_feed_file
from orchestration.feeds import Feed

PREVIEW_ROWS = 5


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


def build_file_asset(
    feed: Feed,
    config: ClientsConfig,
    mart_key: dg.AssetKey,
    partitions: dg.MultiPartitionsDefinition,
) -> dg.AssetsDefinition:
    """The feed's file for one client and day, partitioned by day × subscribed client."""
    name = f"{feed.name}_file"

    @dg.asset(
        name=name,
        partitions_def=partitions,
        deps=[
            dg.AssetDep(
                mart_key,
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                    partition_dimension_name="date"
                ),
            )
        ],
        check_specs=file_check_specs(feed, name),
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
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        client_id, day = client_and_day(context.partition_key)
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
            context.log.info(
                f"{made.file_name} for {client_id}: {made.rows} rows, {made.bytes} bytes"
            )
            yield dg.MaterializeResult(metadata=_file_metadata(made))
            yield from evaluate_file_checks(conn, feed, client_id, client, day, made)

    return feed_file
