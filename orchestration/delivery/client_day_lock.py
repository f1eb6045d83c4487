"""One delivery per client-day at a time, across every process that delivers.

A nightly files run, an operator's `ods resend` and a UI re-run can all deliver the same
client-day at once: `ods` runs in its own process outside Dagster's run queue, and runs launched
on other machines share nothing but the warehouse. So the lock is a PostgreSQL advisory lock in
the warehouse, held on its own connection for as long as the delivery (upload, rename, retention,
ledger) takes. A second delivery of the same client-day waits for it, up to `wait_seconds`, then
fails with an error naming who holds it. The lock goes with the connection, so a process that
dies cannot leave it held.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

APPLICATION_NAME_LIMIT = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1 bytes.


class DeliveryBusy(Exception):
    """Another delivery of the same client-day held the lock for longer than we may wait."""


def lock_key(client_id: str, day: dt.date) -> int:
    """A stable signed 64-bit key for (client, day), the same in every process and release
    (Python's `hash` is salted per process; PostgreSQL's `hashtext` may change between majors)."""
    digest = hashlib.sha256(f"ods delivery {client_id} {day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def one_delivery_at_a_time(
    conn: psycopg.Connection[Any], client_id: str, day: dt.date, *, holder: str, wait_seconds: float
) -> Iterator[None]:
    """Hold the client-day's delivery lock on `conn` (autocommit, used for nothing else) for the
    body; `holder` (e.g. "run 1a2b3c4d") is shown to whoever waits for it."""
    key = lock_key(client_id, day)
    name = f"ods delivery {client_id} {day} {holder}"[:APPLICATION_NAME_LIMIT]
    conn.execute("select set_config('application_name', %s, false)", [name])
    conn.execute(
        sql.SQL("set lock_timeout = {}").format(sql.Literal(f"{max(int(wait_seconds * 1000), 1)}"))
    )
    try:
        conn.execute("select pg_advisory_lock(%s)", [key])
    except psycopg.errors.LockNotAvailable:
        raise DeliveryBusy(
            f"another delivery of client {client_id}, day {day} is in progress "
            f"({_holder_of(conn, key)}); waited {wait_seconds:.0f} s for it to finish. "
            "Nothing was sent by this attempt; try again when that delivery is done."
        ) from None
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("select pg_advisory_unlock(%s)", [key])


def _holder_of(conn: psycopg.Connection[Any], key: int) -> str:
    row = conn.execute(
        """
        select activity.application_name, activity.client_addr, activity.backend_start
        from pg_locks as locks
        join pg_stat_activity as activity on activity.pid = locks.pid
        where locks.locktype = 'advisory' and locks.granted
            and locks.classid::bigint = %s and locks.objid::bigint = %s
            and locks.objsubid = 1
        """,
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
    ).fetchone()
    if row is None:
        return "its holder has just finished"
    application, address, since = row
    where = f" from {address}" if address else ""
    return f"held by '{application}'{where} since {since:%Y-%m-%d %H:%M:%S %Z}"
