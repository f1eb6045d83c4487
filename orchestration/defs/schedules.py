"""The nightly clock, one per time zone that clients use: marts at 03:00, the deadline at 05:00.

"Local" is the client's zone. For each zone, `daily_marts_<zone>` runs at 03:00 there and builds
that zone's yesterday for that zone's clients only (tag `ods/timezone`; the files runs follow),
and `deadline_<zone>` runs at 05:00 there and checks that zone's client-days: the files runs
already checked every file they delivered, so at 05:00 only the client-days with a file missing
get a run, whose check fails (a night where everything arrived launches nothing).

All start RUNNING (Dagster's default is STOPPED): the product's promise is a file by 05:00
every day, and a code location that loads without its schedules would silently break it. Stop
them in the UI (Automation) to pause deliveries, one zone at a time if need be.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.defs.client_files import delivery_key
from orchestration.defs.deadline import DEADLINE_CHECK
from orchestration.defs.jobs import TIMEZONE_TAG
from orchestration.defs.partitions import (
    client_day_key,
    day_before,
    partition_tags,
    zone_slug,
    zones,
)
from orchestration.feeds import FEEDS

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

MARTS_CRON = "0 3 * * *"
DEADLINE_CRON = "0 5 * * *"


def marts_schedule_name(zone: str) -> str:
    return f"daily_marts_{zone_slug(zone)}"


def deadline_schedule_name(zone: str) -> str:
    return f"deadline_{zone_slug(zone)}"


ZoneRunRequests = dg.RunRequest | dg.SkipReason | list[dg.RunRequest]
# What a zone's schedule requests at a tick: (config, zone, the zone's client ids, context).
ZoneTick = Callable[[ClientsConfig, str, list[str], dg.ScheduleEvaluationContext], ZoneRunRequests]


def zone_schedules(
    config: ClientsConfig,
    job: UnresolvedAssetJobDefinition,
    *,
    name: Callable[[str], str],
    cron: str,
    description: Callable[[str, list[str]], str],
    requests: ZoneTick,
) -> list[dg.ScheduleDefinition]:
    """One schedule of `job` per time zone that clients use (`zones`), ticking at `cron` in that
    zone and RUNNING from the start (see above). The nightly marts, the 05:00 deadline and the
    05:30 folder reconciliation differ only in their name, time, description and `requests`."""
    return [
        _zone_schedule(
            job,
            cron,
            zone,
            name(zone),
            description(zone, clients),
            functools.partial(requests, config, zone, clients),
        )
        for zone, clients in zones(config).items()
    ]


def _zone_schedule(
    job: UnresolvedAssetJobDefinition,
    cron: str,
    zone: str,
    name: str,
    description: str,
    tick: Callable[[dg.ScheduleEvaluationContext], ZoneRunRequests],
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone=zone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> ZoneRunRequests:
        return tick(context)

    return _schedule


def daily_marts_schedules(
    config: ClientsConfig, marts_job: UnresolvedAssetJobDefinition
) -> list[dg.ScheduleDefinition]:
    return zone_schedules(
        config,
        marts_job,
        name=marts_schedule_name,
        cron=MARTS_CRON,
        description=lambda zone, clients: (
            f"03:00 {zone}: build yesterday's marts for the {len(clients)} client(s) in this "
            f"time zone ({', '.join(clients[:5])}{', …' if len(clients) > 5 else ''}); their "
            "files runs follow when it succeeds."
        ),
        requests=_marts_request,
    )


def _marts_request(
    config: ClientsConfig, zone: str, clients: list[str], context: dg.ScheduleEvaluationContext
) -> dg.RunRequest | dg.SkipReason:
    day = day_before(context.scheduled_execution_time, zone)
    if day < config.first_day:
        return dg.SkipReason(f"{day} is before first_day {config.first_day}")
    return dg.RunRequest(
        run_key=f"{zone}|{day.isoformat()}",
        partition_key=day.isoformat(),
        tags={TIMEZONE_TAG: zone},
    )


def deadline_schedules(
    config: ClientsConfig,
    job: UnresolvedAssetJobDefinition,
    partitions: dg.MultiPartitionsDefinition,
) -> list[dg.ScheduleDefinition]:
    return zone_schedules(
        config,
        job,
        name=deadline_schedule_name,
        cron=DEADLINE_CRON,
        description=lambda zone, _clients: (
            f"05:00 {zone}: for each client in this time zone whose file for yesterday is "
            "missing, run its delivered_by_0500 check (which fails); delivered files were "
            "checked when they were delivered."
        ),
        requests=functools.partial(_deadline_requests, partitions=partitions),
    )


def _deadline_requests(
    config: ClientsConfig,
    zone: str,
    clients: list[str],
    context: dg.ScheduleEvaluationContext,
    partitions: dg.MultiPartitionsDefinition,
) -> list[dg.RunRequest]:
    day = day_before(context.scheduled_execution_time, zone)
    if day < config.first_day:
        return []
    delivered = {
        feed.name: context.instance.get_materialized_partitions(delivery_key(feed))
        for feed in FEEDS.values()
        if config.subscribers(feed.name)
    }
    requests = []
    for client_id in clients:
        key = client_day_key(client_id, day)
        missing = [
            feed
            for feed in FEEDS.values()
            if feed.name in config.clients[client_id].feeds and str(key) not in delivered[feed.name]
        ]
        if not missing:
            continue
        # Tags, not partition_key: see jobs.deadline_job.
        requests.append(
            dg.RunRequest(
                run_key=f"{zone}|{key}",
                tags=partition_tags(partitions, key),
                asset_check_keys=[
                    dg.AssetCheckKey(delivery_key(feed), DEADLINE_CHECK) for feed in missing
                ],
            )
        )
    return requests
