"""The files a client would receive for one day, written into a folder a person names, for the
client to sign off before a first night or a change (`ods contract`).

The bytes come from the nightly export itself (`export_feed_file`: the same query, CSV dialect,
header and file name), run into a scratch archive inside the folder and moved into place, so the
file the client approves is the file a night delivers from the same marts; the project's archive
is never written. The marts are the warehouse's when it holds that client-day (its ledger of days
built, `marts.feed_days_built`, says so), else a synthetic site's (ods_local/
contract_site.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from psycopg import Connection, sql

from orchestration.clients import ClientConfig
from orchestration.export import archive
from orchestration.export.contract import Contract, contract_of
from orchestration.export.feed_file import MARTS_SCHEMA, export_feed_file
from orchestration.feeds import FEEDS, Feed

DEFAULT_PREVIEW_ROWS = 5


@dataclass(frozen=True)
class ContractFile:
    """One file written for the client to sign off, and what a person checks in it."""

    contract: Contract
    activity_day: dt.date
    path: Path
    rows: int
    bytes: int
    sha256: str
    header: list[str]
    first_rows: list[list[str]]
    # For a client whose files are compressed or encrypted: the file as sent (beside the CSV, the
    # name it is delivered under) and how it was wrapped. None: the CSV itself is sent.
    sent: Path | None = None
    wrapping: str | None = None


def days_built(conn: Connection, client_id: str, feeds: list[Feed]) -> dict[str, set[dt.date]]:
    """The report days the warehouse's marts hold for the client, per feed: the ledger of days
    built by Dagster's runs (empty when there are no marts at all)."""
    found: dict[str, set[dt.date]] = {feed.name: set() for feed in feeds}
    row = conn.execute("select to_regclass(%s)", (f"{MARTS_SCHEMA}.feed_days_built",)).fetchone()
    if row is None or row[0] is None:
        return found
    query = sql.SQL(
        "select feed, report_date from {} where client_id = %s and feed = any(%s)"
    ).format(sql.Identifier(MARTS_SCHEMA, "feed_days_built"))
    for feed_name, day in conn.execute(query, (client_id, [feed.name for feed in feeds])):
        found[feed_name].add(day)
    return found


def latest_common_day(built: dict[str, set[dt.date]]) -> dt.date | None:
    """The latest day every feed has, if any."""
    days = set.intersection(*built.values()) if built else set()
    return max(days) if days else None


def write_contract_files(
    conn: Connection,
    *,
    client_id: str,
    client: ClientConfig,
    feeds: list[Feed],
    day: dt.date,
    out: Path,
    preview_rows: int = DEFAULT_PREVIEW_ROWS,
) -> list[ContractFile]:
    """Export each feed's file of (client, day) from the marts `conn` reads into `out`, replacing
    a file of the same name there (and nothing else)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix=".contract-", dir=out) as scratch:
        for feed in feeds:
            made = export_feed_file(
                conn,
                feed=feed,
                client_id=client_id,
                client=client,
                day=day,
                archive_root=Path(scratch),
            )
            target = out / made.file_name
            made.path.replace(target)
            sent = _move_sent_form(made, out)
            header, first = preview(target, preview_rows)
            written.append(
                ContractFile(
                    contract=contract_of(client, feed),
                    activity_day=day,
                    path=target,
                    rows=made.rows,
                    bytes=made.bytes,
                    sha256=made.sha256,
                    header=header,
                    first_rows=first,
                    sent=sent,
                    wrapping=_wrapping(made) if sent else None,
                )
            )
    return written


def _move_sent_form(made: archive.ArchivedFile, out: Path) -> Path | None:
    """The compressed or encrypted form the export archived beside the CSV (what the client is
    sent), moved into `out`; None when the CSV itself is sent."""
    if not made.sent_file_name:
        return None
    target = out / made.sent_file_name
    made.sent_path.replace(target)
    return target


def _wrapping(made: archive.ArchivedFile) -> str:
    steps = [made.compression] if made.compression else []
    if made.encryption:
        key = made.encryption.get("openpgp_fingerprint")
        steps.append(f"OpenPGP-encrypted to key {key}" if key else "OpenPGP-encrypted")
    return ", then ".join(steps)


def preview(path: Path, rows: int) -> tuple[list[str], list[list[str]]]:
    """The header and the first `rows` records of a file, read as a client's CSV reader would
    (a byte order mark dropped, newlines inside quoted values kept); only those are read."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, [])
        first = [record for _, record in zip(range(rows), reader, strict=False)]
    return header, first


