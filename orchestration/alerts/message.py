"""One alert per incident: a client-day whose files failed to go out, or missed 05:00.

Built from facts alone (no Dagster here), so that the e-mail, the webhook and the sensor's log say
the same thing: who (client), which day, which feed(s) and file(s), which server, what happened,
what to do (the `ods` command to run) and where to look. Nothing secret is ever a fact: servers
are `user@host:port`, never a password, a key or a URL with credentials.
"""

from __future__ import annotations

import datetime as dt
import shlex
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["delivery_failed", "deadline_missed", "delivered_late", "check_not_run"]

HEADLINES: dict[Kind, str] = {
    "delivery_failed": "delivery failed",
    "deadline_missed": "not delivered by 05:00",
    "delivered_late": "delivered after 05:00",
    "check_not_run": "05:00 check could not run",
}


@dataclass(frozen=True)
class FeedFile:
    feed: str
    file_name: str


@dataclass(frozen=True)
class Incident:
    """What one alert says. `key` names the incident: one message each."""

    kind: Kind
    client_id: str
    client_name: str
    day: dt.date
    timezone: str
    files: tuple[FeedFile, ...]
    server: str
    what_happened: str
    what_to_do: tuple[str, ...]
    where_to_look: tuple[str, ...]
    run_id: str | None = None
    deadline: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.client_id}:{self.day.isoformat()}:{self.run_id or '-'}"

    @property
    def feeds(self) -> list[str]:
        return [f.feed for f in self.files]

    @property
    def file_names(self) -> list[str]:
        return [f.file_name for f in self.files]


def command(verb: str, client_id: str, day: dt.date, feeds: list[str] | None = None) -> str:
    """`ods resend|rebuild --client C [--feed F] --from D`: one feed named only when it is one."""
    parts = ["ods", verb, "--client", client_id]
    if feeds and len(feeds) == 1:
        parts += ["--feed", feeds[0]]
    parts += ["--from", day.isoformat()]
    return shlex.join(parts)


def subject(incident: Incident) -> str:
    files = incident.file_names
    shown = files[0] if len(files) == 1 else f"{len(files)} files ({', '.join(files)})"
    return (
        f"[ODS] {incident.client_id} {incident.day}: {HEADLINES[incident.kind]} - {shown} "
        f"to {incident.server}"
    )


def text(incident: Incident) -> str:
    """The plain-text body: the same in the e-mail, the webhook's `text` and the sensor's log."""
    feeds = ", ".join(incident.feeds)
    lines = [
        f"Outbound Data Sync: {HEADLINES[incident.kind]}.",
        "",
        f"Client:  {incident.client_id} ({incident.client_name})",
        f"Day:     {incident.day} ({incident.timezone})"
        + (f"; due {incident.deadline}" if incident.deadline else ""),
        f"Feed:    {feeds}" if len(incident.files) == 1 else f"Feeds:   {feeds}",
        f"File:    {incident.file_names[0]}"
        if len(incident.files) == 1
        else "Files:   " + ", ".join(incident.file_names),
        f"Server:  {incident.server}",
        "",
        "What happened:",
        *_indented(incident.what_happened),
        "",
        "What to do:",
        *[f"  {n}. {step}" for n, step in enumerate(incident.what_to_do, start=1)],
        "",
        "Where to look:",
        *[f"  - {place}" for place in incident.where_to_look],
    ]
    return "\n".join(lines) + "\n"


def webhook_payload(incident: Incident) -> dict[str, Any]:
    """Slack-compatible (`text`), with the same facts as fields for any other receiver."""
    return {
        "text": f"*{subject(incident)}*\n```\n{text(incident)}```",
        "kind": incident.kind,
        "incident": incident.key,
        "client": incident.client_id,
        "client_name": incident.client_name,
        "day": incident.day.isoformat(),
        "timezone": incident.timezone,
        "deadline": incident.deadline,
        "feeds": incident.feeds,
        "files": incident.file_names,
        "server": incident.server,
        "what_happened": incident.what_happened,
        "what_to_do": list(incident.what_to_do),
        "where_to_look": list(incident.where_to_look),
        "run_id": incident.run_id,
    }


def _indented(block: str) -> list[str]:
    return [f"  {line}" if line else "" for line in block.strip().splitlines()]
