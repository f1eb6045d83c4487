"""`ods`: the command line of Outbound Data Sync (local services, synthetic sites, the demo, and
an operator's re-send and rebuild of a client's days)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from orchestration.clients import ConfigError, load_clients
from orchestration.feeds import FEEDS
from orchestration.paths import ods_home

if TYPE_CHECKING:
    import dagster as dg

    from orchestration.defs.reruns import FileRun
    from orchestration.local.postgres import LocalPostgres


def _yesterday(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _up_services() -> tuple[LocalPostgres, tuple[int, int] | None]:
    """Start the local services, then check the clients file with its key files required.

    The demo's key and host-key files are created by `up` itself (provision_sftp), so the file is
    first loaded without them and loaded again, files required, before anything else runs."""
    from orchestration.local import services

    started = services.up(load_clients(require_files=False))
    load_clients()
    return started


def cmd_up(_: argparse.Namespace) -> int:
    from orchestration.local.demo import use_demo_dagster_home

    postgres, sftp = _up_services()
    use_demo_dagster_home()
    print(f"postgres: running, socket directory {postgres.host}")
    if sftp is None:
        print("sftp:     not started (no client in the clients file delivers to 127.0.0.1)")
    else:
        print(f"sftp:     running (pid {sftp[0]}) on 127.0.0.1:{sftp[1]}")
    print(f"dagster:  instance settings in {ods_home() / 'dagster' / 'dagster.yaml'}")
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    from orchestration.local import services

    for name, was_running in services.down().items():
        print(f"{name}: {'stopped' if was_running else 'was not running'}")
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    from orchestration.local import services

    for name, state in services.status().items():
        print(f"{name}: {state}")
    return 0


def cmd_env(_: argparse.Namespace) -> int:
    from orchestration.local.postgres import start_postgres

    server = start_postgres(ods_home() / "pgdata")
    for name, value in server.libpq_env().items():
        print(f"export {name}={shlex.quote(value)}")
    print(f"export DAGSTER_HOME={shlex.quote(str(ods_home() / 'dagster'))}")
    return 0


DEFAULT_UI_PORT = 3000


def _ui_port() -> int | None:
    text = os.environ.get("ODS_UI_PORT") or str(DEFAULT_UI_PORT)
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _ui_hint() -> str:
    """The command that opens the UI on the data just made, and its address."""
    home = os.environ.get("ODS_HOME")
    prefix = f"ODS_HOME={shlex.quote(home)} " if home else ""
    port = _ui_port() or DEFAULT_UI_PORT
    return f"Dagster UI on the same data: {prefix}make ui   (then open http://127.0.0.1:{port})"


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI on the local data: start the local services that are needed, then replace
    this process with `dagster dev` (so Ctrl-C and signals reach it directly).

    Programs are run from the venv by path, never looked up on PATH; the code location finds dbt
    the same way. DAGSTER_HOME defaults to `<ODS_HOME>/dagster`, the demo's run history."""
    from orchestration import warehouse
    from orchestration.local import services
    from orchestration.local.demo import use_demo_dagster_home
    from orchestration.paths import PROJECT_ROOT, venv_bin

    port = args.port if args.port is not None else _ui_port()
    if port is None:
        print(f"error: ODS_UI_PORT={os.environ['ODS_UI_PORT']!r} is not a port", file=sys.stderr)
        return 2
    config = load_clients(require_files=False)
    if warehouse.is_local_default():
        _up_services()
    else:  # PG* names another database: only the local SFTP server, if a client uses it
        services.start_sftp(config)
        load_clients()
    use_demo_dagster_home()
    command = [str(venv_bin("dagster")), "dev", "-w", "workspace.yaml", "-p", str(port)]
    print(f"Dagster UI: http://127.0.0.1:{port}  (instance {os.environ['DAGSTER_HOME']})")
    sys.stdout.flush()
    os.chdir(PROJECT_ROOT)
    os.execv(command[0], command)


def cmd_parse(_: argparse.Namespace) -> int:
    """dagster-dbt reads dbt's manifest; `dbt parse` writes it without touching a database."""
    from orchestration.paths import dbt_parse_args, venv_bin

    return subprocess.run([str(venv_bin("dbt")), *dbt_parse_args()], check=False).returncode


