"""Asset checks on a client's file, evaluated in the step that writes it (and blocking delivery).

Both checks judge the bytes in the archive against expectations the export did not compute, so a
bug in the writer (the export query, the header list, COPY's options, the line-ending rewrite)
fails them instead of passing itself:

- `rows_match_mart`: the archived file is read back once by our own strict reader
  (`orchestration.export.strict_csv`: every value quoted, quotes doubled, the contract's line
  ending after every record, BOM as the contract says, UTF-8, as many values in each row as in
  the header, nothing after the last record). Its data rows must equal a `COUNT(*)` over
  `marts.<mart>` for the client and report day with the client's `records` statuses — SQL written
  here, not the export query — and the rows PostgreSQL reported for the export's COPY (the
  manifest's `rows`). A file that breaks the CSV contract fails this check, naming the client,
  the feed, the file and the byte, line and record where it breaks.
- `header_matches_config`: the header row as read back must be the client's headers as written in
  the clients file.

What "independent" means here. The contract is read from the clients file's own YAML (the file
`ODS_CLIENTS_FILE` names, as the code location loaded it): the feed's `columns` values in the
order written, `records`, `line_ending`, `byte_order_mark`, with the defaults DESIGN.md states
(CRLF, no BOM). It does not go through the validated `ClientConfig`, `ClientConfig.headers`,
`export_query` or `dialect_of`, which the export uses. Two facts have one source of truth only,
the feed catalogue (`orchestration/feeds.py`), and both sides read it: a feed's default headers
(when a client lists no `columns`) and which statuses a `records` choice keeps. A wrong entry
there is the tests' to catch (tests/test_four_feeds_end_to_end.py holds DESIGN.md's defaults),
not these checks'. If the clients file was edited after the code location loaded it, the file
is judged by the file as written now, and the failure says so.

Cost (issue 15): the file is read once, and the reader validates and counts at the regex
engine's speed (strict_csv's docstring); the `COUNT(*)` is one index-range count on the
server. Nothing re-runs the export query.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from psycopg import Connection, sql

from orchestration.clients import ClientConfig
from orchestration.clients.config import clients_file_path
from orchestration.export.archive import ArchivedFile
from orchestration.export.strict_csv import CsvContract, FileShape, MalformedCsv, read_back
from orchestration.feeds import Feed

ROWS_MATCH_MART = "rows_match_mart"
HEADER_MATCHES_CONFIG = "header_matches_config"
FILE_CHECKS = (ROWS_MATCH_MART, HEADER_MATCHES_CONFIG)

MARTS_SCHEMA = "marts"
# DESIGN.md "CSV": CRLF line endings by default (LF as an option), no byte-order mark by default.
LINE_ENDINGS = {"crlf": b"\r\n", "lf": b"\n"}
DEFAULT_LINE_ENDING = "crlf"


def file_check_specs(feed: Feed, file_asset: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            ROWS_MATCH_MART,
            asset=file_asset,
            blocking=True,
            description=(
                f"The {feed.prefix} file, read back strictly as the client's CSV contract says, "
                f"has as many data rows as the {feed.mart} mart holds for the client and day "
                "(with the client's records filter) and as the export's COPY reported."
            ),
        ),
        dg.AssetCheckSpec(
            HEADER_MATCHES_CONFIG,
            asset=file_asset,
            blocking=True,
            description=(
                "The file's header row, read back, is the client's headers as written in the "
                "clients file, in order."
            ),
        ),
    ]


class ContractUnreadable(ValueError):
    """The clients file does not say what this client's file must be (it changed, or moved)."""


@dataclass(frozen=True)
class WrittenContract:
    """One client's contract for one feed, as the clients file states it."""

    headers: list[str]
    statuses: tuple[str, ...] | None
    csv: CsvContract


