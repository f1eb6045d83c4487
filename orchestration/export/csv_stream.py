"""Streaming a query into a CSV file in the contract's dialect.

PostgreSQL's `COPY … TO STDOUT (FORMAT csv, FORCE_QUOTE *)` does the quoting: every value in
double quotes, embedded quotes doubled, newlines kept inside quotes. The export query turns every
value into text and NULL into '' first, so NULL comes out as `""` too. Two things COPY cannot do
are done here while streaming: the header (FORCE_QUOTE does not quote COPY's own header) and CRLF
record ends (COPY always writes LF). Memory stays flat: rows are written in batches of a few
thousand as they arrive.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from psycopg import Connection, sql

_ROWS_PER_BATCH = 4096


@dataclass(frozen=True)
class CsvDialect:
    """What a client may choose about the bytes of its files."""

    line_ending: bytes = b"\r\n"
    byte_order_mark: bool = False


@dataclass(frozen=True)
class CsvStats:
    rows: int
    bytes: int
    sha256: str


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def record_ends(rows: list[bytes | memoryview], line_ending: bytes) -> bytes:
    """Join COPY rows, each ending in LF, with `line_ending` after each record.

    COPY sends exactly one CopyData message per row (PostgreSQL protocol docs, "Copy-out mode"),
    so each chunk is one record and its last byte is the record's LF. A batch whose LF count equals
    its row count has no LF inside a value, and one `replace` converts it at C speed; per-row
    work would cost about 40 % of the export's throughput (benchmarks/completion_export.py).
    """
    block = b"".join(rows)
    if line_ending == b"\n":
        return block
    if block.count(b"\n") == len(rows):
        return block.replace(b"\n", line_ending)
    return b"".join(bytes(row)[:-1] + line_ending for row in rows)


class _HashingWriter:
    """Hashes and counts what it writes, so the file is read once and memory stays flat."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.target.write(data)
        self.size += len(data)


def stream_csv(
    conn: Connection, query: sql.Composable, headers: list[str], path: Path, dialect: CsvDialect
) -> CsvStats:
    """Write the header and the rows of `query` (all text, no NULLs) to `path`."""
    copy_sql = sql.SQL("copy ({}) to stdout with (format csv, force_quote *)").format(query)
    with path.open("wb", buffering=1 << 20) as handle, conn.cursor() as cursor:
        out = _HashingWriter(handle)
        if dialect.byte_order_mark:
            out.write(b"\xef\xbb\xbf")
        out.write(",".join(quote(h) for h in headers).encode() + dialect.line_ending)
        with cursor.copy(copy_sql) as copy:
            rows_in = iter(copy)
            while batch := list(islice(rows_in, _ROWS_PER_BATCH)):
                out.write(record_ends(batch, dialect.line_ending))
        rows = cursor.rowcount
    return CsvStats(rows=rows, bytes=out.size, sha256=out.digest.hexdigest())
