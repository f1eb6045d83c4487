"""Asset checks on a client's file, evaluated in the step that writes it (and blocking delivery).

`rows_match_mart` re-reads the archived file as a client's CSV reader would and compares its data
rows with a count of the mart's rows for that client and day, taken with the export's own query
(so the same `records` filter and the same report day: one source of truth for "the file's rows").
`header_matches_config` compares the file's header row with the client's configured headers.
Both are blocking: a file that fails either is kept in the archive but never delivered.
"""

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from psycopg import Connection, sql

from orchestration.clients import ClientConfig
from orchestration.export.archive import ArchivedFile
from orchestration.export.feed_file import export_query
from orchestration.feeds import Feed

ROWS_MATCH_MART = "rows_match_mart"
HEADER_MATCHES_CONFIG = "header_matches_config"
FILE_CHECKS = (ROWS_MATCH_MART, HEADER_MATCHES_CONFIG)


def file_check_specs(feed: Feed, file_asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            ROWS_MATCH_MART,
            asset=file_asset,
            blocking=True,
            description=(
                f"The {feed.prefix} file has as many data rows as the {feed.mart} mart holds "
                "for the client and day (with the client's records filter)."
            ),
        ),
        dg.AssetCheckSpec(
            HEADER_MATCHES_CONFIG,
            asset=file_asset,
            blocking=True,
            description="The file's header row is the client's configured headers, in order.",
        ),
    ]


def read_file_shape(path: Path) -> tuple[list[str], int]:
    """(header row, number of data rows) of a CSV file, parsed as a client would: quoted
    newlines stay inside their value, so lines are not rows. Streams; memory stays flat."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, [])
        return header, sum(1 for _ in reader)


def count_mart_rows(
    conn: Connection, feed: Feed, client_id: str, client: ClientConfig, day: dt.date
) -> int:
    query, _ = export_query(feed, client_id, client, day)
    counted = sql.SQL("select count(*) from ({}) as file_rows").format(query)
    row = conn.execute(counted).fetchone()
    assert row is not None
    return int(row[0])


def evaluate_file_checks(
    conn: Connection,
    feed: Feed,
    client_id: str,
    client: ClientConfig,
    day: dt.date,
    made: ArchivedFile,
    *,
    asset_key: dg.AssetKey,
) -> Iterator[dg.AssetCheckResult]:
    header, file_rows = read_file_shape(made.path)
    mart_rows = count_mart_rows(conn, feed, client_id, client, day)
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=ROWS_MATCH_MART,
        passed=file_rows == mart_rows,
        metadata={"file_rows": file_rows, "mart_rows": mart_rows},
        description=(
            None
            if file_rows == mart_rows
            else f"client {client_id}, {made.file_name} (day {day}): the file has {file_rows} "
            f"data rows but {feed.mart} has {mart_rows} for that client and day"
        ),
    )
    configured = list(client.headers(feed).values())
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=HEADER_MATCHES_CONFIG,
        passed=header == configured,
        metadata={"file_header": ", ".join(header), "configured": ", ".join(configured)},
        description=(
            None
            if header == configured
            else f"client {client_id}, {made.file_name}: header {header} is not the "
            f"configured {configured}"
        ),
    )
