"""`ods`: the command line of Outbound Data Sync (local services, synthetic sites, the demo)."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from orchestration.clients import ConfigError, load_clients
from orchestration.paths import DBT_PROJECT_DIR, ods_home


def _yesterday(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def cmd_up(_: argparse.Namespace) -> int:
    from orchestration.local import services

    postgres, pid = services.up(load_clients())
    print(f"postgres: running, socket directory {postgres.host}")
    print(f"sftp:     running (pid {pid}) on 127.0.0.1:{services.sftp_port()}")
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


def cmd_parse(_: argparse.Namespace) -> int:
    """dagster-dbt reads dbt's manifest; `dbt parse` writes it without touching a database."""
    dbt = Path(sys.executable).with_name("dbt")
    args = ["parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR)]
    args += ["--profiles-dir", str(DBT_PROJECT_DIR)]
    return subprocess.run([str(dbt), *args], check=False).returncode


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration import warehouse
    from orchestration.local.demo import generate_demo_sites

    config = load_clients()
    last = args.last or _yesterday(config.timezone)
    first = args.first or last
    with warehouse.connect(autocommit=True) as conn:
        for site in generate_demo_sites(conn, config, first, last, args.learners):
            counts = ", ".join(f"{t} {n}" for t, n in sorted(site.row_counts.items()) if n)
            print(f"{site.schema} (Moodle {site.release}, prefix {site.prefix}): {counts}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestration.local import services
    from orchestration.local.demo import run_days

    config = load_clients()
    last = args.last or _yesterday(config.timezone)
    first = args.first or last
    if first > last:
        print(f"--from {first} is after --to {last}", file=sys.stderr)
        return 2
    services.up(config)
    if cmd_generate(argparse.Namespace(first=first, last=last, learners=args.learners)):
        return 1
    runs = run_days(first, last)
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
    print("Dagster UI on the same data: make ui   (then open http://127.0.0.1:3000)")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
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
            "--learners", type=int, default=40, help="learners per site (default: %(default)s)"
        )
    return parser


HANDLERS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "parse": cmd_parse,
    "generate": cmd_generate,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return HANDLERS[args.command](args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
