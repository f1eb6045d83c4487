"""A client's contract for one feed: everything in the clients file that shapes the bytes of its
file, and a stable short hash of it (the *contract version*).

The version changes when, and only when, the file a client receives would change shape: a column
added, removed, renamed or moved, the `records` choice, line endings, byte order mark, formula
neutralising, or the date in the file's name. It does not change with the client's server, its
retention, its alerts or its time zone (the day a file covers is in its name and manifest, not its
shape). Compression and encryption wrap the CSV and are not part of its shape either; a manifest
names them separately.

The manifest of a delivery (`MANIFEST<YYYYMMDD>.json`), `ods contract` and a delivery's metadata
all carry the same version, so a client's loader can tell that a file's layout changed before it
reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestration.clients import ClientConfig
from orchestration.feeds import FEEDS, Feed

# The length of the printed version: 12 hex digits (48 bits) tell a client's handful of contracts
# apart with room to spare, and fit in a file listing.
VERSION_LENGTH = 12


@dataclass(frozen=True)
class Contract:
    """What shapes one client's file of one feed, in a form that compares and prints."""

    feed: str
    prefix: str
    # (canonical column, header the client asked for), in file order.
    columns: tuple[tuple[str, str], ...]
    # The feed's records choice (`completed_or_passed`/`all`), or None where the feed has none.
    records: str | None
    line_ending: str
    byte_order_mark: bool
    neutralise_formulas: bool
    file_date: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "prefix": self.prefix,
            "columns": [{"column": column, "header": header} for column, header in self.columns],
            "records": self.records,
            "line_ending": self.line_ending,
            "byte_order_mark": self.byte_order_mark,
            "neutralise_formulas": self.neutralise_formulas,
            "file_date": self.file_date,
        }

    @property
    def version(self) -> str:
        """A stable hash of `as_dict()`: same contract, same version, on any machine."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]


def contract_of(client: ClientConfig, feed: Feed) -> Contract:
    """The contract of the client's file for `feed` (a feed the client takes)."""
    records = None
    if feed.records is not None:
        records = client.feeds[feed.name].records or feed.default_records
    return Contract(
        feed=feed.name,
        prefix=feed.prefix,
        columns=tuple(client.headers(feed).items()),
        records=records,
        line_ending=client.line_ending,
        byte_order_mark=client.byte_order_mark,
        neutralise_formulas=client.neutralise_formulas,
        file_date=client.file_date,
    )


def contract_version(client: ClientConfig, feed: Feed) -> str:
    """The contract version of the client's file for `feed`."""
    return contract_of(client, feed).version


# What `diff` compares besides the columns, in the order it reports them. Every field of
# `Contract` but `feed` (the key a diff is made for) and `columns` (compared column by column).
OPTION_NAMES = (
    "prefix",
    "records",
    "line_ending",
    "byte_order_mark",
    "neutralise_formulas",
    "file_date",
)


class ContractFormatError(ValueError):
    """A recorded contract (an archive record, a manifest) is not in the shape `as_dict` makes."""


def contract_from_dict(data: Mapping[str, Any]) -> Contract:
    """The contract `as_dict()` was made from: for a contract recorded with an archived file.

    Keys it does not know are ignored, so a record written by a later version still reads;
    a missing or mistyped key raises ContractFormatError naming it."""
    if not isinstance(data, Mapping):
        raise ContractFormatError(f"a contract is a mapping, not {type(data).__name__}")
    missing = [key for key in ("feed", "prefix", "columns", *OPTION_NAMES) if key not in data]
    if missing:
        raise ContractFormatError(f"the contract has no {', '.join(missing)}")
    columns = data["columns"]
    if not isinstance(columns, list) or not all(
        isinstance(c, Mapping)
        and isinstance(c.get("column"), str)
        and isinstance(c.get("header"), str)
        for c in columns
    ):
        raise ContractFormatError(
            "the contract's columns must be a list of {column: ..., header: ...} mappings"
        )
    for key in ("byte_order_mark", "neutralise_formulas"):
        if not isinstance(data[key], bool):
            raise ContractFormatError(f"the contract's {key} must be true or false")
    for key in ("feed", "prefix", "line_ending", "file_date"):
        if not isinstance(data[key], str):
            raise ContractFormatError(f"the contract's {key} must be a string")
    if data["records"] is not None and not isinstance(data["records"], str):
        raise ContractFormatError("the contract's records must be a string or null")
    return Contract(
        feed=data["feed"],
        prefix=data["prefix"],
        columns=tuple((c["column"], c["header"]) for c in columns),
        records=data["records"],
        line_ending=data["line_ending"],
        byte_order_mark=data["byte_order_mark"],
        neutralise_formulas=data["neutralise_formulas"],
        file_date=data["file_date"],
    )


def contracts_of_client(client: ClientConfig) -> dict[str, Contract]:
    """The contract of each feed the client takes, in the catalogue's feed order."""
    return {name: contract_of(client, feed) for name, feed in FEEDS.items() if name in client.feeds}


