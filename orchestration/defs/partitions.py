"""Daily partitions for the marts; date × client partitions for each feed's files."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.clients import ClientsConfig


def daily_partitions(config: ClientsConfig) -> dg.DailyPartitionsDefinition:
    """One partition per local calendar day, in the file's default time zone."""
    return dg.DailyPartitionsDefinition(
        start_date=config.first_day.isoformat(), timezone=config.timezone
    )


def feed_partitions(config: ClientsConfig, feed: str) -> dg.MultiPartitionsDefinition:
    """Day × the clients subscribed to `feed`. Always build keys with `client_day_key`: the key
    string is ordered by dimension name ("acme|2026-03-09"), not as declared."""
    return dg.MultiPartitionsDefinition(
        {
            "date": daily_partitions(config),
            "client": dg.StaticPartitionsDefinition(config.subscribers(feed)),
        }
    )


def client_day_key(client_id: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day.isoformat(), "client": client_id})


def client_and_day(partition_key: str) -> tuple[str, dt.date]:
    """(client id, activity day) of a date × client partition key."""
    if not isinstance(partition_key, dg.MultiPartitionKey):
        client_id, day = partition_key.split("|")  # the string form: "client|date"
        return client_id, dt.date.fromisoformat(day)
    by_dimension = partition_key.keys_by_dimension
    return by_dimension["client"], dt.date.fromisoformat(by_dimension["date"])


def partition_tags(
    partitions: dg.MultiPartitionsDefinition, key: dg.MultiPartitionKey
) -> dict[str, str]:
    """The run tags that make a run belong to one date × client partition."""
    return dict(partitions.get_tags_for_partition_key(str(key)))


def day_before(moment: dt.datetime, timezone: str) -> dt.date:
    """The local calendar day before the one `moment` falls in: what a nightly run builds."""
    return moment.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from `first` through `last`, inclusive."""
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
