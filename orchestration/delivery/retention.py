"""Retention: remove the feed files this project delivered to a client once the date in their
name is too old, and the temporary files its crashed uploads left behind. Nothing else.

What one pass removes from the client's folder, over one listing:

- **Our expired feed files and manifests.** A regular file whose name is exactly
  `<prefix>YYYYMMDD.csv` for a feed the client is subscribed to, or that name with the suffixes of
  a compressed or encrypted client (`.csv.gz`, `.csv.pgp`, `.csv.gz.pgp`; `export.envelope`),
  or a client-day manifest `MANIFESTYYYYMMDD.json` (`export.manifest`), with a real calendar date
  that is expired (below), *and*
  which the delivery ledger (`delivery.ledger`) shows this project delivered under that name to
  this very folder (same host, port, account and directory) *with the size the file has now on
  the server*. A file of that name that we never delivered there, or whose size is none of the
  sizes we delivered under that name (the client replaced it with its own copy, another system
  wrote it), is not ours: it is left in place and listed in `foreign`.
- **Our stale temporary files.** A regular file named `.<final name>.<16 hex digits>.part`
  (`delivery.temporary_names`), whose final name is one of those feed file names, and whose
  modification time on the server is more than `STALE_TEMPORARY_SECONDS` old: an upload of ours
  that crashed before its rename. A live upload is never that old (see the constant).

What it never touches: any other file, whatever its name or age (`readme.txt`, other feeds'
files, `SCORM20261128.csv.bak`, `scorm20261128.csv`, `SCORM20261399.csv`, `.SCORM20261128.csv.part`
from older versions or other tools, a temporary name with a token of another length); feed files
that are not expired; directories and symbolic links; anything outside the folder. Files we
delivered before the ledger existed are not in it, so they count as foreign and stay.

`today` is the date in the name of the file being delivered (`days.file_date` of the partition),
not the wall clock: the same run always removes the same feed files, and a backfill of an old day
removes no more than that day's own run did. (Only the age of temporary files is measured by the
clock.)

A file is expired when its name's date is strictly more than `retention_days` before `today`.
A file dated exactly `retention_days` earlier is kept, so with the minimum of 28 a file dated D
is removed by the run for D + 29: it has stayed in the folder for at least 28 whole days
(the promise in the client configuration). Future-dated names are therefore never expired.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import stat
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import dagster as dg
import paramiko

from orchestration.clients.config import MIN_RETENTION_DAYS
from orchestration.days import MANIFEST_PREFIX
from orchestration.delivery.sftp import (
    DeliveryError,
    HostKeyMismatch,
    SftpDelivery,
    SftpTarget,
    open_sftp,
)
from orchestration.delivery.temporary_names import final_name_of

# Dagster's logger: inside a files run its lines (what retention removed, left, or skipped) go to
# the run's event log, so an operator sees them in the UI next to the delivery (issue 15).
# Outside a run it is an ordinary logger.
log = dg.get_dagster_logger("retention")

# A temporary file of ours is removed only when the server says it was last written more than a
# day ago. That is safe because no upload of ours lives that long: each write must be answered
# within IO_TIMEOUT_SECONDS (2 minutes) or the upload fails, and a whole file of a few hundred MB
# goes up, is checked and renamed in minutes. So a temporary file a day old belongs to an attempt
# that died (killed process, dropped connection, server restart), and a concurrent delivery's
# upload in progress, whose file the server touches with every write, is never near the limit.
# The margin also absorbs any difference between our clock and the server's.
STALE_TEMPORARY_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass did.

    `deleted`: our expired feed files removed (in a dry run, that would have been), oldest first.
    `kept`: how many of our feed files stay because they are not expired; files that are not ours
    never count. `foreign`: expired feed file names that are not ours (never delivered there by
    us, or not the size we delivered), left in place, sorted. `temporaries_removed`: our stale
    temporary files removed (in a dry run, that would have been), sorted.
    """

    deleted: list[str]
    kept: int
    dry_run: bool
    foreign: list[str] = field(default_factory=list)
    temporaries_removed: list[str] = field(default_factory=list)


