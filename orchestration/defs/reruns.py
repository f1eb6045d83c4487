"""Re-send and rebuild of a client's days from the command line (`ods resend`, `ods rebuild`).

Both run the same jobs as the UI, in this process, against the Dagster instance in DAGSTER_HOME,
so the runs and materialisations show in the UI's history like any other:
- re-send: only `<feed>_delivery` of each (client, day) partition; it uploads the archived file,
  byte for byte, and builds nothing;
- rebuild: `daily_marts_job` once over the whole range (tagged so that the files sensor does not
  also follow it), then the full `<feed>_files_job` of each (client, day): export, checks, delivery.
  The marts run refreshes the union views and views and rebuilds the marts of the requested feeds
  only: another feed's mart rebuilt from changed data would no longer match the files its
  clients were sent (and its files would not be re-sent).
Everything that can be checked before a run (client, feeds, days, archived files) is checked first,
so a mistyped request sends nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.clients import ClientsConfig
from orchestration.days import file_name
from orchestration.defs.client_files import CLIENT_FILES, client_selection, delivery_key
from orchestration.defs.jobs import (
    CLIENT_FILES_JOB,
    CLIENTS_TAG,
    DAILY_MARTS_JOB,
    FILES_FOLLOW_TAG,
    VIEWS_JOB,
)
from orchestration.defs.partitions import client_day_key, day_before, days_between
from orchestration.export import archive
from orchestration.feeds import FEEDS, Feed

STARTED_BY_TAG = "ods/started_by"

# Dagster's console logger prints every event at DEBUG. Callers choose: `ods` commands send it,
# at DEBUG, to their log file (orchestration/cli.py CommandLog); others keep warnings only.
QUIET = "WARNING"


def run_config(log_level: str) -> dict[str, Any]:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


class RerunError(ValueError):
    """The request cannot be carried out as asked; nothing was run (`ods` exits 2)."""


class RunFailed(RuntimeError):
    """A run was started and failed (`ods` exits 1); the message names the run."""


@dataclass(frozen=True)
class FileRun:
    """One client-day of one feed: sent (with the delivery's metadata) or failed (and why)."""

    feed: str
    client_id: str
    day: dt.date
    file_name: str
    success: bool
    message: str = ""
    delivered: dict[str, Any] = field(default_factory=dict)


def feeds_of(config: ClientsConfig, client_id: str, feed_name: str | None) -> list[Feed]:
    """The client's feeds, or the one asked for; a clear error for an unknown or unsubscribed one."""
    if client_id not in config.clients:
        raise RerunError(
            f"unknown client {client_id!r}; clients: {', '.join(sorted(config.clients))}"
        )
    subscribed = [feed for feed in FEEDS.values() if feed.name in config.clients[client_id].feeds]
    if feed_name is None:
        return subscribed
    if feed_name not in FEEDS:
        raise RerunError(f"unknown feed {feed_name!r}; feeds: {', '.join(FEEDS)}")
    if feed_name not in config.clients[client_id].feeds:
        raise RerunError(
            f"client {client_id!r} does not get the {feed_name} feed; "
            f"its feeds: {', '.join(f.name for f in subscribed)}"
        )
    return [FEEDS[feed_name]]


def days_of(
    config: ClientsConfig, client_id: str, first: dt.date, last: dt.date | None
) -> list[dt.date]:
    """first..last (default: first alone), from the clients file's `first_day` through the
    client's yesterday: the last day that is over in the client's time zone."""
    last = last or first
    if last < first:
        raise RerunError(f"--to {last} is before --from {first}")
    if first < config.first_day:
        raise RerunError(f"{first} is before the first day, {config.first_day} (first_day)")
    timezone = config.timezone_of(client_id)
    yesterday = day_before(dt.datetime.now(dt.UTC), timezone)
    if last > yesterday:
        raise RerunError(
            f"{last} is not over yet in {timezone} (client {client_id}'s time zone); "
            f"the last day is {yesterday}"
        )
    return days_between(first, last)


def archived_files(
    config: ClientsConfig,
    archive_root: Path,
    client_id: str,
    feeds: list[Feed],
    days: list[dt.date],
) -> dict[tuple[str, dt.date], archive.ArchivedFile]:
    """The archived file of every (feed, day); RerunError naming all that are missing."""
    client = config.clients[client_id]
    found: dict[tuple[str, dt.date], archive.ArchivedFile] = {}
    missing = []
    for feed in feeds:
        folder = archive.feed_folder(archive_root, client_id, feed.name)
        for day in days:
            name = file_name(feed.prefix, day, client.file_date)
            made = archive.read(folder / name)
            if made is None:
                missing.append(f"{name} ({feed.name}, day {day})")
            else:
                found[feed.name, day] = made
    if missing:
        raise RerunError(
            f"client {client_id!r}: no archived file {', '.join(missing)} in {archive_root}; "
            "nothing was sent. Build them with `ods rebuild`."
        )
    return found


def resend(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    config: ClientsConfig,
    archive_root: Path,
    client_id: str,
    feeds: list[Feed],
    days: list[dt.date],
    log_level: str = QUIET,
) -> list[FileRun]:
    """Deliver the archived files again, unchanged: the delivery assets only, one run a day."""
    archived_files(config, archive_root, client_id, feeds, days)
    return [
        file_run
        for day in days
        for file_run in run_client_files(
            defs,
            instance,
            config,
            client_id,
            day,
            feeds,
            deliver_only=True,
            by="resend",
            log_level=log_level,
        )
    ]


def rebuild(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    config: ClientsConfig,
    client_id: str,
    feeds: list[Feed],
    days: list[dt.date],
    log_level: str = QUIET,
) -> list[FileRun]:
    """Rebuild the client's rows of the feeds' marts for the days (one run; every other client's
    rows stay as they were), then export, check and deliver its files, one run a day."""
    build_marts(
        defs,
        instance,
        days[0],
        days[-1],
        by="rebuild",
        feeds=feeds,
        clients=[client_id],
        log_level=log_level,
    )
    return [
        file_run
        for day in days
        for file_run in run_client_files(
            defs,
            instance,
            config,
            client_id,
            day,
            feeds,
            deliver_only=False,
            by="rebuild",
            log_level=log_level,
        )
    ]


def build_views(
    defs: dg.Definitions, instance: dg.DagsterInstance, log_level: str = QUIET
) -> dg.ExecuteInProcessResult:
    """The union views and dbt's staging and intermediate views, recreated (`ods views`);
    RunFailed if that fails."""
    result = defs.resolve_job_def(VIEWS_JOB).execute_in_process(
        instance=instance,
        run_config=run_config(log_level),
        tags={STARTED_BY_TAG: "ods views"},
        raise_on_error=False,
    )
    if not result.success:
        raise RunFailed(
            f"recreating the views failed ({_failure_message(result)}); "
            f"see run {result.run_id} in the Dagster UI"
        )
    return result


def build_marts(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: dt.date,
    last: dt.date,
    by: str,
    feeds: list[Feed] | None = None,
    clients: list[str] | None = None,
    log_level: str = QUIET,
) -> dg.ExecuteInProcessResult:
    """The marts for first..last in one run — of the given feeds only if any, for the given
    clients only if any — with the union views and views they read; RunFailed if it fails. Its
    files are run by the caller, so the files sensor is told not to follow it."""
    job = defs.resolve_job_def(DAILY_MARTS_JOB)
    selection = None
    if feeds is not None:
        left_out = {feed.mart for feed in FEEDS.values() if feed not in feeds}
        selection = [
            key for key in job.asset_layer.selected_asset_keys if key.path[-1] not in left_out
        ]
    result = job.execute_in_process(
        instance=instance,
        asset_selection=selection,
        run_config=run_config(log_level),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
            FILES_FOLLOW_TAG: "false",
            STARTED_BY_TAG: f"ods {by}",
            **({CLIENTS_TAG: ",".join(clients)} if clients else {}),
        },
        raise_on_error=False,
    )
    if not result.success:
        raise RunFailed(
            f"the marts run for {first}..{last} failed ({_failure_message(result)}); "
            f"see run {result.run_id} in the Dagster UI"
        )
    return result


