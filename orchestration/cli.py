"""`ods`: the command line of Outbound Data Sync (local services, synthetic sites, the demo, and
an operator's re-send and rebuild of a client's days)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo

from orchestration.clients import ConfigError, load_clients
from orchestration.feeds import FEEDS
from orchestration.paths import ods_home

if TYPE_CHECKING:
    from orchestration.clients import ClientsConfig
    from orchestration.defs.queued_runs import RunQueue
    from orchestration.defs.reruns import FileRun, SubmittedFiles


def _yesterday(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


class _Tee(io.TextIOBase):
    """Writes to the log file and to the terminal (`--verbose`)."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


class CommandLog:
    """The long output of a command: dbt's log (dagster-dbt writes it to this process's stdout)
    and Dagster's event log (its console logger, at DEBUG, on stderr). It goes to
    `<ODS_HOME>/logs/ods-<command>-<time>.log`, and to the terminal as well with `--verbose`; the
    terminal otherwise shows only the command's summary and one line naming the file."""

    def __init__(self, command: str, verbose: bool) -> None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.path = ods_home() / "logs" / f"ods-{command}-{stamp}.log"
        self.verbose = verbose
        self.log_level = "DEBUG"  # for the runs' console logger: everything, into the file

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        colours = os.environ.get("DBT_USE_COLORS")
        os.environ["DBT_USE_COLORS"] = "false"  # dbt's log is read in a file: no escape codes
        try:
            with self._redirect():
                yield
        finally:
            if colours is None:
                os.environ.pop("DBT_USE_COLORS", None)
            else:
                os.environ["DBT_USE_COLORS"] = colours

    @contextlib.contextmanager
    def _redirect(self) -> Iterator[None]:
        with self.path.open("a", encoding="utf-8") as file:
            out: io.TextIOBase | TextIO = _Tee(file, sys.stdout) if self.verbose else file
            err: io.TextIOBase | TextIO = _Tee(file, sys.stderr) if self.verbose else file
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield

    def where(self) -> str:
        """One line: where the log is, and how many warnings and errors Dagster logged in it."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        flagged = sum(" - WARNING - " in line or " - ERROR - " in line for line in lines)
        note = f" ({flagged} warning or error line(s) in it)" if flagged else ""
        return f"log (dbt and Dagster): {self.path}{note}"


def _quiet_beta_warnings() -> None:
    """Dagster warns, at every import of the code location, that APIs we use are beta or preview
    (e.g. MultiToSingleDimensionPartitionMapping). That is a note for whoever upgrades Dagster
    (pyproject.toml pins it), not for an operator running a command, so the `ods` process (only)
    does not show them; `dagster dev` and the tests still do."""
    import warnings

    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")


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


def cmd_parse(_: argparse.Namespace) -> int:
    """dagster-dbt reads dbt's manifest; `dbt parse` writes it without touching a database."""
    from orchestration.paths import dbt_parse_args, venv_bin

    return subprocess.run([str(venv_bin("dbt")), *dbt_parse_args()], check=False).returncode


def _instance_home() -> str:
    """DAGSTER_HOME: as set (production, `make ui`), else the local demo's instance."""
    from ods_local.demo import use_demo_dagster_home

    if not os.environ.get("DAGSTER_HOME"):
        use_demo_dagster_home()
    return os.environ["DAGSTER_HOME"]


QUEUE_HELP = """\
The runs go through the Dagster instance's run queue (DAGSTER_HOME; the local demo's instance if
unset), tagged as the night's files runs are (ods/sftp_host, the client-day partition) and
ods/started_by, so the instance's limits per SFTP host and the dbt_marts pool hold for them and
they are in the UI's run history. With --wait (the default) the command waits for them, showing
one progress line on a terminal, then prints one line per file: name, rows, bytes, where it went.
With --no-wait it prints the runs' ids and returns once they are submitted. (rebuild first waits
for its marts run even so: the files are made from it.) Interrupted, the command leaves its runs
to go on.

Queued runs are started by dagster-daemon. When no daemon serves the instance (no heartbeat of
its run queue in the last 90 s), the command starts its own runs, with Dagster's own queue logic
and under the same limits (counting runs in progress elsewhere), and the instance's run launcher;
with --no-wait it then returns once every run has started (they go on after it returns).

Exit status: 0 every file sent; 1 a run failed (the run and the reason are named); 2 the request
was refused before any run was submitted.
"""


