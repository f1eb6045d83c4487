"""Which clients a marts run is for, read from its tags: shared by the marts step (what it builds)
and the files sensor (whose files follow)."""

from __future__ import annotations

from collections.abc import Mapping

from orchestration.clients import ClientsConfig
from orchestration.defs.jobs import CLIENTS_TAG, TIMEZONE_TAG
from orchestration.defs.partitions import zones


def clients_of_run(config: ClientsConfig, tags: Mapping[str, str]) -> list[str]:
    """The clients a marts run builds: those it lists (`ods/clients`), its zone's
    (`ods/timezone`), or every client."""
    if tags.get(CLIENTS_TAG):
        return sorted(c for c in tags[CLIENTS_TAG].split(",") if c in config.clients)
    if tags.get(TIMEZONE_TAG):
        return zones(config).get(tags[TIMEZONE_TAG], [])
    return sorted(config.clients)
