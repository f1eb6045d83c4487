"""The 05:00 promise: a partitioned check per feed that a client-day's file was delivered on time.

`delivered_by_0500` passes when the client's file for day D was first delivered by 05:00 in the
client's own time zone on the morning after D. It fails (severity ERROR) when there is no
delivery yet, and when the first delivery came after 05:00 (late is a failure: nobody would
otherwise be told); the description names client, feed, day, file, deadline and, for a late
file, when it arrived. A re-delivery after the deadline of a file that was on time stays on time:
the first delivery decides.

It runs at the end of every files run (checks follow their asset), and at 05:00 in each time zone
for that zone's client-days that have no delivery at all (`deadline_schedule`): a night in which
every file arrived launches no run at 05:00.

Why a check and not only a FreshnessPolicy: a freshness policy looks at the asset's latest
materialisation, not per partition (dagster-io/dagster discussion #34023), so one client's
delivery would make the asset look fresh while another client's file is missing.
"""

import datetime as dt
import warnings
from typing import Any

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


def deadline_verdict(
    first_delivered_at: dt.datetime | None, deadline: dt.datetime
) -> tuple[bool, str]:
    """(passed, what happened): missing and late both fail; on time is at or before 05:00."""
    if first_delivered_at is None:
        return False, "missing"
    # As instants: aware datetimes sharing a tzinfo compare by wall-clock time.
    if first_delivered_at.astimezone(dt.UTC) <= deadline.astimezone(dt.UTC):
        return True, "on time"
    return False, "late"


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
                f"The client's {feed.prefix} file for the day was delivered by 05:00 in the "
                "client's time zone the morning after; missing or late fails."
            ),
        )
        def delivered_by_0500(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
            client_id, day = client_and_day(context.partition_key)
            client = config.clients[client_id]
            expected = file_name(feed.prefix, day, client.file_date)
            timezone = config.timezone_of(client_id)
            deadline = deadline_of(day, timezone)
            facts = {
                "client": client_id,
                "feed": feed.name,
                "day": day.isoformat(),
                "timezone": timezone,
                "expected_file": expected,
                "deadline": deadline.isoformat(),
            }
            if feed.name not in client.feeds:
                return dg.AssetCheckResult(
                    passed=True,
                    description=f"client {client_id} does not take the {feed.name} feed",
                    metadata={**facts, "subscribed": False},
                )
            first = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=delivery_key, asset_partitions=[str(context.partition_key)]
                ),
                limit=1,
                ascending=True,
            ).records
            delivered_at = (
                dt.datetime.fromtimestamp(first[0].timestamp, deadline.tzinfo) if first else None
            )
            passed, state = deadline_verdict(delivered_at, deadline)
            due = f"due {deadline:%Y-%m-%d %H:%M %Z}"
            if delivered_at is None:
                description = (
                    f"client {client_id}: {feed.prefix} file {expected} for {day} is not "
                    f"delivered ({due}); see the {feed.name}_delivery partition "
                    f"{client_id}|{day} for the failed or missing run"
                )
            else:
                description = (
                    f"client {client_id}: {expected} for {day} delivered at "
                    f"{delivered_at:%Y-%m-%d %H:%M:%S %Z}, "
                    + ("on time" if passed else f"late ({due})")
                )
            metadata: dict[str, Any] = {**facts, "state": state}
            if delivered_at is not None:
                metadata |= {"delivered_at": delivered_at.isoformat(), "on_time": passed}
            return dg.AssetCheckResult(
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=description,
                metadata=metadata,
            )

    return delivered_by_0500
