"""Partitions: calendar dates for the marts, date × client for the files; and time zones.

A partition key is a calendar date D; for a client it means D in the client's own time zone (a
London client's 2026-10-25 is 25 hours long, a Sydney client's 2026-10-25 ends eleven hours
earlier). Clients live in several zones, and Dagster's daily partitions have one: ours is the
zone where days end first, UTC+14 (`Etc/GMT-14`), so date D's partition exists as soon as D is
over anywhere. It does not mean D is over for every client: a zone's own 03:00 schedule builds
its clients' D once D is over there, and the marts step refuses to build a client's day that is
not over in the client's zone (`day_is_over`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.clients import ClientsConfig

# The zone where a calendar day ends first (Line Islands, UTC+14; POSIX names have the sign
# reversed). A date's partition appears when the date is over there.
EARLIEST_ZONE = "Etc/GMT-14"


def daily_partitions(config: ClientsConfig) -> dg.DailyPartitionsDefinition:
    """One partition per calendar date from `first_day`, existing once the date is over in the
    earliest time zone (each client's own zone decides when its day is built)."""
    return dg.DailyPartitionsDefinition(
        start_date=config.first_day.isoformat(), timezone=EARLIEST_ZONE
    )


def client_day_partitions(config: ClientsConfig) -> dg.MultiPartitionsDefinition:
    """Date × every client: the partitions of every feed's file and delivery. A client that does
    not take a feed never materialises that feed's partitions. Always build keys with
    `client_day_key`: the key string is ordered by dimension name ("acme|2026-03-09")."""
    return dg.MultiPartitionsDefinition(
        {
            "date": daily_partitions(config),
            "client": dg.StaticPartitionsDefinition(sorted(config.clients)),
        }
    )


def zones(config: ClientsConfig) -> dict[str, list[str]]:
    """Time zone → its clients (sorted), for every zone that clients use."""
    by_zone: dict[str, list[str]] = {}
    for client_id in sorted(config.clients):
        by_zone.setdefault(config.timezone_of(client_id), []).append(client_id)
    return dict(sorted(by_zone.items()))


def zone_slug(zone: str) -> str:
    """`America/Los_Angeles` -> `america_los_angeles`: for schedule names."""
    return re.sub(r"[^a-z0-9]+", "_", zone.lower()).strip("_")


def day_is_over(day: dt.date, timezone: str, now: dt.datetime) -> bool:
    """Whether local day `day` has ended in `timezone` at `now` (aware)."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(timezone))
    return now >= end


def clients_whose_day_is_not_over(
    config: ClientsConfig, client_ids: Iterable[str], day: dt.date, now: dt.datetime
) -> list[str]:
    return [c for c in client_ids if not day_is_over(day, config.timezone_of(c), now)]


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
