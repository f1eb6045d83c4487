"""Reading a finished CSV file back, strictly, as the contract (DESIGN.md "CSV") describes it.

This is the file checks' reader, written apart from the writer (`csv_stream`): it knows nothing
of COPY, of the export query or of how the header was made; it takes the bytes on disk and the
contract's dialect, and either yields the header and the number of data rows or says where the
file breaks the contract, by byte offset, line and record:

- UTF-8 (RFC 4180's TEXTDATA widened to any UTF-8 text, as DESIGN.md says), with a byte-order
  mark exactly when the contract asks for one;
- every value, header included, in double quotes, a quote inside a value doubled (a lone quote
  closes the value and must be followed by a comma or the line ending);
- the contract's line ending after every record, the last one included, and no other line
  ending between records (CRLF and LF may appear inside a quoted value: they are its text);
- every data row with as many values as the header, and nothing after the last record.

Speed (issue 15: the checks must keep the file step at ≥ 0.75× a bare COPY): a file is read
once, in 4 MiB blocks. Each block is cut after its last `"` + line ending, and the part before
the cut is matched whole by one compiled record pattern with `subn`, which counts the records
and leaves nothing behind only when the part is records from end to end; the cut is then a
record boundary and the count is exact. The pattern is RFC 4180's quoted field with possessive
quantifiers, so a field's reading is the one a left-to-right parser makes (`""` continues the
value, a lone `"` ends it) and never backtracks. When something is left behind (the cut fell
inside a value that holds `"` + a line ending, or the block is malformed) the block is read
again field by field to find the last whole record, or the exact place and reason of the fault.
UTF-8 is checked per block: `isascii` at C speed, a decode only for blocks with other bytes. The
line of a fault is counted only when there is one. On the benchmark's day (a million Completion
rows, 126 MB) this reading costs about 0.6 CPU-seconds, a third of what the COPY itself costs the
client; folding the UTF-8 rules into the pattern instead was three times slower.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

BYTE_ORDER_MARK = b"\xef\xbb\xbf"
BLOCK_BYTES = 1 << 22

# RFC 4180 `escaped` field: DQUOTE *(TEXTDATA / COMMA / CR / LF / 2DQUOTE) DQUOTE.
_FIELD = rb'"[^"]*+(?:""[^"]*+)*+"'
_FIELD_AT = re.compile(_FIELD)


@dataclass(frozen=True)
class CsvContract:
    """What the contract says about a client's file bytes."""

    line_ending: bytes
    byte_order_mark: bool


@dataclass(frozen=True)
class FileShape:
    """What a strict reading of the file found: the header and the number of data rows."""

    header: list[str]
    data_rows: int
    bytes: int


class MalformedCsv(ValueError):
    """The file breaks the CSV contract at `offset` (bytes from the file's start), on `line`
    (1-based, counting LFs, as an editor shows it) in `record` (1-based; the header is record 1)."""

    def __init__(
        self, reason: str, *, offset: int, line: int, record: int, header: list[str] | None
    ) -> None:
        self.reason, self.offset, self.line, self.record = reason, offset, line, record
        self.header = header  # the header row, when the fault comes after it
        super().__init__(f"{reason} (byte {offset}, line {line}, record {record})")


