"""Assembling the code location: everything the UI shows, built from the clients file."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from orchestration.clients import load_clients
from orchestration.defs.dbt_models import build_dbt_assets, dbt_project, moodle_source_tables
from orchestration.defs.feed_files import build_feed_assets
from orchestration.defs.jobs import daily_marts_job, files_job
from orchestration.defs.moodle_sources import build_union_views_asset
from orchestration.defs.partitions import daily_partitions
from orchestration.defs.resources import ArchiveResource, WarehouseResource
from orchestration.export.archive import default_archive_root
from orchestration.feeds import FEEDS


def build_definitions() -> dg.Definitions:
    """Load and validate the clients file, then build every asset, job and resource from it."""
    config = load_clients()
    daily = daily_partitions(config)
    union_views = build_union_views_asset(config, moodle_source_tables())
    moodle_views, feed_marts = build_dbt_assets(daily, config.lookback_days)
    jobs = [daily_marts_job([union_views, moodle_views, feed_marts])]
    feed_assets: list[dg.AssetsDefinition] = []
    for feed in FEEDS.values():
        if not config.subscribers(feed.name):
            continue
        assets = build_feed_assets(feed, config, get_asset_key_for_model([feed_marts], feed.mart))
        feed_assets += assets
        jobs.append(files_job(feed, assets))
    return dg.Definitions(
        assets=[union_views, moodle_views, feed_marts, *feed_assets],
        jobs=jobs,
        resources={
            "dbt": DbtCliResource(
                project_dir=dbt_project,
                # The venv's bin folder is not always on PATH (make, cron, tests).
                dbt_executable=str(Path(sys.executable).with_name("dbt")),
            ),
            "warehouse_db": WarehouseResource(),
            "archive_dir": ArchiveResource(root=str(config.archive_dir or default_archive_root())),
        },
    )
