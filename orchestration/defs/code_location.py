"""Assembling the code location: everything the UI shows, built from the clients file."""

import os

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.clients import load_clients
from orchestration.defs.alerts import alert_channels_from_env, alert_sensors
from orchestration.defs.client_files import (
    build_client_files_asset,
    delivery_key,
    offered_feeds,
)
from orchestration.defs.dbt_cli import FORKED_DBT, OdsDbtCliResource
from orchestration.defs.dbt_models import build_dbt_assets, dbt_project, moodle_source_tables
from orchestration.defs.deadline import build_deadline_check
from orchestration.defs.jobs import client_files_job, daily_marts_job, deadline_job, views_job
from orchestration.defs.moodle_sources import build_union_views_asset
from orchestration.defs.partitions import client_day_partitions, daily_partitions
from orchestration.defs.reconciliation import (
    build_reconciliation_asset,
    reconciliation_job,
    reconciliation_schedules,
)
from orchestration.defs.resources import (
    ArchiveResource,
    SftpSecrets,
    WarehouseResource,
    archive_root,
)
from orchestration.defs.schedules import daily_marts_schedules, deadline_schedules
from orchestration.defs.sensors import files_after_marts_sensor
from orchestration.paths import venv_bin


def build_definitions() -> dg.Definitions:
    """Load and validate the clients file, then build every asset, job and resource from it."""
    config = load_clients()
    daily = daily_partitions(config)
    client_days = client_day_partitions(config)
    union_views = build_union_views_asset(config, moodle_source_tables())
    moodle_views, feed_marts = build_dbt_assets(config, daily)
    marts_job = daily_marts_job([union_views, moodle_views, feed_marts])
    feeds = offered_feeds(config)
    files = build_client_files_asset(
        config,
        {feed.name: get_asset_key_for_model([feed_marts], feed.mart) for feed in feeds},
        client_days,
    )
    checks = [build_deadline_check(feed, config, delivery_key(feed), client_days) for feed in feeds]
    files_job = client_files_job(files, checks)
    checks_job = deadline_job(checks)
    reconciliation = build_reconciliation_asset(config)
    folders_job = reconciliation_job(reconciliation)
    return dg.Definitions(
        assets=[union_views, moodle_views, feed_marts, files, reconciliation],
        asset_checks=checks,
        jobs=[
            marts_job,
            views_job([union_views, moodle_views]),
            files_job,
            checks_job,
            folders_job,
        ],
        schedules=[
            *daily_marts_schedules(config, marts_job),
            *deadline_schedules(config, checks_job, client_days),
            *reconciliation_schedules(config, folders_job),
        ],
        sensors=[
            files_after_marts_sensor(config, marts_job, files_job),
            *alert_sensors(config, files_job, checks_job),
        ],
        resources={
            "dbt": OdsDbtCliResource(
                project_dir=os.fspath(dbt_project.project_dir),
                profiles_dir=os.fspath(dbt_project.project_dir),
                # The venv's bin folder is not always on PATH (make, cron, tests).
                dbt_executable=str(venv_bin(FORKED_DBT)),
            ),
            "warehouse_db": WarehouseResource.from_environment(),
            "archive_dir": ArchiveResource(root=str(archive_root(config))),
            # The variables the clients file names, by name: values read when a run starts.
            "sftp_secrets": SftpSecrets.from_clients(config),
            "alert_channels": alert_channels_from_env(),
        },
    )