class RetentionError(DeliveryError):
    """Retention stopped part way; `deleted` names the feed files and `temporaries_removed` the
    temporary files removed before it stopped."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        deleted: list[str],
        temporaries_removed: list[str] | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.deleted = deleted
        self.temporaries_removed = list(temporaries_removed or [])


def expired_files(
    names: Iterable[str], prefixes: Iterable[str], today: dt.date, retention_days: int
) -> list[str]:
    """The names in `names` that are this client's feed files dated before
    `today - retention_days`, sorted oldest first (by name alone: whether they are ours is
    `prune_remote`'s question)."""
    expired, _ = _dated_feed_files(names, prefixes, today, retention_days)
    return expired


def prune_remote(
    session_or_target: SftpDelivery | SftpTarget,
    directory: str,
    prefixes: Iterable[str],
    today: dt.date,
    retention_days: int,
    dry_run: bool = False,
    *,
    delivered: Mapping[str, Collection[int]],
) -> RetentionReport:
    """List `directory` over one SFTP connection and remove our expired feed files and our stale
    temporary files (see the module docstring for exactly which).

    `delivered` maps each file name this project delivered to this folder to the sizes it had
    (`ledger.delivered_sizes`). Pass the delivery session to reuse its connection, or a target to
    open (and close) one. With `dry_run` nothing is removed; the report names what would have been.
    """
    prefixes = tuple(prefixes)
    _patterns(prefixes)
    _check_days(today, retention_days)
    if not isinstance(delivered, Mapping):
        raise TypeError(
            "delivered must map file names to the sizes delivered under them "
            f"(ledger.delivered_sizes), not {delivered!r}"
        )
    if isinstance(session_or_target, SftpTarget):
        with open_sftp(session_or_target) as session:
            return _prune(session, directory, prefixes, today, retention_days, dry_run, delivered)
    return _prune(session_or_target, directory, prefixes, today, retention_days, dry_run, delivered)


@dataclass
class _Plan:
    expired: list[str]
    kept: int
    foreign: list[str]
    temporaries: list[str]


def _prune(
    session: SftpDelivery,
    directory: str,
    prefixes: tuple[str, ...],
    today: dt.date,
    retention_days: int,
    dry_run: bool,
    delivered: Mapping[str, Collection[int]],
) -> RetentionReport:
    target = session.target
    try:
        sftp = session.sftp_client()
    except HostKeyMismatch as error:
        error.add_note(f"Retention did not run: nothing was removed from {directory}.")
        raise
    except DeliveryError as error:
        raise _failure(
            target, directory, f"could not connect ({error})", "Nothing was removed.", []
        ) from error
    try:
        entries = sftp.listdir_attr(directory)
    except (OSError, EOFError, paramiko.SSHException) as error:
        raise _listing_failure(target, directory, error) from error
    plan = _plan(entries, prefixes, today, retention_days, delivered, time.time())
    if plan.foreign:
        log.info(
            "client %s: retention leaves %s in %s: named like expired feed files, but not "
            "delivered there by this project at their present size",
            target.client_id,
            plan.foreign,
            directory,
        )
    if dry_run:
        log.info(
            "client %s: retention dry run in %s: would remove %s and stale temporary files %s",
            target.client_id,
            directory,
            plan.expired,
            plan.temporaries,
        )
        return RetentionReport(
            deleted=plan.expired,
            kept=plan.kept,
            dry_run=True,
            foreign=plan.foreign,
            temporaries_removed=plan.temporaries,
        )
    deleted: list[str] = []
    temporaries: list[str] = []
    for name, removed in [
        *((name, deleted) for name in plan.expired),
        *((name, temporaries) for name in plan.temporaries),
    ]:
        try:
            sftp.remove(posixpath.join(directory, name))
        except FileNotFoundError:
            # The client's pickup job may move files away at any time; gone is what we wanted.
            log.info("client %s: %s vanished before retention removed it", target.client_id, name)
            continue
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise _removal_failure(target, directory, name, error, deleted, temporaries) from error
        removed.append(name)
    log.info(
        "client %s: retention removed %s and stale temporary files %s from %s",
        target.client_id,
        deleted,
        temporaries,
        directory,
    )
    return RetentionReport(
        deleted=deleted,
        kept=plan.kept,
        dry_run=False,
        foreign=plan.foreign,
        temporaries_removed=temporaries,
    )


def _plan(
    entries: Iterable[paramiko.SFTPAttributes],
    prefixes: tuple[str, ...],
    today: dt.date,
    retention_days: int,
    delivered: Mapping[str, Collection[int]],
    now: float,
) -> _Plan:
    """Sort one listing into our expired feed files (oldest first), how many of ours are kept,
    the expired ones that are not ours, and our stale temporary files."""
    patterns = _patterns(prefixes)
    oldest_kept = today - dt.timedelta(days=retention_days)
    expired: list[tuple[dt.date, str]] = []
    kept = 0
    foreign: list[str] = []
    temporaries: list[str] = []
    for entry in entries:
        if not (entry.st_mode and stat.S_ISREG(entry.st_mode)):
            continue  # directories and symbolic links are never ours to remove
        name = entry.filename
        day = _date_in_name(name, patterns)
        if day is not None:
            ours = entry.st_size is not None and entry.st_size in delivered.get(name, ())
            if not ours:
                if day < oldest_kept:
                    foreign.append(name)
            elif day < oldest_kept:
                expired.append((day, name))
            else:
                kept += 1
            continue
        final = final_name_of(name)
        if final is None or _date_in_name(final, patterns) is None:
            continue
        if entry.st_mtime is not None and now - entry.st_mtime > STALE_TEMPORARY_SECONDS:
            temporaries.append(name)
    return _Plan(
        expired=[name for _, name in sorted(expired)],
        kept=kept,
        foreign=sorted(foreign),
        temporaries=sorted(temporaries),
    )


def _dated_feed_files(
    names: Iterable[str], prefixes: Iterable[str], today: dt.date, retention_days: int
) -> tuple[list[str], int]:
    """(the expired feed file names, oldest first; how many feed file names are not expired)."""
    patterns = _patterns(prefixes)
    _check_days(today, retention_days)
    oldest_kept = today - dt.timedelta(days=retention_days)
    expired: list[tuple[dt.date, str]] = []
    kept = 0
    for name in names:
        day = _date_in_name(name, patterns)
        if day is None:
            continue
        if day < oldest_kept:
            expired.append((day, name))
        else:
            kept += 1
    return [name for _, name in sorted(expired)], kept


# The suffixes a feed file may carry: none, or a client's envelope (export.envelope).
_FEED_FILE_SUFFIX = r"\.csv(?:\.gz)?(?:\.pgp)?"
# A client-day manifest, whatever feeds the client takes (export.manifest). Listed for every
# client: only one that the ledger shows we delivered is ever removed.
_MANIFEST_PATTERN = re.compile(re.escape(MANIFEST_PREFIX) + r"([0-9]{8})\.json")


def _patterns(prefixes: Iterable[str]) -> list[re.Pattern[str]]:
    """`Completion` -> `Completion([0-9]{8})\\.csv(\\.gz)?(\\.pgp)?`, matched against the whole
    name, and the manifest's `MANIFEST([0-9]{8})\\.json`. `[0-9]`, not `\\d`, which also matches
    other scripts' digits; `fullmatch`, as `$` would accept a final newline."""
    patterns = []
    for prefix in prefixes:
        if not prefix or "/" in prefix:
            raise ValueError(f"feed prefix {prefix!r} must be a non-empty file name prefix")
        patterns.append(re.compile(re.escape(prefix) + r"([0-9]{8})" + _FEED_FILE_SUFFIX))
    patterns.append(_MANIFEST_PATTERN)
    return patterns


def _date_in_name(name: str, patterns: list[re.Pattern[str]]) -> dt.date | None:
    for pattern in patterns:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        try:
            return dt.datetime.strptime(match.group(1), "%Y%m%d").date()
        except ValueError:
            return None  # SCORM20261399.csv is not a date, so not a file we made.
    return None


def _check_days(today: dt.date, retention_days: int) -> None:
    if isinstance(today, dt.datetime) or not isinstance(today, dt.date):
        raise TypeError(f"today must be a date (the file date being delivered), not {today!r}")
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"retention_days is {retention_days}; files stay at least {MIN_RETENTION_DAYS} days"
        )