def describe_options(contract: Contract) -> list[tuple[str, str]]:
    """(option, what it means for the bytes) for each option that shapes the file, in words a
    client's developer checks a loader against."""
    name_rule = (
        "the day after the activity day (the date of its 05:00 delivery; file_date: next_day)"
        if contract.file_date == "next_day"
        else "the activity day itself (file_date: activity_day)"
    )
    options = [
        ("file name", f"{contract.prefix}<YYYYMMDD>.csv, dated {name_rule}"),
        (
            "quoting",
            'every value in double quotes, the header too; a quote inside a value doubled ("");'
            ' an empty value or NULL as ""; newlines inside a value kept inside its quotes',
        ),
        (
            "line endings",
            "CRLF (\\r\\n), the last line too (line_ending: crlf)"
            if contract.line_ending == "crlf"
            else "LF (\\n), the last line too (line_ending: lf)",
        ),
        (
            "byte order mark",
            "yes: the file starts with the UTF-8 BOM EF BB BF (byte_order_mark: true)"
            if contract.byte_order_mark
            else "none; UTF-8 (byte_order_mark: false)",
        ),
    ]
    if contract.records is not None:
        statuses = (FEEDS[contract.feed].records or {}).get(contract.records)
        sent = f"rows whose status is {' or '.join(statuses)}" if statuses else "every status"
        options.append(("records", f"{sent} (records: {contract.records})"))
    options.append(
        (
            "formulas",
            "neutralised: a text value starting =, +, -, @, tab or CR (not a plain number) "
            "gets a leading ' (neutralise_formulas: true)"
            if contract.neutralise_formulas
            else "as stored, not neutralised (neutralise_formulas: false)",
        )
    )
    return options


def _shown(values: list[str]) -> str:
    """A record as its line in the file (every value quoted), newlines inside values shown as
    \\n so that one record stays on one line of the terminal."""
    quoted = ('"' + value.replace('"', '""') + '"' for value in values)
    return ",".join(quoted).replace("\r", "\\r").replace("\n", "\\n")


def file_report(made: ContractFile) -> list[str]:
    """What `ods contract` prints for one file: name, version, options, columns, header, rows."""
    contract = made.contract
    lines = [
        made.path.name,
        f"  feed:             {contract.feed}",
        f"  contract version: {contract.version}",
    ]
    lines += [f"  {name + ':':<17} {text}" for name, text in describe_options(contract)]
    columns = ", ".join(
        f"{number} {column} {header!r}"
        for number, (column, header) in enumerate(contract.columns, start=1)
    )
    lines += [
        f"  columns:          {columns}",
        f"  rows:             {made.rows} ({made.bytes} bytes, sha256 {made.sha256})",
        f"  header:           {_shown(made.header)}",
    ]
    if made.sent is not None:
        lines.insert(
            1,
            f"  sent as:          {made.sent.name}: the CSV below, {made.wrapping} "
            f"({made.sent.stat().st_size} bytes)",
        )
    if not made.first_rows:
        lines.append("  (no rows on this day: the file holds only its header)")
    else:
        shown = f"first {len(made.first_rows)}" if len(made.first_rows) < made.rows else "all"
        lines.append(f"  rows ({shown}):")
        lines += [f"    {_shown(record)}" for record in made.first_rows]
    return lines
