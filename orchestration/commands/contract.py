"""`ods contract`: the exact files a client would receive for a day, for the client to sign off,
and what a change to the clients file does to them (`--diff`)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from orchestration.clients import ClientConfig, ClientsConfig, load_clients
from orchestration.clients.config import clients_file_path
from orchestration.export.contract import Contract, contracts_of_client, diff, diff_client
from orchestration.export.contract_files import DEFAULT_PREVIEW_ROWS, ContractFile
from orchestration.feeds import FEEDS, Feed
from orchestration.paths import ods_home

LAST = "last"

DESCRIPTION = """\
Write the exact file(s) a client would receive for one activity day into a folder, and print for
each: its name, contract version, the options that shape its bytes, its columns, header and first
rows. The files are made by the nightly export itself (same query, CSV rules and file name), so
they are byte for byte what a night delivers from the same data.

Where the data comes from (--source):
  auto (default)  the warehouse's marts when they hold that client-day (the day was built by a
                  run), else a small synthetic Moodle site for the client (its schema name,
                  table prefix and time zone), built with its marts in a scratch database of the
                  embedded local PostgreSQL and dropped afterwards: the shape of the client's
                  files on made-up learners. Nothing of a real client or mart is read or written
                  then, and the project's archive is never written.
  warehouse       the warehouse only; refused when it does not hold the day.
  synthetic       the synthetic site, even when the warehouse has the day.

With --diff REV (a git revision of the clients file: HEAD~1, main, a commit id) or --diff last
(the contracts recorded with the last file of each feed delivered, from the archive), print
instead, per feed, the columns added, removed, renamed (same column, another header) and moved,
the options changed, and feeds added or removed. (A branch called "last": --diff refs/heads/last.)

The contract version is a short hash of everything that shapes a file (columns, headers, records,
line endings, byte order mark, formula neutralising, file date); the manifest of a delivery
carries it too. A server, retention or alert change does not change it.

