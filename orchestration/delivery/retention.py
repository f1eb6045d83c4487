"""Retention: remove a client's own feed files once the date in their name is too old.

Only names that are exactly `<prefix>YYYYMMDD.csv` for a feed the client is subscribed to, with a
real calendar date, are ever candidates; everything else in the folder (the client's own files,
other feeds' files, `.part` temporaries, `SCORM20261128.csv.bak`, `scorm20261128.csv`) is left
alone, and so are directories and symbolic links, whatever their name.

`today` is the date in the name of the file being delivered (`days.file_date` of the partition),
not the wall clock: the same run always removes the same files, and a backfill of an old day
removes no more than that day's own run did.

A file is expired when its name's date is strictly more than `retention_days` before `today`.
A file dated exactly `retention_days` earlier is kept, so with the minimum of 28 a file dated D
is removed by the run for D + 29: it has stayed in the folder for at least 28 whole days
(the promise in the client configuration). Future-dated names are therefore never expired.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass

import paramiko

from orchestration.clients.config import MIN_RETENTION_DAYS
from orchestration.delivery.sftp import (
    DeliveryError,
    HostKeyMismatch,
    SftpDelivery,
    SftpTarget,
    open_sftp,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass did: the names removed (or, in a dry run, that would have been),
    and how many of the client's feed files stay."""

    deleted: list[str]
    kept: int
    dry_run: bool


class RetentionError(DeliveryError):
    """Retention stopped part way; `deleted` names the files removed before it stopped."""

    def __init__(self, message: str, *, retryable: bool, deleted: list[str]) -> None:
        super().__init__(message, retryable=retryable)
        self.deleted = deleted


def expired_files(
    names: Iterable[str], prefixes: Iterable[str], today: dt.date, retention_days: int
) -> list[str]:
    """The names in `names` that are this client's feed files dated before
    `today - retention_days`, sorted oldest first."""
    expired, _ = _dated_feed_files(names, prefixes, today, retention_days)
    return expired


def prune_remote(
    session_or_target: SftpDelivery | SftpTarget,
    directory: str,
    prefixes: Iterable[str],
    today: dt.date,
    retention_days: int,
    dry_run: bool = False,
) -> RetentionReport:
    """List `directory` over one SFTP connection and remove the client's expired feed files.

    Pass the delivery session to reuse its connection, or a target to open (and close) one.
    With `dry_run` nothing is removed; the report names what would have been.
    """
    prefixes = tuple(prefixes)
    _patterns(prefixes)
    _check_days(today, retention_days)
    if isinstance(session_or_target, SftpTarget):
        with open_sftp(session_or_target) as session:
            return _prune(session, directory, prefixes, today, retention_days, dry_run)
    return _prune(session_or_target, directory, prefixes, today, retention_days, dry_run)


def _prune(
    session: SftpDelivery,
    directory: str,
    prefixes: tuple[str, ...],
    today: dt.date,
    retention_days: int,
    dry_run: bool,
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
    regular_files = [
        entry.filename for entry in entries if entry.st_mode and stat.S_ISREG(entry.st_mode)
    ]
    names, kept = _dated_feed_files(regular_files, prefixes, today, retention_days)
    if dry_run:
        log.info(
            "client %s: retention dry run in %s: would remove %s",
            target.client_id,
            directory,
            names,
        )
        return RetentionReport(deleted=names, kept=kept, dry_run=True)
    deleted: list[str] = []
    for name in names:
        try:
            sftp.remove(posixpath.join(directory, name))
        except FileNotFoundError:
            # The client's pickup job may move files away at any time; gone is what we wanted.
            log.info("client %s: %s vanished before retention removed it", target.client_id, name)
            continue
        except (OSError, EOFError, paramiko.SSHException) as error:
            raise _removal_failure(target, directory, name, error, deleted) from error
        deleted.append(name)
    log.info("client %s: retention removed %s from %s", target.client_id, deleted, directory)
    return RetentionReport(deleted=deleted, kept=kept, dry_run=False)


def _dated_feed_files(
    names: Iterable[str], prefixes: Iterable[str], today: dt.date, retention_days: int
) -> tuple[list[str], int]:
    """(the expired feed files, oldest first; how many feed files are kept)."""
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


def _patterns(prefixes: Iterable[str]) -> list[re.Pattern[str]]:
    """`Completion` -> `Completion([0-9]{8})\\.csv`, matched against the whole name. `[0-9]`, not
    `\\d`, which also matches other scripts' digits; `fullmatch`, as `$` would accept a final
    newline."""
    patterns = []
    for prefix in prefixes:
        if not prefix or "/" in prefix:
            raise ValueError(f"feed prefix {prefix!r} must be a non-empty file name prefix")
        patterns.append(re.compile(re.escape(prefix) + r"([0-9]{8})\.csv"))
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
) -> RetentionError:
    removed = f" Already removed: {', '.join(deleted)}." if deleted else ""
    return RetentionError(
        f"client {target.client_id}: retention in {target.username}@{target.server}:{directory} "
        f"stopped: {what}. {remedy}{removed}",
        retryable=retryable,
        deleted=list(deleted),
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
    target: SftpTarget, directory: str, name: str, error: Exception, deleted: list[str]
) -> RetentionError:
    if isinstance(error, PermissionError):
        return _failure(
            target,
            directory,
            f"permission denied removing {name}",
            f"Ask the server's administrator to let {target.username} remove files there.",
            deleted,
            retryable=False,
        )
    return _failure(
        target,
        directory,
        f"could not remove {name} ({error or type(error).__name__})",
        "Retention runs again with the next delivery.",
        deleted,
    )