def _failure(
    target: SftpTarget,
    directory: str,
    what: str,
    remedy: str,
    deleted: list[str],
    *,
    retryable: bool = True,
    temporaries_removed: list[str] | None = None,
) -> RetentionError:
    removed_names = [*deleted, *(temporaries_removed or [])]
    removed = f" Already removed: {', '.join(removed_names)}." if removed_names else ""
    return RetentionError(
        f"client {target.client_id}: retention in {target.username}@{target.server}:{directory} "
        f"stopped: {what}. {remedy}{removed}",
        retryable=retryable,
        deleted=list(deleted),
        temporaries_removed=temporaries_removed,
    )


def _listing_failure(target: SftpTarget, directory: str, error: Exception) -> RetentionError:
    if isinstance(error, FileNotFoundError):
        return _failure(
            target,
            directory,
            f"the folder {directory} does not exist on the server",
            f"Create it, or correct sftp.directory for client {target.client_id}.",
            [],
            retryable=False,
        )
    if isinstance(error, PermissionError):
        return _failure(
            target,
            directory,
            f"permission denied listing {directory}",
            f"Ask the server's administrator to let {target.username} list it.",
            [],
            retryable=False,
        )
    return _failure(
        target,
        directory,
        f"the folder could not be listed ({error or type(error).__name__})",
        "Nothing was removed; retention runs again with the next delivery.",
        [],
    )


def _removal_failure(
    target: SftpTarget,
    directory: str,
    name: str,
    error: Exception,
    deleted: list[str],
    temporaries_removed: list[str],
) -> RetentionError:
    what = "the stale temporary file" if final_name_of(name) is not None else "the expired file"
    if isinstance(error, PermissionError):
        return _failure(
            target,
            directory,
            f"permission denied removing {what} {name}",
            f"Ask the server's administrator to let {target.username} remove files there.",
            deleted,
            retryable=False,
            temporaries_removed=temporaries_removed,
        )
    return _failure(
        target,
        directory,
        f"could not remove {what} {name} ({error or type(error).__name__})",
        "Retention runs again with the next delivery.",
        deleted,
        temporaries_removed=temporaries_removed,
    )
