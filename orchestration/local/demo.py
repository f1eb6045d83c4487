"""The local demo: synthetic Moodle sites for the clients file, then a real run through Dagster.

Runs go through the Dagster instance in `.ods/dagster` (DAGSTER_HOME), so `dagster dev` shows the
same run history, materialisations and metadata afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from orchestration.clients import ClientsConfig, load_clients
from orchestration.moodle.synthetic import SiteSpec, SiteSummary, generate_site
from orchestration.paths import ods_home

# Moodle release of each demo site: one before the 4.3 SCORM table change, two after it.
DEMO_RELEASES = {"acme": "4.2", "globex": "4.5", "initech": "5.0"}
DEFAULT_RELEASE = "4.3"
HISTORY_DAYS = 7
# Dagster's console logger prints every event at DEBUG; the demo shows warnings and a summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def generate_demo_sites(
    conn: psycopg.Connection, config: ClientsConfig, first: dt.date, last: dt.date, learners: int
) -> list[SiteSummary]:
    """One synthetic site per client, with activity from a week before `first` through `last`."""
    start = first - dt.timedelta(days=HISTORY_DAYS)
    summaries = []
    for seed, (client_id, client) in enumerate(sorted(config.clients.items()), start=1):
        spec = SiteSpec(
            schema=client.moodle_schema,
            release=DEMO_RELEASES.get(client_id, DEFAULT_RELEASE),
            prefix=client.table_prefix,
            seed=seed,
            learners=learners,
            start=start,
            days=(last - start).days + 1,
            timezone=config.timezone_of(client_id),
        )
        summaries.append(generate_site(conn, spec))
    return summaries


def use_demo_dagster_home() -> None:
    home = ods_home() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").touch()
    os.environ.setdefault("DAGSTER_HOME", str(home))


@dataclass(frozen=True)
class ClientDayRun:
    feed: str
    client_id: str
    day: dt.date
    success: bool
    message: str


def days_between(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    for offset in range((last - first).days + 1):
        yield first + dt.timedelta(days=offset)


def run_days(first: dt.date, last: dt.date) -> list[ClientDayRun]:
    """Build the marts for first..last in one run, then each subscribed client's files per day."""
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from orchestration.defs.code_location import build_definitions
    from orchestration.defs.jobs import DAILY_MARTS_JOB, files_job_name
    from orchestration.feeds import FEEDS

    use_demo_dagster_home()
    defs = build_definitions()
    instance = dg.DagsterInstance.get()
    config = load_clients()
    marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
        instance=instance,
        run_config=QUIET,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
    )
    if not marts.success:
        raise RuntimeError("the daily marts run failed; see the Dagster UI for the failed step")
    runs = []
    for feed in FEEDS.values():
        clients = config.subscribers(feed.name)
        if not clients:
            continue
        job = defs.resolve_job_def(files_job_name(feed))
        for day in days_between(first, last):
            for client_id in clients:
                key = dg.MultiPartitionKey({"date": day.isoformat(), "client": client_id})
                result = job.execute_in_process(
                    instance=instance, partition_key=key, run_config=QUIET, raise_on_error=False
                )
                message = "" if result.success else _failure_message(result)
                runs.append(ClientDayRun(feed.name, client_id, day, result.success, message))
    return runs


def _failure_message(result: object) -> str:
    for event in result.all_events:  # type: ignore[attr-defined]
        if event.is_step_failure and event.step_failure_data.error:
            return event.step_failure_data.error.message.strip().splitlines()[-1]
    return "failed"
