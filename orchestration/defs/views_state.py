"""Whether dbt's staging and intermediate views must be built again, or are as the last build
left them.

They are views over the union views, so they change only when the union views change (a client
added, a replica's columns changed: `moodle.union_views` fingerprints that) or when their own SQL
changes (a deploy: dbt's manifest checksums them), or when something dropped them (a replica
reload's `drop schema … cascade`). Otherwise a night's `dbt build` of them — some 30 views and 98
data tests over every replica, tens of seconds a zone with hundreds of clients (issue 13) — would
change nothing. What they were last built from is kept as the comment of schema `staging`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from orchestration.moodle.union_views import stored_fingerprint

LABEL = "Outbound Data Sync: dbt views built from "
STATE_SCHEMA = "staging"


def views_fingerprint(
    conn: psycopg.Connection[Any], manifest: Mapping[str, Any], unique_ids: Iterable[str]
) -> str | None:
    """What the views would be built from now; None when the union views carry no fingerprint
    (never built, or by a release before fingerprints): then build."""
    union = stored_fingerprint(conn, "moodle")
    if union is None:
        return None
    nodes = manifest["nodes"]
    checksums = sorted((uid, nodes[uid]["checksum"]["checksum"]) for uid in unique_ids)
    return hashlib.sha256(json.dumps([union, checksums]).encode()).hexdigest()


def missing_views(
    conn: psycopg.Connection[Any], manifest: Mapping[str, Any], unique_ids: Iterable[str]
) -> list[str]:
    """The selected models that should be in the database and are not (ephemeral models are
    CTEs of the models that use them, never relations)."""
    nodes = manifest["nodes"]
    wanted = [
        f"{nodes[uid]['schema']}.{nodes[uid].get('alias') or nodes[uid]['name']}"
        for uid in unique_ids
        if nodes[uid]["resource_type"] == "model"
        and nodes[uid]["config"].get("materialized") != "ephemeral"
    ]
    found = {
        row[0]
        for row in conn.execute(
            "select n.nspname || '.' || c.relname from pg_class as c"
            " join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname || '.' || c.relname = any(%s)",
            (wanted,),
        )
    }
    return sorted(set(wanted) - found)


def built_for(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(
        "select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s",
        (STATE_SCHEMA,),
    ).fetchone()
    comment = (row[0] if row else None) or ""
    return comment.removeprefix(LABEL) if comment.startswith(LABEL) else None


def record_built(conn: psycopg.Connection[Any], fingerprint: str) -> None:
    conn.execute(
        sql.SQL("comment on schema {} is {}").format(
            sql.Identifier(STATE_SCHEMA), sql.Literal(LABEL + fingerprint)
        )
    )