@lru_cache(maxsize=4)
def _clients_yaml(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(path.read_text(), Loader=loader)
    return raw if isinstance(raw, dict) else {}


def written_contract(client_id: str, feed: Feed, path: Path | None = None) -> WrittenContract:
    """The client's headers, records statuses and file dialect for `feed`, read from the clients
    file's YAML (the `ODS_CLIENTS_FILE` file by default), with DESIGN.md's defaults."""
    path = (path or clients_file_path()).resolve()
    try:
        stat = os.stat(path)
        raw = _clients_yaml(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, yaml.YAMLError) as error:
        raise ContractUnreadable(f"the clients file {path} cannot be read: {error}") from None
    clients = raw.get("clients")
    entry = clients.get(client_id) if isinstance(clients, dict) else None
    if not isinstance(entry, dict):
        raise ContractUnreadable(f"the clients file {path} has no client {client_id!r}")
    feeds = entry.get("feeds")
    if not isinstance(feeds, dict) or feed.name not in feeds:
        raise ContractUnreadable(
            f"the clients file {path} has no feed {feed.name!r} for client {client_id!r}"
        )
    settings = feeds[feed.name] or {}
    if not isinstance(settings, dict):
        raise ContractUnreadable(f"client {client_id!r}: feeds.{feed.name} in {path}")
    columns = settings.get("columns")
    if isinstance(columns, dict) and columns:
        headers = [str(header) for header in columns.values()]
    else:
        headers = [feed.column(name).header for name in feed.default_columns]
    statuses = None
    if feed.records is not None:
        choice = settings.get("records") or feed.default_records
        if choice not in feed.records:
            raise ContractUnreadable(f"client {client_id!r}: records {choice!r} in {path}")
        statuses = feed.records[choice]
    line_ending = entry.get("line_ending", DEFAULT_LINE_ENDING)
    if line_ending not in LINE_ENDINGS:
        raise ContractUnreadable(f"client {client_id!r}: line_ending {line_ending!r} in {path}")
    return WrittenContract(
        headers=headers,
        statuses=statuses,
        csv=CsvContract(
            line_ending=LINE_ENDINGS[line_ending],
            byte_order_mark=entry.get("byte_order_mark", False) is True,
        ),
    )


def count_mart_rows(
    conn: Connection, feed: Feed, client_id: str, day: dt.date, statuses: tuple[str, ...] | None
) -> int:
    """The mart's rows for the client and report day that the contract puts in the file."""
    query = sql.SQL("select count(*) from {mart} where client_id = %s and report_date = %s").format(
        mart=sql.Identifier(MARTS_SCHEMA, feed.mart)
    )
    params: list[object] = [client_id, day]
    if statuses is not None:
        query += sql.SQL(" and status = any(%s)")
        params.append(list(statuses))
    row = conn.execute(query, params).fetchone()
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
    """Both checks' results for the file `made`. `client` (the loaded configuration) is used only
    to say, when the header differs, that the clients file changed after it was loaded."""
    where = f"client {client_id}, feed {feed.name}, file {made.path} (day {day})"
    try:
        contract = written_contract(client_id, feed)
    except ContractUnreadable as error:
        for name in FILE_CHECKS:
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=name,
                passed=False,
                description=f"{where}: no contract to check the file against: {error}",
            )
        return
    shape: FileShape | None = None
    fault: MalformedCsv | None = None
    try:
        shape = read_back(made.path, contract.csv)
    except MalformedCsv as error:
        fault = error
    mart_rows = count_mart_rows(conn, feed, client_id, day, contract.statuses)
    yield _rows_result(asset_key, where, feed, shape, fault, mart_rows, made.rows)
    header = shape.header if shape is not None else fault.header if fault is not None else None
    loaded = list(client.headers(feed).values())
    yield _header_result(asset_key, where, header, fault, contract.headers, loaded)


def _rows_result(
    asset_key: dg.AssetKey,
    where: str,
    feed: Feed,
    shape: FileShape | None,
    fault: MalformedCsv | None,
    mart_rows: int,
    copied_rows: int,
) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {"mart_rows": mart_rows, "copied_rows": copied_rows}
    if shape is None:
        assert fault is not None
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=ROWS_MATCH_MART,
            passed=False,
            metadata={**metadata, "broken_at_byte": fault.offset, "broken_at_line": fault.line},
            description=f"{where}: the file breaks the CSV contract: {fault}",
        )
    metadata["file_rows"] = shape.data_rows
    problems = []
    if shape.data_rows != mart_rows:
        problems.append(
            f"the file has {shape.data_rows} data rows but {feed.mart} has {mart_rows} for "
            "that client and day"
        )
    if shape.data_rows != copied_rows:
        problems.append(
            f"the file has {shape.data_rows} data rows but the export's COPY sent {copied_rows}"
        )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=ROWS_MATCH_MART,
        passed=not problems,
        metadata=metadata,
        description=f"{where}: {'; '.join(problems)}" if problems else None,
    )


def _header_result(
    asset_key: dg.AssetKey,
    where: str,
    header: list[str] | None,
    fault: MalformedCsv | None,
    written: list[str],
    loaded: list[str],
) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {"configured": ", ".join(written)}
    if header is None:
        assert fault is not None
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=HEADER_MATCHES_CONFIG,
            passed=False,
            metadata=metadata,
            description=f"{where}: the header row cannot be read: {fault}",
        )
    metadata["file_header"] = ", ".join(header)
    if header == written:
        return dg.AssetCheckResult(
            asset_key=asset_key, check_name=HEADER_MATCHES_CONFIG, passed=True, metadata=metadata
        )
    differences = [
        f"column {i + 1}: file {got!r}, clients file {want!r}"
        for i, (got, want) in enumerate(zip(header, written, strict=False))
        if got != want
    ]
    if len(header) != len(written):
        differences.append(f"the file has {len(header)} columns, the clients file {len(written)}")
    reloaded = (
        ""
        if loaded == written
        else " (the clients file changed after the code location loaded it: reload it, then "
        "make the file again)"
    )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=HEADER_MATCHES_CONFIG,
        passed=False,
        metadata=metadata,
        description=(
            f"{where}: the header row is not the client's headers as written in the clients "
            f"file: {'; '.join(differences)}{reloaded}"
        ),
    )
