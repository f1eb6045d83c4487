"""The 05:00 promise: a partitioned check per feed that a client-day's file has been delivered.

`delivered_by_0500` passes when the delivery asset has a materialisation for (client, day), and
records when it happened and whether that was before 05:00 local on the morning after the day.
It fails (severity ERROR) naming client, feed, day and the expected file otherwise. The 05:00
schedule runs it for yesterday for every subscribed client; it also runs at the end of every files
run (checks follow their asset), so a late re-delivery turns the partition's check green.

Why a check and not only a FreshnessPolicy: a freshness policy looks at the asset's latest
materialisation, not per partition (dagster-io/dagster discussion #34023), so one client's
delivery would make the asset look fresh while another client's file is missing.
"""

import datetime as dt
import warnings

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.days import file_name, local_midnight
from orchestration.defs.partitions import client_and_day
from orchestration.feeds import Feed

DEADLINE_CHECK = "delivered_by_0500"
DEADLINE = dt.time(5, 0)


def deadline_of(day: dt.date, timezone: str) -> dt.datetime:
    """05:00 local on the morning after activity day `day` (aware)."""
    return local_midnight(day + dt.timedelta(days=1), timezone).replace(
        hour=DEADLINE.hour, minute=DEADLINE.minute
    )


def build_deadline_check(
    feed: Feed,
    config: ClientsConfig,
    delivery_key: dg.AssetKey,
    partitions: dg.MultiPartitionsDefinition,
) -> dg.AssetChecksDefinition:
    # Partitioned asset checks are a preview in 1.13 (the warning says so on every load);
    # tests/test_operations_* pin the behaviour this relies on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)

        @dg.asset_check(
            asset=delivery_key,
            name=DEADLINE_CHECK,
            partitions_def=partitions,
            description=(
                f"The client's {feed.prefix} file for the day is delivered (due 05:00 local "
                "the morning after)."
            ),
        )
        def delivered_by_0500(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            client_id, day = client_and_day(context.partition_key)
            client = config.clients[client_id]
            expected = file_name(feed.prefix, day, client.file_date)
            deadline = deadline_of(day, config.timezone_of(client_id))
            facts = {
                "client": client_id,
                "feed": feed.name,
                "day": day.isoformat(),
                "expected_file": expected,
                "deadline": deadline.isoformat(),
            }
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=delivery_key, asset_partitions=[str(context.partition_key)]
                ),
                limit=1,
            ).records
            if not records:
                return dg.AssetCheckResult(
                    passed=False,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=(
                        f"client {client_id}: {feed.prefix} file {expected} for {day} is not "
                        f"delivered (due {deadline:%Y-%m-%d %H:%M %Z}); see the "
                        f"{feed.name}_delivery partition {client_id}|{day} for the failed run"
                    ),
                    metadata=facts,
                )
            delivered_at = dt.datetime.fromtimestamp(records[0].timestamp, deadline.tzinfo)
            on_time = delivered_at <= deadline
            return dg.AssetCheckResult(
                passed=True,
                description=(
                    f"client {client_id}: {expected} delivered at {delivered_at:%Y-%m-%d %H:%M}"
                    + ("" if on_time else ", after the deadline")
                ),
                metadata={**facts, "delivered_at": delivered_at.isoformat(), "on_time": on_time},
            )

    return delivered_by_0500
