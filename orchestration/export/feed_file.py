"""One client's file for one feed and day: the mart's rows in the client's columns and headers."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from psycopg import Connection, sql

from orchestration.clients import ClientConfig
from orchestration.days import file_name
from orchestration.export import archive
from orchestration.export.contract import contract_of
from orchestration.export.csv_stream import CsvDialect, stream_csv
from orchestration.export.envelope import envelope_of, seal
from orchestration.feeds import Column, Feed

MARTS_SCHEMA = "marts"

# A value a spreadsheet would run as a formula, unless it is a plain number such as -42.
_FORMULA_START = r"^[=+@\t\r-]"
_PLAIN_NUMBER = r"^[+-]?[0-9]+([.][0-9]+)?$"


def _as_text(column: Column) -> sql.Composable:
    ident = sql.Identifier(column.name)
    if column.kind == "date":
        return sql.SQL("to_char({}, 'YYYY-MM-DD')").format(ident)
    if column.kind == "timestamp":
        return sql.SQL("to_char({}, 'YYYY-MM-DD HH24:MI:SS')").format(ident)
    return sql.SQL("{}::text").format(ident)


def _value(column: Column, neutralise_formulas: bool) -> sql.Composable:
    text = sql.SQL("coalesce({}, '')").format(_as_text(column))
    if not neutralise_formulas or column.kind != "text":
        return text
    return sql.SQL(
        "case when {v} ~ {start} and {v} !~ {number} then '''' || {v} else {v} end"
    ).format(v=text, start=sql.Literal(_FORMULA_START), number=sql.Literal(_PLAIN_NUMBER))


def _records_filter(feed: Feed, client: ClientConfig) -> sql.Composable:
    """The client's `records` choice (SCORM: completed_or_passed by default, or all)."""
    if feed.records is None:
        return sql.SQL("")
    choice = client.feeds[feed.name].records or feed.default_records
    statuses = feed.records[choice] if choice else None
    if statuses is None:
        return sql.SQL("")
    return sql.SQL(" and status = any({})").format(sql.Literal(list(statuses)))


def export_query(
    feed: Feed, client_id: str, client: ClientConfig, day: dt.date
) -> tuple[sql.Composable, list[str]]:
    """The SELECT that yields the file's rows (all text, no NULLs), and the header row."""
    headers = client.headers(feed)
    values = [_value(feed.column(name), client.neutralise_formulas) for name in headers]
    query = sql.SQL(
        "select {values} from {mart} where client_id = {client} and report_date = {day}{records} "
        "order by {order}"
    ).format(
        values=sql.SQL(", ").join(values),
        mart=sql.Identifier(MARTS_SCHEMA, feed.mart),
        client=sql.Literal(client_id),
        day=sql.Literal(day),
        records=_records_filter(feed, client),
        order=sql.SQL(", ").join(sql.Identifier(key) for key in feed.sort_key),
    )
    return query, list(headers.values())


def dialect_of(client: ClientConfig) -> CsvDialect:
    return CsvDialect(
        line_ending=b"\r\n" if client.line_ending == "crlf" else b"\n",
        byte_order_mark=client.byte_order_mark,
    )


def export_feed_file(
    conn: Connection,
    *,
    feed: Feed,
    client_id: str,
    client: ClientConfig,
    day: dt.date,
    archive_root: Path,
) -> archive.ArchivedFile:
    """Stream (client, feed, day) from the mart into the archive; the file appears whole or not at
    all. For a client whose files are compressed or encrypted, the form to send is made now too
    (once: a re-send sends these bytes) and archived beside the CSV."""
    query, headers = export_query(feed, client_id, client, day)
    final = archive.feed_folder(archive_root, client_id, feed.name) / file_name(
        feed.prefix, day, client.file_date
    )
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    staged = final.with_name(f".{final.name}.{token}.part")
    staged_sent = final.with_name(f".{final.name}.{token}.sent.part")
    contract = contract_of(client, feed)
    envelope = envelope_of(client)
    try:
        stats = stream_csv(conn, query, headers, staged, dialect_of(client))
        sealed = None
        if not envelope.is_plain:
            sealed = seal(
                staged, final.name, stats.sha256, envelope, staged_sent, archive.read(final)
            )
        record = archive.ArchivedFile(
            client_id=client_id,
            feed=feed.name,
            activity_day=day.isoformat(),
            file_name=final.name,
            rows=stats.rows,
            bytes=stats.bytes,
            sha256=stats.sha256,
            made_at=archive.now_utc(),
            path=final,
            contract=contract.as_dict(),
            contract_version=contract.version,
            sent_file_name=sealed.file_name if sealed else None,
            sent_bytes=sealed.bytes if sealed else None,
            sent_sha256=sealed.sha256 if sealed else None,
            compression=sealed.compression if sealed else None,
            encryption=sealed.encryption if sealed else None,
        )
        moved = sealed.path if sealed is not None and not sealed.kept else None
        return archive.store(staged, final, record, moved)
    finally:
        staged.unlink(missing_ok=True)
        staged_sent.unlink(missing_ok=True)
