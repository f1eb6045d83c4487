"""Assembling the code location: everything the UI shows, built from the clients file."""

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, get_asset_key_for_model

from orchestration.clients import load_clients
from orchestration.defs.dbt_models import build_dbt_assets, dbt_project, moodle_source_tables
from orchestration.defs.deadline import build_deadline_check
from orchestration.defs.feed_delivery import build_delivery_asset
from orchestration.defs.feed_files import build_file_asset
from orchestration.defs.jobs import daily_marts_job, deadline_job, files_job, views_job
from orchestration.defs.moodle_sources import build_union_views_asset
from orchestration.defs.partitions import daily_partitions, feed_partitions
from orchestration.defs.resources import ArchiveResource, WarehouseResource, archive_root
from orchestration.defs.schedules import daily_marts_schedule, deadline_schedule
from orchestration.defs.sensors import files_after_marts_sensor
from orchestration.feeds import FEEDS


def build_definitions() -> dg.Definitions:
    """Load and validate the clients file, then build every asset, job and resource from it."""
    config = load_clients()
    daily = daily_partitions(config)
    union_views = build_union_views_asset(config, moodle_source_tables())
    moodle_views, feed_marts = build_dbt_assets(daily, config.lookback_days)
    marts_job = daily_marts_job([union_views, moodle_views, feed_marts])
    feed_assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    files_jobs, deadline_jobs = [], []
    schedules = [daily_marts_schedule(config, marts_job)]
    for feed in FEEDS.values():
        if not config.subscribers(feed.name):
            continue
        partitions = feed_partitions(config, feed.name)
        mart_key = get_asset_key_for_model([feed_marts], feed.mart)
        file_asset = build_file_asset(feed, config, mart_key, partitions)
        delivery = build_delivery_asset(feed, config, file_asset, partitions)
        deadline = build_deadline_check(feed, config, delivery.key, partitions)
        feed_assets += [file_asset, delivery]
        checks.append(deadline)
        files_jobs.append(files_job(feed, [file_asset, delivery]))
        deadline_jobs.append(deadline_job(feed, deadline))
        schedules.append(deadline_schedule(feed, config, deadline_jobs[-1], partitions))
    return dg.Definitions(
        assets=[union_views, moodle_views, feed_marts, *feed_assets],
        asset_checks=checks,
        jobs=[marts_job, views_job([union_views, moodle_views]), *files_jobs, *deadline_jobs],
        schedules=schedules,
        sensors=[files_after_marts_sensor(config, marts_job, files_jobs)],
        resources={
            "dbt": DbtCliResource(
                project_dir=dbt_project,
                # The venv's bin folder is not always on PATH (make, cron, tests).
                dbt_executable=str(Path(sys.executable).with_name("dbt")),
            ),
            "warehouse_db": WarehouseResource(),
            "archive_dir": ArchiveResource(root=str(archive_root(config))),
        },
    )
