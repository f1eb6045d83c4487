"""Daily partitions for the marts; date × client partitions for each feed's files."""

from __future__ import annotations

import dagster as dg

from orchestration.clients import ClientsConfig


def daily_partitions(config: ClientsConfig) -> dg.DailyPartitionsDefinition:
    """One partition per local calendar day, in the file's default time zone."""
    return dg.DailyPartitionsDefinition(
        start_date=config.first_day.isoformat(), timezone=config.timezone
    )


def feed_partitions(config: ClientsConfig, feed: str) -> dg.MultiPartitionsDefinition:
    """Day × the clients subscribed to `feed`. Always build keys with MultiPartitionKey: the key
    string is ordered by dimension name ("acme|2026-03-09"), not as declared."""
    return dg.MultiPartitionsDefinition(
        {
            "date": daily_partitions(config),
            "client": dg.StaticPartitionsDefinition(config.subscribers(feed)),
        }
    )
