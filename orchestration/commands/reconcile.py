"""`ods reconcile [CLIENT]`: look at clients' SFTP folders now and compare them with the ledger of
deliveries, as the 05:30 `folder_reconciliation` runs do, without Dagster. Never changes a server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from orchestration.clients import load_clients
from orchestration.delivery.reconcile import FileStatus, FolderReport, counts_line

EPILOG = """\
classes:
  present                  ours, there at the size we sent
  altered                  ours, but another size (or other bytes when read back) now
  gone early               ours, gone before its retention date: picked up or removed by the
                           client; shown with when reconciliation first saw it missing
  foreign                  not delivered there by us; listed, never touched
  temporary                one of our upload names (.<file>.<16 hex>.part): an upload in
                           progress, or a crashed one's that retention removes after a day
  removed after retention  ours, gone after its retention date (counted; listed with --all)

Files are compared by size; a file whose modification time changed since it was first seen is
also read back and compared by sha256 (--read-back: every file). First-seen-missing times are
kept in <archive>/<client>/reconciliation.json.

exit status: 0 every folder looked at and nothing altered; 1 a file is altered or a server
could not be looked at (the other clients are still reported); 2 refused (unknown client,
invalid clients file)."""


def register(commands: Any) -> None:
    command = commands.add_parser(
        "reconcile",
        help="compare clients' SFTP folders with what we delivered (present, altered, gone …)",
        description=(
            "List each client's SFTP folder (or CLIENT's) and compare it with the archive's "
            "ledger of deliveries: files present, altered, gone before their retention date, "
            "foreign and temporary. Nothing on the server is changed."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("client", nargs="?", help="client id (default: every client)")
    command.add_argument(
        "--all",
        dest="show_all",
        action="store_true",
        help="list present files and files removed after retention too (default: only the "
        "files to look at, with counts of every class)",
    )
    command.add_argument(
        "--read-back",
        action="store_true",
        help="read back every present file of ours and compare its sha256 with the ledger's "
        "(downloads the folder; by default only files whose modification time changed)",
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from orchestration.defs.reconciliation import reconcile_client
    from orchestration.defs.resources import archive_root
    from orchestration.delivery.reconcile import ReconciliationError

    config = load_clients()
    if args.client is not None and args.client not in config.clients:
        print(
            f"error: client {args.client!r} is not in the clients file; known clients: "
            f"{', '.join(sorted(config.clients))}",
            file=sys.stderr,
        )
        return 2
    status = 0
    for number, client_id in enumerate([args.client] if args.client else sorted(config.clients)):
        if number:
            print()
        try:
            report = reconcile_client(
                config, client_id, archive_root(config), read_back_all=args.read_back
            )
        except ReconciliationError as error:
            sys.stdout.flush()
            print(f"NOT RECONCILED: {error}", file=sys.stderr)
            status = 1
            continue
        print(render(report, show_all=args.show_all))
        if report.altered:
            status = 1
    return status


_HIDDEN_BY_DEFAULT = {FileStatus.PRESENT, FileStatus.EXPIRED}


def render(report: FolderReport, *, show_all: bool = False) -> str:
    """The client's block: a heading, a table of files, a line of counts."""
    files = [f for f in report.files if show_all or f.status not in _HIDDEN_BY_DEFAULT]
    lines = [f"{report.client_id}  {report.folder}  (checked {report.checked_at})"]
    rows = [("STATUS", "FILE", "SENT", "NOW", "NOTE")]
    for file in files:
        note = file.note
        if file.missing_since:
            note = f"first seen missing {file.missing_since}; {note}"
        rows.append(
            (
                file.status.value,
                file.name,
                _number(file.sent_bytes),
                _number(file.bytes_now),
                note,
            )
        )
    if files:
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [
                row[i].ljust(widths[i]) if i < 2 else row[i].rjust(widths[i]) for i in range(4)
            ]
            lines.append(("  " + "  ".join(cells) + "  " + row[4]).rstrip())
    lines.append("  " + counts_line(report.counts().items()))
    return "\n".join(lines)


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)
