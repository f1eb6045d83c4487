"""Jobs: the daily marts for a day (or a range, in one run), and each feed's files per client-day."""

from __future__ import annotations

import dagster as dg

from orchestration.feeds import Feed

DAILY_MARTS_JOB = "daily_marts_job"


def files_job_name(feed: Feed) -> str:
    return f"{feed.name}_files_job"


def daily_marts_job(assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_MARTS_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description="Refresh the Moodle union views and views, then build the feed marts for a day.",
    )


def files_job(feed: Feed, assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """One run per client-day, so one client's broken server never blocks another's files."""
    return dg.define_asset_job(
        files_job_name(feed),
        selection=dg.AssetSelection.assets(*assets),
        description=f"Export and deliver the {feed.prefix} file of one client for one day.",
    )