def cmd_resend(args: argparse.Namespace) -> int:
    """Deliver a client's archived files again, byte for byte, without rebuilding them: one
    delivery-only run per client-day, through the instance's run queue (see QUEUE_HELP)."""
    from orchestration.defs import reruns
    from orchestration.defs.resources import archive_root

    config = load_clients()
    try:
        feeds = reruns.feeds_of(config, args.client, args.feed)
        days = reruns.days_of(config, args.client, args.first, args.last)
        archived = reruns.archived_files(config, archive_root(config), args.client, feeds, days)
    except reruns.RerunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"re-sending {len(archived)} archived file(s) of {args.client}, unchanged")
    return _through_the_queue(
        args,
        "resend",
        config,
        lambda queue, progress: reruns.resend(
            queue, config, archive_root(config), args.client, feeds, days, log_level="DEBUG"
        ),
    )


def cmd_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the marts for a client's days from current data, then export and deliver: the
    marts run first (waited for, even with --no-wait: the files are made from it), then one
    files run per client-day, through the instance's run queue (see QUEUE_HELP)."""
    from orchestration.defs import reruns

    config = load_clients()
    try:
        feeds = reruns.feeds_of(config, args.client, args.feed)
        days = reruns.days_of(config, args.client, args.first, args.last)
    except reruns.RerunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"rebuilding the marts for {days[0]} to {days[-1]} (one run), then "
        f"{len(feeds) * len(days)} file(s) of {args.client}"
    )
    return _through_the_queue(
        args,
        "rebuild",
        config,
        lambda queue, progress: reruns.rebuild(
            queue, config, args.client, feeds, days, log_level="DEBUG", on_progress=progress
        ),
    )


