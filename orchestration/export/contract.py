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
from dataclasses import dataclass
from typing import Any

from orchestration.clients import ClientConfig
from orchestration.feeds import Feed

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
