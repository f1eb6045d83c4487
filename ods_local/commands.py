"""`ods` commands of the local default: the embedded PostgreSQL, the local SFTP and mail servers
(`up`, `down`, `status`, `env`), the Dagster UI on them (`ui`), synthetic Moodle sites
(`generate`) and the demo (`demo`). They live with the local tooling, which depends on the product
(`orchestration`) and never the other way round; `orchestration/cli.py` registers them when this
package is installed (a development checkout, not the production image)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from ods_local.services import ServiceError
from orchestration.cli import (
    DEFAULT_UI_PORT,
    CommandLog,
    _date,
    _instance_home,
    _report,
    _ui_hint,
    _ui_port,
    _verbose_option,
    _yesterday,
)
from orchestration.clients import load_clients
from orchestration.paths import ods_home
from synthetic_moodle import MIN_LEARNERS, UnmarkedSchemaError

if TYPE_CHECKING:
    from ods_local.postgres import LocalPostgres
    from orchestration.clients import ClientsConfig

# Refusals of these commands: `ods` prints them as one line and exits 2.
REFUSALS = (ServiceError, UnmarkedSchemaError)


def _up_services() -> tuple[LocalPostgres, tuple[int, int] | None]:
    """Start the local services, then check the clients file with its key files required.

    The demo's key and host-key files are created by `up` itself (provision_sftp), so the file is
    first loaded without them and loaded again, files required, before anything else runs."""
    from ods_local import services

    started = services.up(load_clients(require_files=False))
    load_clients()
    return started


def cmd_up(_: argparse.Namespace) -> int:
    from ods_local import services
    from ods_local.demo import use_demo_dagster_home

    postgres, sftp = _up_services()
    use_demo_dagster_home()
    print(f"postgres: running, socket directory {postgres.host}")
    if sftp is None:
        print("sftp:     not started (no client in the clients file delivers to 127.0.0.1)")
    else:
        print(f"sftp:     running (pid {sftp[0]}) on 127.0.0.1:{sftp[1]}")
    print(f"mail:     {services.status()['mail']}")
    print(
        f"dagster:  instance settings in {ods_home() / 'dagster' / 'dagster.yaml'} "
        "(storage: the embedded server's database 'dagster')"
    )
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    from ods_local import services

    for name, was_running in services.down().items():
        print(f"{name}: {'stopped' if was_running else 'was not running'}")
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    from ods_local import services

    for name, state in services.status().items():
        print(f"{name}: {state}")
    return 0


def cmd_env(_: argparse.Namespace) -> int:
    """Print the settings of the embedded server; never start it (`ods up` does)."""
    from ods_local.postgres import embedded_settings, postgres_is_running

    pgdata = ods_home() / "pgdata"
    server = embedded_settings(pgdata)
    if server is None:
        print(
            f"error: the embedded PostgreSQL in {pgdata} is not running and its socket directory "
            "is only known once it runs; run `ods up` first",
            file=sys.stderr,
        )
        return 2
    for name, value in server.libpq_env().items():
        print(f"export {name}={shlex.quote(value)}")
    print(f"export DAGSTER_HOME={shlex.quote(str(ods_home() / 'dagster'))}")
    if not postgres_is_running(pgdata):
        print(f"# the embedded PostgreSQL in {pgdata} is not running: `ods up` starts it")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster UI on the local data: start the local services that are needed, then replace
    this process with `dagster dev` (so Ctrl-C and signals reach it directly).

    Programs are run from the venv by path, never looked up on PATH; the code location finds dbt
    the same way. DAGSTER_HOME defaults to `<ODS_HOME>/dagster`, the demo's run history."""
    from ods_local import services
    from ods_local.demo import use_demo_dagster_home
    from orchestration import warehouse
    from orchestration.paths import PROJECT_ROOT, venv_bin

    port = args.port if args.port is not None else _ui_port()
    if port is None:
        print(f"error: ODS_UI_PORT={os.environ['ODS_UI_PORT']!r} is not a port", file=sys.stderr)
        return 2
    config = load_clients(require_files=False)
    if warehouse.is_local_default():
        _up_services()
        # dagster dev, its daemon and every run it launches inherit PG* (orchestration/warehouse.py)
        warehouse.export_local_default()
    else:  # PG* names another database: only the local SFTP server, if a client uses it
        services.start_sftp(config)
        load_clients()
    use_demo_dagster_home()
    command = [str(venv_bin("dagster")), "dev", "-w", "workspace.yaml", "-p", str(port)]
    print(f"Dagster UI: http://127.0.0.1:{port}  (instance {os.environ['DAGSTER_HOME']})")
    sys.stdout.flush()
    os.chdir(PROJECT_ROOT)
    os.execv(command[0], command)


