"""Streaming a query into a CSV file in the contract's dialect.

PostgreSQL's `COPY … TO STDOUT (FORMAT csv, FORCE_QUOTE *)` does the quoting: every value in
double quotes, embedded quotes doubled, newlines kept inside quotes. The export query turns every
value into text and NULL into '' first, so NULL comes out as `""` too. Two things COPY cannot do
are done here while streaming: the header (FORCE_QUOTE does not quote COPY's own header) and CRLF
record ends (COPY always writes LF). Memory stays flat: rows are written in blocks of 512 KiB as
they arrive. The row count is PostgreSQL's (the `COPY n` command tag), not a count of our bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from psycopg import Connection, sql

# Rows are appended to a block of this size as they arrive and each row's buffer is let go at
# once: keeping 4096 rows' buffers alive to join them cost about 0.8 CPU-seconds per million rows
# (benchmarks/completion_export.py, 2026-12; the enumerate that counts rows is far cheaper).
_BLOCK_BYTES = 1 << 19


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


def record_ends(block: bytearray, rows: int, line_ending: bytes) -> bytes | bytearray:
    """`block` holds `rows` whole COPY rows, each ending in LF: put `line_ending` after each record.

    A block whose LF count equals its row count has no LF inside a value, and one `replace`
    converts it at C speed. Otherwise the record ends are the LFs outside quotes: FORCE_QUOTE
    quotes every value and a block starts at a record's start, so the pieces between `"` are
    outside and inside a value in turn (a doubled `""` gives an empty piece outside).
    """
    if line_ending == b"\n":
        return block
    if block.count(b"\n") == rows:
        return block.replace(b"\n", line_ending)
    pieces = block.split(b'"')
    pieces[::2] = [piece.replace(b"\n", line_ending) for piece in pieces[::2]]
    return b'"'.join(pieces)


class _HashingWriter:
    """Hashes and counts what it writes, so the file is read once and memory stays flat."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
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
            block, received, written = bytearray(), 0, 0
            for received, row in enumerate(copy, 1):
                block += row
                if len(block) >= _BLOCK_BYTES:
                    out.write(record_ends(block, received - written, dialect.line_ending))
                    block.clear()
                    written = received
            out.write(record_ends(block, received - written, dialect.line_ending))
        rows = cursor.rowcount
    return CsvStats(rows=rows, bytes=out.size, sha256=out.digest.hexdigest())
