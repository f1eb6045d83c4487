"""Jobs: the daily marts for a day (or a range, in one run), one files run per client-day carrying
all of the client's feeds, the views on demand, and the 05:00 deadline check; and the run tags
they share."""

from __future__ import annotations

import dagster as dg

DAILY_MARTS_JOB = "daily_marts_job"
VIEWS_JOB = "moodle_views_job"
CLIENT_FILES_JOB = "client_files_job"
DEADLINE_JOB = "deadline_job"
# The pool of every step of a marts run (union views, dbt views, marts): with the instance's
# `concurrency.pools.default_limit: 1`, one at a time, whichever runs they belong to. Concurrent
# dbt runs of one incremental model collide (dagster-io/dagster#17778), and two zones' runs would
# rebuild the views under each other (`relation ... does not exist`, seen in the benchmark).
MARTS_POOL = "dbt_marts"

# A marts run for one time zone's clients (the zone's 03:00 schedule sets it), or for the clients
# listed (comma-separated; `ods rebuild` sets it). Without either, every client, and every
# client's day must be over.
TIMEZONE_TAG = "ods/timezone"
CLIENTS_TAG = "ods/clients"
# Set on every files run the sensor requests; dagster.yaml limits concurrent runs per value
# (`concurrency.runs.tag_concurrency_limits`), so one slow server is not opened 50 times at once.
SFTP_HOST_TAG = "ods/sftp_host"
# A marts run tagged "false" is not followed by files runs: `ods rebuild` and the demo export
# and deliver the files themselves.
FILES_FOLLOW_TAG = "ods/files_follow"
# The marts run a files run was requested for.
MARTS_RUN_TAG = "ods/marts_run"


def in_process_job(
    name: str, selection: dg.AssetSelection, *, description: str
) -> dg.UnresolvedAssetJobDefinition:
    """An asset job whose steps run one after another in the run's own process (Dagster's
    in-process executor), as every job of this product does: a step is a SQL statement, a dbt
    subprocess or one client's files, and a process of its own per step costs 5-10 s of start-up,
    more than most steps' work (measured: benchmarks/nightly_at_scale.py)."""
    return dg.define_asset_job(
        name, selection=selection, executor_def=dg.in_process_executor, description=description
    )


def daily_marts_job(assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """Its three steps (union views, dbt views, marts) run in the run's own process
    (`in_process_job`): their start-up in processes of their own was a third of a zone's marts
    run. The pool `dbt_marts` still holds: Dagster's in-process executor claims its steps' pool
    slots too."""
    return in_process_job(
        DAILY_MARTS_JOB,
        dg.AssetSelection.assets(*assets),
        description=(
            "Refresh the Moodle union views and views, then build the feed marts for a day "
            f"(or a range of days in one run): for one time zone's clients with the tag "
            f"{TIMEZONE_TAG} (each zone's 03:00 schedule sets it), for the clients in "
            f"{CLIENTS_TAG}, or for every client. A files run follows for each of its clients "
            "and days."
        ),
    )


def views_job(assets: list[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """The union views and dbt's staging and intermediate views alone, on demand (`ods views`):
    after a replica was reloaded with `drop schema … cascade`, which drops every view built on it.
    The marts run rebuilds them too, so the next night heals without it."""
    return in_process_job(
        VIEWS_JOB,
        dg.AssetSelection.assets(*assets),
        description=(
            "Recreate the Moodle union views and the dbt staging and intermediate views over the "
            "replicas (idempotent): after a replica reload dropped them, or to check a new client."
        ),
    )


def client_files_job(
    files: dg.AssetsDefinition, deadline_checks: list[dg.AssetChecksDefinition]
) -> dg.UnresolvedAssetJobDefinition:
    """One run per client-day with every feed the client takes: one process (the in-process
    executor: a step's own process would cost more than its work), one SSH session, one
    retention pass. One client's broken server fails only that client's runs."""
    return in_process_job(
        CLIENT_FILES_JOB,
        dg.AssetSelection.assets(files) | dg.AssetSelection.checks(*deadline_checks),
        description=(
            "Export, check and deliver one client's files for one day, all its feeds over one "
            "SFTP session. Select only a feed's assets to re-run that feed; select only "
            "<feed>_delivery to re-send the archived file unchanged."
        ),
    )


def deadline_job(checks: list[dg.AssetChecksDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """Runs only the deadline checks. A job of checks alone has no partitions definition to
    validate a partition key against (1.13.27), so its runs name the partition by tags
    (`partition_tags`); the check reads the partition from them."""
    return in_process_job(
        DEADLINE_JOB,
        dg.AssetSelection.checks(*checks),
        description="Check that a client's files for a day were delivered by 05:00 local.",
    )