def run_client_files(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    config: ClientsConfig,
    client_id: str,
    day: dt.date,
    feeds: list[Feed],
    *,
    deliver_only: bool,
    by: str,
    log_level: str = QUIET,
) -> list[FileRun]:
    """One files run for a client-day: the feeds' files, checks and deliveries, or the
    deliveries alone; one FileRun per feed."""
    # The checks of the selected assets come with them (the file checks, the deadline check).
    assets, _ = client_selection(config.clients[client_id], deliver_only=deliver_only, feeds=feeds)
    result = defs.resolve_job_def(CLIENT_FILES_JOB).execute_in_process(
        instance=instance,
        partition_key=client_day_key(client_id, day),
        asset_selection=assets,
        run_config=run_config(log_level),
        tags={STARTED_BY_TAG: f"ods {by}"},
        raise_on_error=False,
    )
    materialised = {
        m.asset_key: {key: value.value for key, value in m.metadata.items()}
        for m in result.asset_materializations_for_node(CLIENT_FILES)
    }
    failure = "" if result.success else _failure_message(result)
    runs = []
    for feed in feeds:
        delivered = materialised.get(delivery_key(feed), {})
        runs.append(
            FileRun(
                feed=feed.name,
                client_id=client_id,
                day=day,
                file_name=file_name(feed.prefix, day, config.clients[client_id].file_date),
                success=bool(delivered) and not _names_feed(failure, feed),
                message=_feed_message(failure, feed)
                if not delivered or _names_feed(failure, feed)
                else "",
                delivered=delivered,
            )
        )
    return runs


def _names_feed(failure: str, feed: Feed) -> bool:
    return f"feed {feed.name}," in failure


def _feed_message(failure: str, feed: Feed) -> str:
    """The failure's line about `feed` (a run with several failed feeds lists one per line)."""
    for line in failure.splitlines():
        if f"feed {feed.name}," in line:
            return line.removeprefix("- ")
    return failure or "not delivered"


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return data.user_failure_data.description
        error = data.error
        if error is not None:
            # Dagster wraps what the step raised ("Error occurred while executing op …"): the
            # innermost cause says what went wrong, now that the event log is in a file.
            while error.cause is not None:
                error = error.cause
            return error.message.strip().splitlines()[-1]
    return "failed"