@dataclass(frozen=True)
class ColumnAdded:
    column: str
    header: str
    position: int  # 1-based, in the new file


@dataclass(frozen=True)
class ColumnRemoved:
    column: str
    header: str
    position: int  # 1-based, in the old file


@dataclass(frozen=True)
class ColumnRenamed:
    """The same canonical column under another header."""

    column: str
    old_header: str
    new_header: str


@dataclass(frozen=True)
class ColumnMoved:
    """A column kept in both files whose place among the kept columns changed."""

    column: str
    old_position: int
    new_position: int


@dataclass(frozen=True)
class OptionChanged:
    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ContractDiff:
    """How one feed's file changes shape from the `old` contract to the `new` one."""

    feed: str
    old_version: str
    new_version: str
    added: tuple[ColumnAdded, ...]
    removed: tuple[ColumnRemoved, ...]
    renamed: tuple[ColumnRenamed, ...]
    moved: tuple[ColumnMoved, ...]
    options: tuple[OptionChanged, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.moved or self.options)

    def lines(self) -> list[str]:
        """One line per change, for a person reading a terminal."""
        out = [f"added    {a.column} as {a.header!r} (column {a.position})" for a in self.added]
        out += [
            f"removed  {r.column} ({r.header!r}, was column {r.position})" for r in self.removed
        ]
        out += [f"renamed  {r.column}: {r.old_header!r} -> {r.new_header!r}" for r in self.renamed]
        out += [
            f"moved    {m.column}: column {m.old_position} -> {m.new_position}" for m in self.moved
        ]
        out += [f"option   {o.name}: {o.old!r} -> {o.new!r}" for o in self.options]
        return out


def _kept_in_order(old: list[str], new: list[str]) -> set[str]:
    """The largest set of columns whose relative order is the same in `old` and `new` (a longest
    common subsequence): the columns outside it are the ones that moved. Moving one column from
    the end to the front then reports that one column, not every column it jumped over."""
    lengths = [[0] * (len(new) + 1) for _ in range(len(old) + 1)]
    for i in range(len(old) - 1, -1, -1):
        for j in range(len(new) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1
                if old[i] == new[j]
                else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    kept: set[str] = set()
    i = j = 0
    while i < len(old) and j < len(new):
        if old[i] == new[j]:
            kept.add(old[i])
            i, j = i + 1, j + 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return kept


def diff(old: Contract, new: Contract) -> ContractDiff:
    """Columns added, removed, renamed (same canonical column, another header) and moved, and the
    options changed, from `old` to `new` (two contracts of the same feed)."""
    if old.feed != new.feed:
        raise ValueError(
            f"a diff compares one feed's contracts, not {old.feed!r} with {new.feed!r}"
        )
    old_headers, new_headers = dict(old.columns), dict(new.columns)
    old_order = [column for column, _ in old.columns]
    new_order = [column for column, _ in new.columns]
    old_kept = [column for column in old_order if column in new_headers]
    new_kept = [column for column in new_order if column in old_headers]
    in_order = _kept_in_order(old_kept, new_kept)
    return ContractDiff(
        feed=new.feed,
        old_version=old.version,
        new_version=new.version,
        added=tuple(
            ColumnAdded(column, header, new_order.index(column) + 1)
            for column, header in new.columns
            if column not in old_headers
        ),
        removed=tuple(
            ColumnRemoved(column, header, old_order.index(column) + 1)
            for column, header in old.columns
            if column not in new_headers
        ),
        renamed=tuple(
            ColumnRenamed(column, old_headers[column], new_headers[column])
            for column in new_kept
            if old_headers[column] != new_headers[column]
        ),
        moved=tuple(
            ColumnMoved(column, old_order.index(column) + 1, new_order.index(column) + 1)
            for column in new_kept
            if column not in in_order
        ),
        options=tuple(
            OptionChanged(name, getattr(old, name), getattr(new, name))
            for name in OPTION_NAMES
            if getattr(old, name) != getattr(new, name)
        ),
    )


@dataclass(frozen=True)
class ClientContractDiff:
    """How a client's files change shape: feeds it starts or stops taking, and each kept feed's
    diff (in the catalogue's feed order)."""

    feeds_added: tuple[str, ...]
    feeds_removed: tuple[str, ...]
    feeds: tuple[ContractDiff, ...]

    @property
    def changed(self) -> bool:
        return bool(self.feeds_added or self.feeds_removed) or any(d.changed for d in self.feeds)


def diff_client(old: Mapping[str, Contract], new: Mapping[str, Contract]) -> ClientContractDiff:
    """`diff` for every feed in both, and the feeds only in one of them."""
    return ClientContractDiff(
        feeds_added=tuple(feed for feed in new if feed not in old),
        feeds_removed=tuple(feed for feed in old if feed not in new),
        feeds=tuple(diff(old[feed], new[feed]) for feed in new if feed in old),
    )
