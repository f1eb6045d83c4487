"""Files follow marts: when a marts run succeeds, one files run per (client, day) it built.

Whatever started the marts run (a zone's 03:00 schedule, an operator's run or backfill of a range
in the UI, `ods rebuild`), its days come from the run's partition tag or its partition range tags
and its clients from its `ods/timezone` or `ods/clients` tag (every client without either). Each
files run is one client-day with every feed the client takes, so one client's broken server fails
only that client's runs; each carries `ods/sftp_host` so dagster.yaml can cap concurrent runs per
server. The run key includes the marts run, so a marts run is followed exactly once and a later
rebuild of the day is followed again.
"""

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from orchestration.clients import ClientsConfig
from orchestration.defs.client_files import client_selection
from orchestration.defs.jobs import (
    CLIENT_FILES_JOB,
    FILES_FOLLOW_TAG,
    MARTS_RUN_TAG,
    SFTP_HOST_TAG,
)
from orchestration.defs.partitions import client_day_key, days_between
from orchestration.defs.run_scope import clients_of_run

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def days_of_run(tags: Mapping[str, str]) -> list[dt.date]:
    """The days a daily-partitioned run built: its partition, or its partition range."""
    if PARTITION_NAME_TAG in tags:
        return [dt.date.fromisoformat(tags[PARTITION_NAME_TAG])]
    first, last = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if first and last:
        return days_between(dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    return []


def files_run_requests(
    config: ClientsConfig, days: list[dt.date], client_ids: list[str], marts_run_id: str
) -> list[dg.RunRequest]:
    """Day by day, one request per client: all the feeds it takes, in one run."""
    requests = []
    for day in days:
        for client_id in client_ids:
            key = client_day_key(client_id, day)
            assets, checks = client_selection(config.clients[client_id])
            requests.append(
                dg.RunRequest(
                    job_name=CLIENT_FILES_JOB,
                    partition_key=key,
                    run_key=f"{marts_run_id}:{key}",
                    asset_selection=assets,
                    asset_check_keys=checks,
                    tags={
                        SFTP_HOST_TAG: config.clients[client_id].sftp.host,
                        MARTS_RUN_TAG: marts_run_id,
                    },
                )
            )
    return requests


def files_after_marts_sensor(
    config: ClientsConfig,
    marts_job: "UnresolvedAssetJobDefinition",
    files_job: "UnresolvedAssetJobDefinition",
) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        name="files_after_marts_sensor",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[marts_job],
        request_jobs=[files_job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        # The daemon's default, 30 s, was a zone's longest wait between its marts run ending and
        # its first files run (the night benchmark); an evaluation with nothing new is cheap.
        minimum_interval_seconds=5,
        description=(
            "When a marts run succeeds, request one files run per client and day it built, "
            "carrying all the client's feeds."
        ),
    )
    def _sensor(context: dg.RunStatusSensorContext) -> list[dg.RunRequest] | dg.SkipReason:
        run = context.dagster_run
        if run.tags.get(FILES_FOLLOW_TAG) == "false":
            return dg.SkipReason(f"marts run {run.run_id} is tagged {FILES_FOLLOW_TAG}=false")
        days = days_of_run(run.tags)
        if not days:
            return dg.SkipReason(f"marts run {run.run_id} has no partition or partition range")
        return files_run_requests(config, days, clients_of_run(config, run.tags), run.run_id)

    return _sensor