GENERATE_DOING = "generate synthetic Moodle schemas"


def cmd_generate(args: argparse.Namespace) -> int:
    """Synthetic sites need only the clients' schemas: key files are not required here."""
    from orchestration import warehouse

    config = load_clients(require_files=False)
    last = args.last or _yesterday(config.timezone)
    first = args.first or last
    warehouse.check_database_confirmed(args.database, GENERATE_DOING)
    log = CommandLog("generate", args.verbose)
    _generate_sites(config, first, last, args.learners, log)
    print(log.where())
    return 0


def _generate_sites(
    config: ClientsConfig, first: dt.date, last: dt.date, learners: int, log: CommandLog
) -> None:
    """One line per site on the terminal; the rows of every table in the log."""
    from ods_local.demo import generate_demo_sites
    from orchestration import warehouse

    with warehouse.connect(autocommit=True) as conn, log.capture():
        sites = generate_demo_sites(conn, config, first, last, learners)
        for site in sites:
            counts = ", ".join(f"{t} {n}" for t, n in sorted(site.row_counts.items()) if n)
            print(f"{site.schema}: {counts}")
    for site in sites:
        rows = sum(site.row_counts.values())
        tables = sum(1 for n in site.row_counts.values() if n)
        print(
            f"{site.schema} (Moodle {site.release}, prefix {site.prefix}): "
            f"{rows} rows in {tables} tables, {first} to {last}"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    from ods_local import services
    from ods_local.demo import run_days
    from orchestration import warehouse

    config = load_clients(require_files=False)
    last = args.last or _yesterday(config.timezone)
    first = args.first or last
    if first > last:
        print(f"--from {first} is after --to {last}", file=sys.stderr)
        return 2
    warehouse.check_database_confirmed(args.database, GENERATE_DOING + " and run the demo")
    _up_services()
    warehouse.export_local_default()  # the in-process runs and their dbt inherit PG* (warehouse.py)
    log = CommandLog("demo", args.verbose)
    _generate_sites(config, first, last, args.learners, log)
    from orchestration.defs.reruns import RunFailed

    print(f"Dagster instance: {_instance_home()}")
    try:
        with log.capture():
            runs = run_days(first, last, log_level=log.log_level)
    except RunFailed as error:
        print(f"error: {error}", file=sys.stderr)
        print(log.where(), file=sys.stderr)
        return 1
    print(f"built {first} to {last}:")
    status = _report(runs, load_clients(), log, sha256=False)
    root = services.SftpPaths(ods_home()).root
    print(f"SFTP folders (one per client account): {root}; archive: {ods_home() / 'archive'}")
    from ods_local.demo import what_clients_received

    for line in what_clients_received(load_clients()):
        print(line)
    from orchestration.defs.alerts import alert_destination

    print(alert_destination())
    print(_ui_hint())
    return status


def _learners(text: str) -> int:
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


def register(commands: Any) -> None:
    """Add the local default's commands to `ods` (orchestration/cli.py)."""
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
        _verbose_option(command)
    handlers = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "env": cmd_env,
        "ui": cmd_ui,
        "generate": cmd_generate,
        "demo": cmd_demo,
    }
    for name, handler in handlers.items():
        commands.choices[name].set_defaults(handler=handler)