class _Fault(Exception):
    """A fault at a position of the current block; the reader adds where the block is."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason, self.position = reason, position


class _NeedMore(Exception):
    """The block ends inside a record: read on."""


# The same field when its value holds no quote, the usual case: about a fifth faster to match.
_PLAIN_FIELD = rb'"[^"]*+"'


def _record_pattern(fields: int, line_ending: bytes) -> re.Pattern[bytes]:
    """A whole record of `fields` values. Tried plain first, then with doubled quotes: both read
    a record the same way where both match, so the alternative changes speed, not meaning."""
    end = re.escape(line_ending)
    plain = _PLAIN_FIELD + (b"," + _PLAIN_FIELD) * (fields - 1) + end
    quoted = _FIELD + (b"," + _FIELD) * (fields - 1) + end
    return re.compile(b"(?:" + plain + b"|" + quoted + b")")


def _describe_byte(data: bytes, position: int) -> str:
    return repr(data[position : position + 1])


def _one_record(
    data: bytes, start: int, line_ending: bytes, fields: int | None, final: bool
) -> tuple[int, list[bytes]]:
    """Read the record at `start`: (its end, its values' raw bytes between the quotes).

    `fields` is the number of values a record must have (None for the header, which sets it).
    Raises _NeedMore when the block ends inside the record (and more may follow), _Fault otherwise.
    """
    position, values = start, []
    while True:
        if position >= len(data):
            if final:
                raise _Fault("the last record has no line ending", position)
            raise _NeedMore
        if data[position] != 0x22:
            if data.startswith((b",", line_ending), position) or data[position] in b"\r\n":
                reason = "an empty value without its double quotes"
            else:
                reason = "a value not enclosed in double quotes"
            raise _Fault(f"{reason}: found {_describe_byte(data, position)}", position)
        match = _FIELD_AT.match(data, position)
        if match is None:
            if final:
                raise _Fault("a quoted value is never closed", position)
            raise _NeedMore
        if match.end() == len(data) and not final:
            raise _NeedMore  # the closing quote may be the first of a doubled one
        values.append(data[position + 1 : match.end() - 1])
        position = match.end()
        last = fields is not None and len(values) == fields
        if data.startswith(line_ending, position):
            if fields is not None and not last:
                raise _Fault(
                    f"the record has only {len(values)} of the header's {fields} values", position
                )
            return position + len(line_ending), values
        if data.startswith(b",", position):
            if last:
                raise _Fault(f"the record has more values than the header's {fields}", position)
            position += 1
            continue
        if not final and len(data) - position < 2 and data[position:] in (b"", b"\r"):
            raise _NeedMore  # the block ends here or inside a line ending (to tell which)
        if position == len(data):
            raise _Fault("the last record has no line ending", position)
        raise _Fault(_after_value(data, position, line_ending), position)


def _after_value(data: bytes, position: int, line_ending: bytes) -> str:
    if line_ending == b"\r\n" and data.startswith(b"\n", position):
        return "a record ends with LF alone; the contract's line ending is CRLF"
    if line_ending == b"\n" and data.startswith(b"\r\n", position):
        return "a record ends with CRLF; the contract's line ending is LF"
    found = _describe_byte(data, position)
    return (
        f"{found} after a closing quote, where a comma or the line ending must follow "
        "(a quote inside a value that is not doubled?)"
    )


def read_back(path: Path, contract: CsvContract, *, block_bytes: int = BLOCK_BYTES) -> FileShape:
    """Read the CSV file at `path` once, strictly; raise MalformedCsv where it breaks the contract.
    (`block_bytes` is for tests: any block size gives the same answer.)"""
    reader = _Reader(contract)
    try:
        with path.open("rb") as handle:
            while block := handle.read(block_bytes):
                reader.feed(block, final=False)
            reader.feed(b"", final=True)
    except _Broken as broken:
        line = 1 + _newlines_before(path, broken.offset)
        raise MalformedCsv(
            broken.reason,
            offset=broken.offset,
            line=line,
            record=broken.record,
            header=reader.header if broken.record > 1 else None,
        ) from None
    assert reader.header is not None
    return FileShape(header=reader.header, data_rows=reader.records - 1, bytes=reader.total)


def _newlines_before(path: Path, offset: int) -> int:
    """Counted only when a file is broken, so that a good file is read once."""
    count = 0
    with path.open("rb") as handle:
        while offset > 0 and (block := handle.read(min(BLOCK_BYTES, offset))):
            count += block.count(b"\n")
            offset -= len(block)
    return count


class _Broken(Exception):
    def __init__(self, reason: str, offset: int, record: int) -> None:
        super().__init__(reason)
        self.reason, self.offset, self.record = reason, offset, record


class _Reader:
    """Takes the file block by block; keeps the bytes of an unfinished record for the next."""

    def __init__(self, contract: CsvContract) -> None:
        self.contract = contract
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.pending = b""
        self.offset = 0  # file offset of pending[0]
        self.records = 0  # whole records before pending[0], the header included
        self.started = False
        self.header: list[str] | None = None
        self.pattern: re.Pattern[bytes] | None = None
        self.closing = b'"' + contract.line_ending
        self.total = 0

    def broken(self, reason: str, position: int) -> _Broken:
        """The fault at `position` of the current block (pending + new bytes)."""
        return _Broken(reason, self.offset + position, self.records + 1)

    def feed(self, block: bytes, *, final: bool) -> None:
        self.total += len(block)
        data = self.pending + block if self.pending else block
        self._utf8(block, len(data) - len(block), final)
        if not self.started:
            data = self._byte_order_mark(data, final)
            if not self.started:
                self.pending = data
                return
        try:
            if self.header is None:
                end, values = _one_record(data, 0, self.contract.line_ending, None, final)
                self.header = [value.replace(b'""', b'"').decode() for value in values]
                self.pattern = _record_pattern(len(values), self.contract.line_ending)
                self._advance(data, end, 1)
                data = self.pending
            end, records = self._whole_records(data, final)
        except _NeedMore:
            self.pending = data
            return
        except _Fault as fault:
            raise self.broken(fault.reason, fault.position) from None
        self._advance(data, end, records)
        if final and self.pending:
            raise self.broken("bytes after the last record", 0)

    def _utf8(self, block: bytes, at: int, final: bool) -> None:
        """Check the block is UTF-8 (an ASCII block, the usual case, at C speed, no decoding)."""
        carried = len(self.decoder.getstate()[0])
        if not carried and not final and block.isascii():
            return
        try:
            self.decoder.decode(block, final)
        except UnicodeDecodeError as error:
            raise self.broken(f"not UTF-8 ({error.reason})", at + error.start - carried) from None

    def _byte_order_mark(self, data: bytes, final: bool) -> bytes:
        if len(data) < len(BYTE_ORDER_MARK) and BYTE_ORDER_MARK.startswith(data) and not final:
            return data
        self.started = True
        has_mark = data.startswith(BYTE_ORDER_MARK)
        if has_mark != self.contract.byte_order_mark:
            raise self.broken(
                "the file starts with a byte-order mark; the contract has none"
                if has_mark
                else "the file has no byte-order mark; the contract asks for one",
                0,
            )
        if has_mark:
            self.offset += len(BYTE_ORDER_MARK)
            data = data[len(BYTE_ORDER_MARK) :]
        if not data and final:
            raise self.broken("the file has no header row", 0)
        return data

    def _whole_records(self, data: bytes, final: bool) -> tuple[int, int]:
        """(end of the last whole record in `data`, how many records end there)."""
        assert self.pattern is not None and self.header is not None
        last = data.rfind(self.closing)
        cut = len(data) if final else last + len(self.closing) if last >= 0 else 0
        if cut > 0:
            left, records = self.pattern.subn(b"", data[:cut] if cut < len(data) else data)
            if not left:
                return cut, records
        # The slow path: record by record from the start of the block.
        position, records = 0, 0
        fields = len(self.header)
        while position < len(data):
            try:
                position, _ = _one_record(data, position, self.contract.line_ending, fields, final)
            except _NeedMore:
                break
            except _Fault:
                self.records += records
                raise
            records += 1
        return position, records

    def _advance(self, data: bytes, end: int, records: int) -> None:
        self.offset += end
        self.records += records
        self.pending = data[end:]
