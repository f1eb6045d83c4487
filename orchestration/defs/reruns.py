"""Re-send and rebuild of a client's days from the command line (`ods resend`, `ods rebuild`).

Both submit runs of the same jobs as the UI to the Dagster instance in DAGSTER_HOME, through its
run queue (orchestration/defs/queued_runs.py): the runs carry the files sensor's tags
(`ods/sftp_host`, the client-day partition) and `ods/started_by`, so the instance's limits per
SFTP host and the `dbt_marts` pool hold for them as for the night's runs, and they are in the UI's
run history like any other:
- re-send: only `<feed>_delivery` of each (client, day) partition; it uploads the archived file,
  byte for byte, and builds nothing;
- rebuild: `daily_marts_job` once over the whole range (tagged so that the files sensor does not
  also follow it), waited for, then the full files run of each (client, day): export, checks,
  delivery. The marts run refreshes the union views and views and rebuilds the marts of the
  requested feeds only: another feed's mart rebuilt from changed data would no longer match the
  files its clients were sent (and its files would not be re-sent).
Everything that can be checked before a run (client, feeds, days, archived files) is checked first,
so a mistyped request sends nothing.

`build_marts` and `run_client_files` run the same jobs in this process instead (`execute_in_process`,
beside the queue): the demo's path (ods_local/demo.py), where a run's start-up, a few
seconds, would be most of its time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    SFTP_HOST_TAG,
    VIEWS_JOB,
)
from orchestration.defs.partitions import (
    client_day_key,
    client_day_partitions,
    day_before,
    days_between,
    partition_tags,
)
from orchestration.export import archive
from orchestration.feeds import FEEDS, Feed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from orchestration.defs.queued_runs import RunQueue

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
    run_id: str = ""


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


@dataclass(frozen=True)
class SubmittedFiles:
    """A files run submitted to the queue: one client-day, the feeds it carries."""

    run_id: str
    client_id: str
    day: dt.date
    feeds: list[Feed]


def resend(
    queue: RunQueue,
    config: ClientsConfig,
    archive_root: Path,
    client_id: str,
    feeds: list[Feed],
    days: list[dt.date],
    log_level: str = QUIET,
) -> list[SubmittedFiles]:
    """Submit one run a day delivering the archived files again, unchanged (the delivery assets
    only); RerunError, and nothing submitted, if a file is missing."""
    archived_files(config, archive_root, client_id, feeds, days)
    return submit_files_runs(
        queue, config, client_id, days, feeds, deliver_only=True, by="resend", log_level=log_level
    )


def rebuild(
    queue: RunQueue,
    config: ClientsConfig,
    client_id: str,
    feeds: list[Feed],
    days: list[dt.date],
    log_level: str = QUIET,
    on_progress: Callable[[str], None] = lambda _: None,
) -> list[SubmittedFiles]:
    """Rebuild the client's rows of the feeds' marts for the days (one run; every other client's
    rows stay as they were) and wait for it (RunFailed naming it if it fails), then submit the
    runs that export, check and deliver its files, one run a day."""
    marts_run = submit_marts(
        queue,
        days[0],
        days[-1],
        by="rebuild",
        feeds=feeds,
        clients=[client_id],
        log_level=log_level,
    )
    (run,) = queue.wait([marts_run], on_progress)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        raise _run_failed(
            f"the marts run for {days[0]}..{days[-1]}",
            _run_events(queue.instance, marts_run),
            marts_run,
        )
    return submit_files_runs(
        queue, config, client_id, days, feeds, deliver_only=False, by="rebuild", log_level=log_level
    )


def submit_marts(
    queue: RunQueue,
    first: dt.date,
    last: dt.date,
    by: str,
    feeds: list[Feed] | None = None,
    clients: list[str] | None = None,
    log_level: str = QUIET,
) -> str:
    """Submit the marts run for first..last (as `build_marts` runs it); its run id."""
    return queue.submit(
        DAILY_MARTS_JOB,
        asset_selection=_marts_selection(queue.asset_keys_in_job(DAILY_MARTS_JOB), feeds),
        # The job runs its steps in the run's own process (jobs.py): no executor config here.
        run_config=run_config(log_level),
        tags=_marts_tags(first, last, by, clients),
    )


def submit_files_runs(
    queue: RunQueue,
    config: ClientsConfig,
    client_id: str,
    days: list[dt.date],
    feeds: list[Feed],
    *,
    deliver_only: bool,
    by: str,
    log_level: str = QUIET,
) -> list[SubmittedFiles]:
    """Submit one files run per client-day, in day order, tagged as the files sensor tags its
    runs (the partition, the client's SFTP host), so the per-host limit holds for them."""
    client = config.clients[client_id]
    assets, checks = client_selection(client, deliver_only=deliver_only, feeds=feeds)
    submitted = []
    for day in days:
        key = client_day_key(client_id, day)
        run_id = queue.submit(
            CLIENT_FILES_JOB,
            asset_selection=assets,
            asset_check_selection=checks,
            run_config=run_config(log_level),
            tags={
                **partition_tags(client_day_partitions(config), key),
                SFTP_HOST_TAG: client.sftp.host,
                STARTED_BY_TAG: f"ods {by}",
            },
        )
        submitted.append(SubmittedFiles(run_id, client_id, day, feeds))
    return submitted


def files_sent(
    instance: dg.DagsterInstance, config: ClientsConfig, submitted: SubmittedFiles
) -> list[FileRun]:
    """What a finished files run sent, one FileRun per feed, from its event log in the
    instance: the delivery's materialisation metadata, or the feed's failure line."""
    run = instance.get_run_by_id(submitted.run_id)
    records = instance.get_records_for_run(
        submitted.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    materialised = _metadata_by_asset(
        m for m in (r.event_log_entry.asset_materialization for r in records) if m is not None
    )
    success = run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    failure = "" if success else _failure_message(_run_events(instance, submitted.run_id))
    return _file_runs(
        config,
        submitted.client_id,
        submitted.day,
        submitted.feeds,
        materialised,
        failure,
        submitted.run_id,
    )


def _marts_selection(
    job_keys: Iterable[dg.AssetKey], feeds: list[Feed] | None
) -> list[dg.AssetKey] | None:
    """The marts job's assets less the marts of the feeds not asked for (None: the whole job):
    another feed's mart rebuilt from changed data would no longer match the files its clients
    were sent."""
    if feeds is None:
        return None
    left_out = {feed.mart for feed in FEEDS.values() if feed not in feeds}
    return [key for key in job_keys if key.path[-1] not in left_out]


def _marts_tags(
    first: dt.date, last: dt.date, by: str, clients: list[str] | None
) -> dict[str, str]:
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        FILES_FOLLOW_TAG: "false",
        STARTED_BY_TAG: f"ods {by}",
        **({CLIENTS_TAG: ",".join(clients)} if clients else {}),
    }


def _run_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    entries = instance.all_logs(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.ENGINE_EVENT,
            dg.DagsterEventType.RUN_FAILURE,
        },
    )
    return [entry.dagster_event for entry in entries if entry.dagster_event is not None]


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
        raise _run_failed("recreating the views", result.all_events, result.run_id)
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
    result = job.execute_in_process(
        instance=instance,
        asset_selection=_marts_selection(job.asset_layer.selected_asset_keys, feeds),
        run_config=run_config(log_level),
        tags=_marts_tags(first, last, by, clients),
        raise_on_error=False,
    )
    if not result.success:
        raise _run_failed(f"the marts run for {first}..{last}", result.all_events, result.run_id)
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
    materialised = _metadata_by_asset(result.asset_materializations_for_node(CLIENT_FILES))
    failure = "" if result.success else _failure_message(result.all_events)
    return _file_runs(config, client_id, day, feeds, materialised, failure, result.run_id)