GENERATE_DOING = "generate synthetic Moodle schemas"


def cmd_generate(args: argparse.Namespace) -> int:
    """Synthetic sites need only the clients' schemas: key files are not required here."""
    from orchestration import warehouse
    from orchestration.local.demo import generate_demo_sites

    config = load_clients(require_files=False)
    last = args.last or _yesterday(config.timezone)
    first = args.first or last
    warehouse.check_database_confirmed(args.database, GENERATE_DOING)
    with warehouse.connect(autocommit=True) as conn:
        for site in generate_demo_sites(conn, config, first, last, args.learners):
            counts = ", ".join(f"{t} {n}" for t, n in sorted(site.row_counts.items()) if n)
            print(f"{site.schema} (Moodle {site.release}, prefix {site.prefix}): {counts}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestration import warehouse
    from orchestration.local import services
    from orchestration.local.demo import run_days

    config = load_clients(require_files=False)
    last = args.last or _yesterday(config.timezone)
    first = args.first or last
    if first > last:
        print(f"--from {first} is after --to {last}", file=sys.stderr)
        return 2
    warehouse.check_database_confirmed(args.database, GENERATE_DOING + " and run the demo")
    _up_services()
    generate = argparse.Namespace(
        first=first, last=last, learners=args.learners, database=args.database
    )
    if cmd_generate(generate):
        return 1
    from orchestration.defs.reruns import RunFailed

    try:
        runs = run_days(first, last)
    except RunFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    failed = [run for run in runs if not run.success]
    print(
        f"\nbuilt {first} to {last}: {len(runs) - len(failed)} files delivered, {len(failed)} failed"
    )
    for run in failed:
        print(f"  FAILED {run.feed} {run.client_id} {run.day}: {run.message}")
    root = services.SftpPaths(ods_home()).root
    print(f"\nSFTP folders (one per client account) under {root}:")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(root)}  ({path.stat().st_size} bytes)")
    print(f"\nArchive: {ods_home() / 'archive'}")
    print(_ui_hint())
    return 1 if failed else 0


def _dagster_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME (production, `make ui`), else the local demo's."""
    import dagster as dg

    from orchestration.local.demo import use_demo_dagster_home

    if not os.environ.get("DAGSTER_HOME"):
        use_demo_dagster_home()
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']}")
    return dg.DagsterInstance.get()


def cmd_resend(args: argparse.Namespace) -> int:
    """Deliver a client's archived files again, byte for byte, without rebuilding them."""
    from orchestration.defs import reruns
    from orchestration.defs.code_location import build_definitions
    from orchestration.defs.resources import archive_root

    config = load_clients()
    try:
        feeds = reruns.feeds_of(config, args.client, args.feed)
        days = reruns.days_of(config, args.first, args.last)
        archived = reruns.archived_files(config, archive_root(config), args.client, feeds, days)
        print(f"re-sending {len(archived)} archived file(s) of {args.client}, unchanged")
        runs = reruns.resend(
            build_definitions(),
            _dagster_instance(),
            config,
            archive_root(config),
            args.client,
            feeds,
            days,
        )
    except reruns.RerunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return _report(runs, config.clients[args.client].sftp.username)


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the marts for a client's days from current data, then export and deliver."""
    from orchestration.defs import reruns
    from orchestration.defs.code_location import build_definitions

    config = load_clients()
    try:
        feeds = reruns.feeds_of(config, args.client, args.feed)
        days = reruns.days_of(config, args.first, args.last)
        print(
            f"rebuilding the marts for {days[0]} to {days[-1]} (one run), then "
            f"{len(feeds) * len(days)} file(s) of {args.client}"
        )
        runs = reruns.rebuild(
            build_definitions(), _dagster_instance(), config, args.client, feeds, days
        )
    except reruns.RerunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except reruns.RunFailed as error:  # the marts run ran and failed: no file was sent
        print(f"error: {error}", file=sys.stderr)
        return 1
    return _report(runs, config.clients[args.client].sftp.username)


