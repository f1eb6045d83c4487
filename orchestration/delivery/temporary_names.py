"""Temporary names of uploads in progress: unique per attempt, recognisable as ours.

An upload is written under `.<final name>.<16 hex digits>.part` in the client's folder, then
verified and renamed onto the final name. The random part makes each attempt's name its own: two
deliveries of the same file at once (a nightly run and an `ods resend`) never write into each
other's temporary file, which with one fixed temporary name let one session truncate the file the
other was about to rename into place (issue 11). The leading dot and the `.part` ending keep a
client's pickup job (`*.csv`) away from it.

Only names of exactly this shape, for a final name that is one of our feed files, are ever
treated as ours (see `delivery.retention` for the clean-up of ones a crashed attempt left).
"""

from __future__ import annotations

import re
import secrets

TOKEN_HEX_DIGITS = 16
_TEMPORARY = re.compile(r"\.(?P<final>[^/]+)\.(?P<token>[0-9a-f]{16})\.part")


def temporary_name(final_name: str) -> str:
    """A fresh temporary name for one upload attempt of `final_name`."""
    return f".{final_name}.{secrets.token_hex(TOKEN_HEX_DIGITS // 2)}.part"


def final_name_of(name: str) -> str | None:
    """The final name a temporary name was made for, or None when `name` is not one of ours."""
    match = _TEMPORARY.fullmatch(name)
    return match.group("final") if match else None