def _through_the_queue(
    args: argparse.Namespace,
    command: str,
    config: ClientsConfig,
    submit: Callable[[RunQueue, Callable[[str], None]], list[SubmittedFiles]],
) -> int:
    """Submit the command's runs, wait for them (or, --no-wait, only until they are submitted,
    or started when this command is what starts them), report. The runs' own output (dbt's log,
    their event log) goes to the command's log file, followed here with --verbose."""
    import dagster as dg

    from orchestration import warehouse
    from orchestration.defs import queued_runs, reruns

    # The runs this command launches (without a daemon) and their dbt inherit PG*.
    warehouse.export_local_default()
    print(f"Dagster instance: {_instance_home()}")
    terminal = sys.stdout
    # Everything goes to the log file, this process's output and the runs' (another process's,
    # which may outlive this one); --verbose follows the file here.
    log = CommandLog(command, verbose=False)
    progress = _Progress(terminal, lines=args.verbose)
    try:
        with (
            _follow(log.path, terminal if args.verbose else None),
            log.capture(),
            dg.DagsterInstance.get() as instance,
            queued_runs.RunQueue(instance, output=log.path) as queue,
        ):
            submitted = submit(queue, progress.show)
            run_ids = [s.run_id for s in submitted]
            runs = queue.wait(run_ids, progress.show, until_launched=not args.wait)
            progress.done()
            if args.wait:
                sent = [file for s in submitted for file in reruns.files_sent(instance, config, s)]
    except reruns.RerunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except queued_runs.CodeLocationError as error:
        print(f"error: {error}; nothing was submitted", file=sys.stderr)
        print(log.where(), file=sys.stderr)
        return 2
    except reruns.RunFailed as error:  # the marts run ran and failed: no file was sent
        progress.done()
        print(f"error: {error}", file=sys.stderr)
        print(log.where(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.done()
        print(
            "interrupted: runs already submitted go on (see the UI's run history, tag "
            "ods/started_by); queued ones wait for dagster-daemon (or cancel them there)",
            file=sys.stderr,
        )
        return 130
    if not args.wait:
        states = Counter(run.status.value.lower() for run in runs)
        print(
            f"submitted {len(runs)} run(s) ("
            + ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            + "); they go on without this command:"
        )
        for each, run in zip(submitted, runs, strict=True):
            print(f"  {run.run_id}  {each.client_id} {each.day} ({run.status.value.lower()})")
        print(_ui_hint() + ", Runs; or /runs/<run id>")
        print(log.where())
        return 0
    return _report(sent, config, log)


class _Progress:
    """One line about the runs waited for: rewritten in place on a terminal and cleared at the
    end; with `lines` (--verbose), a line each time it changes; otherwise (a pipe, a cron mail)
    nothing."""

    def __init__(self, out: TextIO, *, lines: bool) -> None:
        self.out = out
        self.live = not lines and out.isatty()
        self.lines = lines
        self.width = 0

    def show(self, text: str) -> None:
        if self.live:
            self.out.write("\r" + text.ljust(self.width))
            self.width = len(text)
        elif self.lines:
            self.out.write(text + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.live and self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.out.flush()
            self.width = 0


@contextlib.contextmanager
def _follow(path: Path, out: TextIO | None) -> Iterator[None]:
    """Copy what is appended to `path` meanwhile to `out` (--verbose), from a thread."""
    if out is None:
        yield
        return
    import threading

    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    stop = threading.Event()

    def copy() -> None:
        with path.open(encoding="utf-8", errors="replace") as source:
            source.seek(0, os.SEEK_END)
            while True:
                stopping = stop.wait(0.2)
                text = source.read()
                if text:
                    out.write(text)
                    out.flush()
                if stopping:
                    return

    follower = threading.Thread(target=copy, name="follow-log", daemon=True)
    follower.start()
    try:
        yield
    finally:
        stop.set()
        follower.join(timeout=5)


def cmd_views(args: argparse.Namespace) -> int:
    """Recreate the union views and dbt's views over the replicas (after a replica reload)."""
    import dagster as dg

    from orchestration import warehouse
    from orchestration.defs import reruns
    from orchestration.defs.code_location import build_definitions

    load_clients()
    warehouse.export_local_default()  # the in-process run and its dbt inherit PG* (warehouse.py)
    log = CommandLog("views", args.verbose)
    print(f"Dagster instance: {_instance_home()}")
    try:
        with log.capture():
            result = reruns.build_views(
                build_definitions(), dg.DagsterInstance.get(), log_level=log.log_level
            )
    except reruns.RunFailed as error:
        print(f"error: {error}", file=sys.stderr)
        print(log.where(), file=sys.stderr)
        return 1
    made = [
        "/".join(m.asset_key.path)
        for node in ("moodle_union_views", "moodle_views")
        for m in result.asset_materializations_for_node(node)
    ]
    union = sum(name.startswith("moodle/") for name in made)
    print(f"recreated {union} union views and {len(made) - union} dbt views (run {result.run_id})")
    print(log.where())
    return 0


def cmd_replica_indexes(args: argparse.Namespace) -> int:
    """Print, or apply, the day-window indexes the replicas lack."""
    import psycopg

    from orchestration import warehouse
    from orchestration.moodle.replica_indexes import apply_indexes, missing_indexes, statements

    config = load_clients()
    replicas = sorted({(c.moodle_schema, c.table_prefix) for c in config.clients.values()})
    with warehouse.connect(autocommit=True) as conn:
        missing = missing_indexes(conn, replicas)
        if not missing:
            print(f"every day-window index is in place on the {len(replicas)} replica schema(s)")
            return 0
        if not args.apply:
            print(f"-- {len(missing)} day-window index(es) missing; run on each replica's primary:")
            for statement in statements(missing):
                print(statement)
            return 0
        try:
            for made in apply_indexes(conn, missing):
                print(f"created {made}")
        except psycopg.errors.InsufficientPrivilege as error:
            print(
                f"error: the warehouse role may not create indexes on the replicas "
                f"({str(error).strip()}); give the statements of `ods replica-indexes --print` "
                "to the replicas' DBA",
                file=sys.stderr,
            )
            return 1
    return 0


def _report(
    runs: list[FileRun], config: ClientsConfig, log: CommandLog, *, sha256: bool = True
) -> int:
    """One line per file: sent (name, feed, day, where, rows, bytes) or FAILED and why."""
    for run in runs:
        if not run.success:
            where = f" in run {run.run_id}" if run.run_id else ""
            print(f"  FAILED {run.file_name} ({run.feed}, day {run.day}){where}: {run.message}")
            continue
        sent = run.delivered
        username = config.clients[run.client_id].sftp.username
        print(
            f"  sent {run.file_name} ({run.feed}, day {run.day}) to "
            f"{username}@{sent['server']}:{sent['remote_path']}: {sent['rows']} rows, "
            f"{sent['bytes']} bytes" + (f", sha256 {sent['sha256']}" if sha256 else "")
        )
        if sent.get("retention_deleted"):
            print(f"    retention removed {', '.join(sent['retention_deleted'])}")
    failed = sum(not run.success for run in runs)
    print(f"{len(runs) - failed} sent, {failed} failed")
    print(log.where())
    return 1 if failed else 0


def _verbose_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--verbose",
        action="store_true",
        help="show dbt's log and Dagster's event log here too (they always go to the log file "
        "under ODS_HOME/logs that the last line names)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ods",
        description="Outbound Data Sync: nightly per-client CSV feeds from Moodle over SFTP.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in _command_modules(TOOLING_MODULES, optional=True):
        module.register(commands)
    commands.add_parser("parse", help="write dbt's manifest (dbt parse), which Dagster reads")
    for name, text in (
        ("resend", "deliver a client's archived files again, byte for byte, without rebuilding"),
        ("rebuild", "rebuild the marts for a client's days from current data, then deliver"),
    ):
        command = commands.add_parser(
            name,
            help=text,
            description=text,
            epilog=QUEUE_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_argument("--client", required=True, help="client id in the clients file")
        command.add_argument(
            "--feed", choices=list(FEEDS), help="one feed (default: every feed the client gets)"
        )
        command.add_argument(
            "--from", dest="first", type=_date, required=True, help="first activity day"
        )
        command.add_argument("--to", dest="last", type=_date, help="last day (default: --from)")
        command.add_argument(
            "--wait",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="wait for the runs and print what each file became (default); --no-wait: print "
            "the runs' ids and return once they are submitted (started, when no dagster-daemon "
            "serves the instance)",
        )
        _verbose_option(command)
    views = commands.add_parser(
        "views",
        help="recreate the union views and dbt's views over the replicas (after a reload)",
        description=(
            "Recreate the Moodle union views and dbt's staging and intermediate views, "
            "idempotently: after a replica was reloaded with DROP SCHEMA … CASCADE (the nightly "
            "marts run does the same by itself)."
        ),
    )
    _verbose_option(views)
    indexes = commands.add_parser(
        "replica-indexes",
        help="print (default) or apply the day-window indexes the replicas lack",
        description=(
            "The marts read one day of each replica's tracking tables; without an index on the "
            "event time that read scans the whole table. The nightly run only reads replicas, so "
            "it reports missing indexes and never creates them. This prints the CREATE INDEX "
            "CONCURRENTLY statements for the replica's DBA, or applies them where the warehouse "
            "role may (CONCURRENTLY: replication keeps writing while they build)."
        ),
    )
    mode = indexes.add_mutually_exclusive_group()
    mode.add_argument("--print", dest="apply", action="store_false", help="print them (default)")
    mode.add_argument("--apply", dest="apply", action="store_true", help="create them now")
    indexes.set_defaults(apply=False)  # --print's store_false would otherwise default to True
    for module in _command_modules(f"orchestration.commands.{name}" for name in COMMAND_MODULES):
        module.register(commands)
    return parser


# Commands that live in a module of their own under orchestration/commands: each module has
# `register(commands)`, which adds its subparser and sets `handler` (args -> exit status) as a
# default of it. Listed here, in the order `ods --help` shows them.
COMMAND_MODULES: tuple[str, ...] = ("contract", "reconcile")


# The local default's commands (up, down, status, env, ui, generate, demo) live with the local
# tooling (ods_local/commands.py), which depends on the product and not the other way round; an
# installation without it (the production image) has the product's commands only.
TOOLING_MODULES = ("ods_local.commands",)


def _command_modules(names: Iterable[str], *, optional: bool = False) -> list[Any]:
    """The modules that add `ods` commands (`register(commands)`; `REFUSALS`, the errors that
    `main` reports as refusals), imported by name. An `optional` one that is not installed is
    left out; a module that is installed but fails to import raises as usual."""
    import importlib

    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if not optional or error.name is None or not name.startswith(error.name):
                raise
    return modules


HANDLERS = {
    "views": cmd_views,
    "replica-indexes": cmd_replica_indexes,
    "parse": cmd_parse,
    "resend": cmd_resend,
    "rebuild": cmd_rebuild,
}


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 1 something ran and failed (a run, a delivery); 2 the request was
    refused before anything ran (usage, clients file, database, schema, local service)."""
    from orchestration.warehouse import DatabaseRefused, WarehouseNotConfigured

    args = _parser().parse_args(argv)
    _quiet_beta_warnings()
    refusals: tuple[type[Exception], ...] = (ConfigError, DatabaseRefused, WarehouseNotConfigured)
    for module in _command_modules(TOOLING_MODULES, optional=True):
        refusals += tuple(getattr(module, "REFUSALS", ()))
    try:
        handler = getattr(args, "handler", None) or HANDLERS[args.command]
        return int(handler(args))
    except refusals as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