def _metadata_by_asset(
    materialisations: Iterable[dg.AssetMaterialization],
) -> dict[dg.AssetKey, dict[str, Any]]:
    """Each materialised asset's metadata as plain values (the delivery's `remote_path`, ...)."""
    return {
        m.asset_key: {key: value.value for key, value in m.metadata.items()}
        for m in materialisations
    }


def _file_runs(
    config: ClientsConfig,
    client_id: str,
    day: dt.date,
    feeds: list[Feed],
    materialised: dict[dg.AssetKey, dict[str, Any]],
    failure: str,
    run_id: str,
) -> list[FileRun]:
    """One FileRun per feed of a files run: sent if its delivery was materialised and the
    failure (if any) does not name the feed."""
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
                run_id=run_id,
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


def _run_failed(what: str, events: Iterable[dg.DagsterEvent], run_id: str) -> RunFailed:
    """`<what> failed (<why>); see run <id> in the Dagster UI`: what `ods` prints of a run that
    failed, so the operator can find it."""
    return RunFailed(
        f"{what} failed ({_failure_message(events)}); see run {run_id} in the Dagster UI"
    )


def _failure_message(events: Iterable[dg.DagsterEvent]) -> str:
    """What went wrong in a run, in one line: its first step failure's description or innermost
    error, else an error the engine reported (a run that could not be launched), else its
    failure event's message."""
    engine_error, run_failure = "", ""
    for event in events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data is not None and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error is not None:
                return _innermost(data.error)
        elif event.is_engine_event and event.engine_event_data.error is not None:
            engine_error = engine_error or _innermost(event.engine_event_data.error)
        elif event.is_run_failure and event.message:
            run_failure = run_failure or event.message
    return engine_error or run_failure or "failed"


def _innermost(error: Any) -> str:
    # Dagster wraps what the step raised ("Error occurred while executing op …"): the innermost
    # cause says what went wrong, now that the event log is in a file.
    while error.cause is not None:
        error = error.cause
    return str(error.message).strip().splitlines()[-1]
