"""The nightly clock, in the clients file's time zone: marts at 03:00, the deadline check at 05:00.

Both start RUNNING (Dagster's default is STOPPED): the product's promise is a file by 05:00
every day, and a code location that loads without its schedule would silently break it. Stop
them in the UI (Automation) to pause deliveries.
"""

from typing import TYPE_CHECKING

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.defs.partitions import client_day_key, day_before, partition_tags
from orchestration.feeds import Feed

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

MARTS_CRON = "0 3 * * *"
DEADLINE_CRON = "0 5 * * *"


def daily_marts_schedule(
    config: ClientsConfig, marts_job: "UnresolvedAssetJobDefinition"
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_marts_schedule",
        cron_schedule=MARTS_CRON,
        execution_timezone=config.timezone,
        job=marts_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="03:00 local: build yesterday's marts; the files runs follow when it succeeds.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        day = day_before(context.scheduled_execution_time, config.timezone)
        if day < config.first_day:
            return dg.SkipReason(f"{day} is before first_day {config.first_day}")
        return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())

    return _schedule


def deadline_schedule(
    feed: Feed,
    config: ClientsConfig,
    job: "UnresolvedAssetJobDefinition",
    partitions: dg.MultiPartitionsDefinition,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{feed.name}_deadline_schedule",
        cron_schedule=DEADLINE_CRON,
        execution_timezone=config.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"05:00 local: check that every subscribed client's {feed.prefix} file for "
            "yesterday is delivered."
        ),
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        day = day_before(context.scheduled_execution_time, config.timezone)
        if day < config.first_day:
            return []
        requests = []
        for client_id in config.subscribers(feed.name):
            key = client_day_key(client_id, day)
            # Tags, not partition_key: see jobs.deadline_job.
            requests.append(dg.RunRequest(run_key=str(key), tags=partition_tags(partitions, key)))
        return requests

    return _schedule
