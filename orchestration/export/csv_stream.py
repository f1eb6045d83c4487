"""Streaming a query into a CSV file in the contract's dialect.

PostgreSQL's `COPY … TO STDOUT (FORMAT csv, FORCE_QUOTE *)` does the quoting: every value in
double quotes, embedded quotes doubled, newlines kept inside quotes. The export query turns every
value into text and NULL into '' first, so NULL comes out as `""` too. Two things COPY cannot do
are done here while streaming: the header (FORCE_QUOTE does not quote COPY's own header) and CRLF
record ends (COPY always writes LF). Memory stays flat: chunks are written as they arrive.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from psycopg import Connection, sql

_FLUSH_BYTES = 1 << 20


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


class _RecordEnds:
    """Rewrites the LF that ends each CSV record, leaving LFs inside quoted values alone.

    Every value is quoted, so an LF ends a record exactly when the number of quote characters
    before it is even. COPY sends one message per row, so the common case is a chunk that is one
    whole row with one LF at its end; that case costs two `bytes.count` calls.
    """

    def __init__(self, line_ending: bytes) -> None:
        self.line_ending = line_ending
        self.in_quotes = False

    def convert(self, chunk: bytes) -> bytes:
        if self.line_ending == b"\n":
            return chunk
        if (
            not self.in_quotes
            and chunk.endswith(b'"\n')
            and chunk.count(b"\n") == 1
            and chunk.count(b'"') % 2 == 0
        ):
            return chunk[:-1] + self.line_ending
        pieces = chunk.split(b"\n")
        out = bytearray()
        for piece in pieces[:-1]:
            out += piece
            if piece.count(b'"') % 2:
                self.in_quotes = not self.in_quotes
            out += b"\n" if self.in_quotes else self.line_ending
        last = pieces[-1]
        out += last
        if last.count(b'"') % 2:
            self.in_quotes = not self.in_quotes
        return bytes(out)


class _HashingWriter:
    """Buffers, hashes and counts what it writes, so the file is read once and memory stays flat."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.digest.update(self.buffer)
            self.target.write(self.buffer)
            self.size += len(self.buffer)
            self.buffer.clear()


def stream_csv(
    conn: Connection, query: sql.Composable, headers: list[str], path: Path, dialect: CsvDialect
) -> CsvStats:
    """Write the header and the rows of `query` (all text, no NULLs) to `path`."""
    record_ends = _RecordEnds(dialect.line_ending)
    copy_sql = sql.SQL("copy ({}) to stdout with (format csv, force_quote *)").format(query)
    with path.open("wb") as handle, conn.cursor() as cursor:
        out = _HashingWriter(handle)
        if dialect.byte_order_mark:
            out.write(b"\xef\xbb\xbf")
        out.write(",".join(quote(h) for h in headers).encode() + dialect.line_ending)
        with cursor.copy(copy_sql) as copy:
            for chunk in copy:
                out.write(record_ends.convert(bytes(chunk)))
        rows = cursor.rowcount
        out.flush()
    return CsvStats(rows=rows, bytes=out.size, sha256=out.digest.hexdigest())
