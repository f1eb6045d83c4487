"""Jobs: the daily marts for a day (or a range, in one run), each feed's files per client-day, and
each feed's 05:00 deadline check; and the run tags they share."""

from __future__ import annotations

import dagster as dg

from orchestration.feeds import Feed

DAILY_MARTS_JOB = "daily_marts_job"
VIEWS_JOB = "moodle_views_job"

# Set on every files run the sensor requests; dagster.yaml limits concurrent runs per value
# (`concurrency.runs.tag_concurrency_limits`), so one slow server is not opened 50 times at once.
SFTP_HOST_TAG = "ods/sftp_host"
# A marts run tagged "false" is not followed by files runs: `ods rebuild` and the demo export
# and deliver the files themselves.
FILES_FOLLOW_TAG = "ods/files_follow"
# The marts run a files run was requested for.
MARTS_RUN_TAG = "ods/marts_run"


def files_job_name(feed: Feed) -> str:
    return f"{feed.name}_files_job"


def deadline_job_name(feed: Feed) -> str:
    return f"{feed.name}_deadline_job"


def daily_marts_job(assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_MARTS_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description=(
            "Refresh the Moodle union views and views, then build the feed marts for a day "
            "(or a range of days in one run). Files runs follow for every subscribed client."
        ),
    )


def views_job(assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """The union views and dbt's staging and intermediate views alone, on demand (`ods views`):
    after a replica was reloaded with `drop schema … cascade`, which drops every view built on it.
    The marts run rebuilds them too, so the next night heals without it."""
    return dg.define_asset_job(
        VIEWS_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description=(
            "Recreate the Moodle union views and the dbt staging and intermediate views over the "
            "replicas (idempotent): after a replica reload dropped them, or to check a new client."
        ),
    )


def files_job(feed: Feed, assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """One run per client-day, so one client's broken server never blocks another's files.
    The selection includes the assets' checks, the 05:00 deadline check among them."""
    return dg.define_asset_job(
        files_job_name(feed),
        selection=dg.AssetSelection.assets(*assets),
        description=(
            f"Export, check and deliver the {feed.prefix} file of one client for one day. "
            f"Select only {feed.name}_delivery to re-send the archived file unchanged."
        ),
    )


def deadline_job(feed: Feed, check: dg.AssetChecksDefinition) -> dg.UnresolvedAssetJobDefinition:
    """Runs only the deadline check. A job of checks alone has no partitions definition to
    validate a partition key against (1.13.27), so its runs name the partition by tags
    (`partition_tags`); the check reads the partition from them."""
    return dg.define_asset_job(
        deadline_job_name(feed),
        selection=dg.AssetSelection.checks(check),
        description=f"Check that each subscribed client's {feed.prefix} file for a day is delivered.",
    )