Exit status: 0 done; 1 the files could not be made (the warehouse unreachable, the synthetic
site's build failed); 2 refused (unknown client or feed, a day not built or in the future, an
unknown revision, no git repository).
"""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _rows(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows (0 or more)")
    return int(text)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    command = commands.add_parser(
        "contract",
        help="write the exact files a client would receive for a day, to sign off; --diff "
        "shows what changed since a revision of the clients file or the last delivery",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("client", help="client id in the clients file (ODS_CLIENTS_FILE)")
    command.add_argument(
        "--feed",
        action="append",
        choices=list(FEEDS),
        help="one feed; repeat for several (default: every feed the client takes)",
    )
    command.add_argument(
        "--day",
        type=_date,
        help="the activity day, YYYY-MM-DD (default: the latest day the warehouse built for the "
        "client, else yesterday in the client's time zone)",
    )
    command.add_argument(
        "--out",
        type=Path,
        help="folder to write the files into (default: ./contract-<client>); a file of the same "
        "name there is replaced, nothing else is touched",
    )
    command.add_argument(
        "--rows",
        type=_rows,
        default=DEFAULT_PREVIEW_ROWS,
        help="how many rows of each file to print (default: %(default)s)",
    )
    command.add_argument(
        "--source",
        choices=("auto", "warehouse", "synthetic"),
        default="auto",
        help="where the rows come from (default: %(default)s; see above)",
    )
    command.add_argument(
        "--diff",
        metavar="REV|last",
        help="compare the client's contracts now with the clients file at git revision REV, or "
        "with those of the last files delivered (last); writes no file",
    )
    command.set_defaults(handler=run)


class Refused(ValueError):
    """The request names something that is not there; nothing was made (exit 2)."""


def run(args: argparse.Namespace) -> int:
    from orchestration.export.contract_history import ContractHistoryError

    config = load_clients(require_files=False)
    try:
        client = _client(config, args.client)
        feeds = _feeds(client, args.client, args.feed)
        if args.diff is not None:
            return _diff(config, args.client, client, feeds, args.diff)
        return _write(config, args, client, feeds)
    except (Refused, ContractHistoryError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _client(config: ClientsConfig, client_id: str) -> ClientConfig:
    if client_id not in config.clients:
        raise Refused(
            f"unknown client {client_id!r} in the clients file {clients_file_path()}; "
            f"clients: {', '.join(sorted(config.clients))}"
        )
    return config.clients[client_id]


def _feeds(client: ClientConfig, client_id: str, asked: list[str] | None) -> list[Feed]:
    taken = [feed for name, feed in FEEDS.items() if name in client.feeds]
    if not asked:
        return taken
    missing = [name for name in asked if name not in client.feeds]
    if missing:
        raise Refused(
            f"client {client_id!r} does not take the {missing[0]} feed; it takes "
            f"{', '.join(feed.name for feed in taken)}"
        )
    return [feed for feed in taken if feed.name in asked]


def _write(
    config: ClientsConfig, args: argparse.Namespace, client: ClientConfig, feeds: list[Feed]
) -> int:
    import psycopg

    from ods_local.contract_site import SyntheticSiteError, synthetic_marts
    from orchestration import warehouse
    from orchestration.export.contract_files import (
        days_built,
        latest_common_day,
        write_contract_files,
    )
    from orchestration.export.openpgp import OpenPgpError

    client_id = args.client
    timezone = config.timezone_of(client_id)
    today = dt.datetime.now(ZoneInfo(timezone)).date()
    if args.day is not None and args.day >= today:
        raise Refused(
            f"day {args.day} of client {client_id!r} is not over yet in its time zone "
            f"({timezone}, today {today}); give a day before {today}"
        )
    out = (args.out or Path(f"contract-{client_id}")).resolve()

    def write_files(conn: psycopg.Connection, day: dt.date) -> list[ContractFile]:
        return write_contract_files(
            conn,
            client_id=client_id,
            client=client,
            feeds=feeds,
            day=day,
            out=out,
            preview_rows=args.rows,
        )

    day = args.day
    try:
        if args.source != "synthetic":
            with warehouse.connect(autocommit=True) as conn:
                built = days_built(conn, client_id, feeds)
                day = day or latest_common_day(built)
                if day is not None and all(day in days for days in built.values()):
                    files = write_files(conn, day)
                    return _print_files(client_id, client, "the warehouse's marts", files, out)
            if args.source == "warehouse":
                raise Refused(_not_built(client_id, feeds, built, args.day))
            day = args.day or today - dt.timedelta(days=1)
            source = (
                f"a synthetic Moodle site (the warehouse has no day {day} of {client_id!r} "
                "for these feeds): the client's columns and options on made-up learners"
            )
        else:
            day = day or today - dt.timedelta(days=1)
            source = "a synthetic Moodle site: the client's columns and options on made-up learners"
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        log_path = ods_home() / "logs" / f"ods-contract-{stamp}.log"
        print(f"building a synthetic site and its marts for {client_id}, day {day} (dbt) …")
        with synthetic_marts(
            client_id,
            client,
            feeds,
            timezone=timezone,
            day=day,
            lookback_days=config.lookback_days,
            log_path=log_path,
        ) as conn:
            files = write_files(conn, day)
        return _print_files(client_id, client, source, files, out)
    except psycopg.OperationalError as error:
        print(
            f"error: cannot reach the database for client {client_id!r}'s files: "
            f"{str(error).strip()}; check the PG* variables (or --source synthetic)",
            file=sys.stderr,
        )
        return 1
    except SyntheticSiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OpenPgpError as error:
        print(
            f"error: client {client_id!r}'s files are encrypted (encrypt.public_key) and could not "
            f"be: {error}",
            file=sys.stderr,
        )
        return 1


def _not_built(
    client_id: str, feeds: list[Feed], built: dict[str, set[dt.date]], day: dt.date | None
) -> str:
    per_feed = []
    for feed in feeds:
        days = sorted(built.get(feed.name, ()))
        span = f"{days[0]} to {days[-1]} ({len(days)} days)" if days else "no day"
        per_feed.append(f"{feed.name}: {span}")
    asked = f"day {day}" if day else "any day"
    return (
        f"the warehouse holds no {asked} of client {client_id!r} for every feed asked "
        f"({'; '.join(per_feed)}); give a --day it has, or --source synthetic"
    )


def _print_files(
    client_id: str, client: ClientConfig, source: str, files: list[ContractFile], out: Path
) -> int:
    from orchestration.export.contract_files import file_report

    day = files[0].activity_day if files else None
    print(f"{client_id} ({client.name}): the files of activity day {day}, from {source}")
    print(f"written to {out}")
    for made in files:
        print()
        for line in file_report(made):
            print(line)
    return 0


def _diff(
    config: ClientsConfig,
    client_id: str,
    client: ClientConfig,
    feeds: list[Feed],
    revision: str,
) -> int:
    """Compare the contracts now with those at `revision` (or the last delivered, `last`); with
    --feed, only those feeds."""
    asked = {feed.name for feed in feeds}
    every = len(asked) == len(client.feeds)
    now = {name: c for name, c in contracts_of_client(client).items() if name in asked}
    if revision == LAST:
        return _diff_last(config, client_id, now, every)
    from orchestration.export.contract_history import client_at_revision
    from orchestration.export.envelope import envelope_of

    path = clients_file_path()
    before_client = client_at_revision(path, revision, client_id)
    before = contracts_of_client(before_client)
    if not every:
        before = {name: c for name, c in before.items() if name in asked}
    print(f"{client_id}: the contracts in {path} now, against the clients file at {revision}")
    changes = diff_client(before, now)
    sent_before, sent_now = envelope_of(before_client).suffix, envelope_of(client).suffix
    if sent_before != sent_now:
        print(f"  every file: {_sent_as(sent_before)} -> {_sent_as(sent_now)} (compress, encrypt)")
    for name in changes.feeds_added:
        print(f"  {name}: feed added (version {now[name].version})")
    for name in changes.feeds_removed:
        print(f"  {name}: feed removed (was version {before[name].version})")
    for each in changes.feeds:
        _print_feed_diff(each.feed, before[each.feed], now[each.feed])
    if not changes.changed and sent_before == sent_now:
        print("  no change")
    return 0


def _sent_as(suffix: str) -> str:
    """How a file is sent, by what its name ends in: `.csv` plain, `.csv.gz.pgp` wrapped."""
    return f"sent as <name>.csv{suffix}"


def _print_feed_diff(feed: str, old: Contract, new: Contract, label: str = "") -> None:
    change = diff(old, new)
    if not change.changed:
        print(f"  {feed}: unchanged (version {new.version}){label}")
        return
    print(f"  {feed}: version {old.version} -> {new.version}{label}")
    for line in change.lines():
        print(f"    {line}")


def _diff_last(config: ClientsConfig, client_id: str, now: dict[str, Contract], every: bool) -> int:
    from orchestration.defs.resources import archive_root
    from orchestration.export.contract_history import last_delivered_contracts
    from orchestration.export.envelope import envelope_of

    root = archive_root(config)
    suffix = envelope_of(config.clients[client_id]).suffix
    delivered = last_delivered_contracts(root, client_id)
    print(f"{client_id}: the contracts now, against the last file of each feed delivered ({root})")
    for name, contract in now.items():
        last = delivered.get(name)
        if last is None:
            print(f"  {name}: never delivered (version now {contract.version})")
        elif last.contract is None:
            print(f"  {name}: {last.file_name} (delivered {last.delivered_at}): {last.missing}")
        else:
            label = f"; last delivered {last.file_name} at {last.delivered_at}"
            _print_feed_diff(name, last.contract, contract, label)
        if last is not None and last.sent_suffix is not None and last.sent_suffix != suffix:
            print(f"    {_sent_as(last.sent_suffix)} -> {_sent_as(suffix)} (compress, encrypt)")
    for name, last in delivered.items():
        if every and name not in now:
            print(
                f"  {name}: feed no longer taken (last delivered {last.file_name} at "
                f"{last.delivered_at})"
            )
    return 0