def _report(runs: list[FileRun], username: str) -> int:
    for run in runs:
        if not run.success:
            print(f"  FAILED {run.file_name} ({run.feed}, day {run.day}): {run.message}")
            continue
        sent = run.delivered
        print(
            f"  sent {run.file_name} ({run.feed}, day {run.day}) to "
            f"{username}@{sent['server']}:{sent['remote_path']}: {sent['rows']} rows, "
            f"{sent['bytes']} bytes, sha256 {sent['sha256']}"
        )
        if sent.get("retention_deleted"):
            print(f"    retention removed {', '.join(sent['retention_deleted'])}")
    failed = sum(not run.success for run in runs)
    print(f"{len(runs) - failed} sent, {failed} failed")
    return 1 if failed else 0


def _learners(text: str) -> int:
    from orchestration.moodle.synthetic import MIN_LEARNERS

    try:
        learners = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if learners < MIN_LEARNERS:
        raise argparse.ArgumentTypeError(
            f"{learners} is too few: a site has at least {MIN_LEARNERS} learners "
            "(the named learners of the scripted cases)"
        )
    return learners


def _parser() -> argparse.ArgumentParser:
    from orchestration.moodle.synthetic import MIN_LEARNERS

    parser = argparse.ArgumentParser(
        prog="ods",
        description="Outbound Data Sync: nightly per-client CSV feeds from Moodle over SFTP.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start the embedded PostgreSQL and the local SFTP server")
    commands.add_parser("down", help="stop them (data is kept under .ods/)")
    commands.add_parser("status", help="show whether they run")
    commands.add_parser(
        "env", help="print `export PG*=…` lines for dbt and psql on the local database"
    )
    ui = commands.add_parser(
        "ui",
        help="start the local services, then the Dagster UI (dagster dev) on this data",
        description="start the local services, then the Dagster UI (dagster dev) on this data; "
        "DAGSTER_HOME defaults to <ODS_HOME>/dagster",
    )
    ui.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"the UI's port (default: ODS_UI_PORT, else {DEFAULT_UI_PORT})",
    )
    commands.add_parser("parse", help="write dbt's manifest (dbt parse), which Dagster reads")
    for name, text in (
        ("generate", "(re)create the synthetic Moodle site of every client in the clients file"),
        ("demo", "start services, generate sites, build and deliver the files of a day range"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--from", dest="first", type=_date, help="first day (default: --to)")
        command.add_argument(
            "--to", dest="last", type=_date, help="last day (default: yesterday, local time)"
        )
        command.add_argument(
            "--learners",
            type=_learners,
            default=40,
            help=f"learners per site, at least {MIN_LEARNERS} (default: %(default)s)",
        )
        command.add_argument(
            "--database",
            metavar="NAME",
            help="write to the database the PG* variables name, which must be called NAME "
            "(default: only the embedded local database; PG* unset). Schemas that the "
            "generator did not make are never dropped or changed",
        )
    for name, text in (
        ("resend", "deliver a client's archived files again, byte for byte, without rebuilding"),
        ("rebuild", "rebuild the marts for a client's days from current data, then deliver"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--client", required=True, help="client id in the clients file")
        command.add_argument(
            "--feed", choices=list(FEEDS), help="one feed (default: every feed the client gets)"
        )
        command.add_argument(
            "--from", dest="first", type=_date, required=True, help="first activity day"
        )
        command.add_argument("--to", dest="last", type=_date, help="last day (default: --from)")
    return parser


HANDLERS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "ui": cmd_ui,
    "parse": cmd_parse,
    "generate": cmd_generate,
    "demo": cmd_demo,
    "resend": cmd_resend,
    "rebuild": cmd_rebuild,
}


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 1 something ran and failed (a run, a delivery); 2 the request was
    refused before anything ran (usage, clients file, database, schema, local service)."""
    from orchestration.local.services import ServiceError
    from orchestration.moodle.synthetic import UnmarkedSchemaError
    from orchestration.warehouse import DatabaseRefused

    args = _parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except (ConfigError, DatabaseRefused, UnmarkedSchemaError, ServiceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
