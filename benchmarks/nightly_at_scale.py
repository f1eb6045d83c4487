"""Benchmark: a real night at host scale, run the way production runs it.

Generates N small-to-medium Moodle sites (releases 3.11-5.0, both SCORM designs, zones mostly
Europe/London, some America/New_York, America/Los_Angeles and Australia/Sydney; feeds, columns and
file options varied), writes a clients file with one account each on local SFTP servers, and runs
one night through a Dagster instance of its own: `dagster-daemon run -w workspace.yaml`, the queued
run coordinator with the README's concurrency limits, runs in their own processes. For each zone
the benchmark evaluates that zone's 03:00 marts tick and submits exactly what it requests to the
run queue; the daemon launches it and its files sensor launches the files runs. Zones run one
after the other, as the clock has them hours apart (`--zones-at-once` overlaps them).

It prints, per zone and for the night: trigger to last delivered file, the stages (union views,
dbt marts, files), runs launched per job, each run's start-up (launch to first step) and real
work (its steps), the machine's peak memory, and files delivered against expected. Several sizes
(`--clients 20,50,200`) run one after the other, each on a fresh warehouse database and folder,
and end with a table of the growth per client.

    .venv/bin/python benchmarks/nightly_at_scale.py [--clients 200 | --clients 20,50,200]
        [--learners-range 20-200] [--days 15] [--work .ods/bench-night] [--keep [--reuse]]
        [--sftp-hosts 4] [--zones-at-once] [--timeout 3600] [--verbose]

The clients' SFTP servers are `--sftp-hosts` local servers (127.0.0.1, .2, …, one port), so the
per-server limit of dagster.yaml applies as it would to that many client servers. The work folder
holds PostgreSQL (pgdata/), the generated sites (database ods_sites, copied as the template of each
size's warehouse database night_n<N>), and per size n<N>/: clients.yaml, SFTP folders and keys,
the archive, the Dagster instance (dagster/) and the daemon's and servers' logs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import os
import random
import runpy
import shutil
import signal
import statistics
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import nightly_harness as harness  # noqa: E402

# --- the Dagster layout the night runs against (issue 13); one place to adjust ---------------
MARTS_JOB = "daily_marts_job"
FILES_JOBS: tuple[str, ...] = (
    "client_files_job",
)  # current layout: one `<feed>_files_job` per feed
FILES_SENSOR = "files_after_marts_sensor"
SFTP_HOST_TAG = "ods/sftp_host"
PARENT_TAG = "dagster/parent_run_id"  # a retry names the run it retries
DELIVERY_ASSET_SUFFIX = "_delivery"  # `<feed>_delivery`: one materialisation per file delivered
UNION_VIEWS_STEP_HINT = "union"  # the marts run's step whose key contains this builds the views
MARTS_HOUR = 3


def zone_slug(zone: str) -> str:
    return zone.lower().replace("/", "_").replace("-", "_")


def marts_schedule_name(zone: str) -> str:
    """One marts schedule per zone (issue 13); the current layout has `daily_marts_schedule`."""
    return f"daily_marts_{zone_slug(zone)}"


PER_ZONE_SCHEDULES = True  # False: one schedule, in the clients file's zone, builds everyone


def use_current_layout() -> None:
    """The layout before issue 13 (`--layout current`), to try the harness on small N."""
    global FILES_JOBS, PER_ZONE_SCHEDULES
    FILES_JOBS = tuple(f"{feed}_files_job" for feed in FEED_NAMES)
    PER_ZONE_SCHEDULES = False


# --- the fleet --------------------------------------------------------------------------------
FILE_ZONE = "Europe/London"
# Every 10 clients: 7 in London, one each abroad (a prefix of the fleet keeps the mix).
ZONE_CYCLE = (
    ("Europe/London", "America/New_York")
    + ("Europe/London",) * 2
    + (
        "America/Los_Angeles",
        "Europe/London",
        "Australia/Sydney",
    )
    + ("Europe/London",) * 3
)
RELEASES = ("3.11", "4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "5.0")
FEED_NAMES = ("scorm", "f2f", "quiz", "completion")
SEED = 13
SITES_DATABASE = "ods_sites"
DEFAULT_PORT = 2322


def _shipped_limits() -> tuple[int, int]:
    """deploy/dagster.yaml's max_concurrent_runs and per-host limit: the benchmark's defaults."""
    import yaml

    runs = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["concurrency"]["runs"]
    per_host = [t["limit"] for t in runs["tag_concurrency_limits"] if t["key"] == SFTP_HOST_TAG]
    return int(runs["max_concurrent_runs"]), int(per_host[0])


MAX_CONCURRENT_RUNS, RUNS_PER_SFTP_HOST = _shipped_limits()
# Clients of a real host sit on many servers; 4 local servers x 2 runs each fill the run queue's
# 8, so the queue, not one shared server, is what limits the night (as it would in production).
SFTP_HOSTS = -(-MAX_CONCURRENT_RUNS // RUNS_PER_SFTP_HOST)


@dataclass(frozen=True)
class ClientPlan:
    """One client of the fleet: its site and its entry in the clients file."""

    client_id: str
    release: str
    prefix: str
    learners: int
    courses: int
    zone: str
    feeds: dict[str, dict[str, Any]]
    options: dict[str, Any]
    host_index: int

    @property
    def schema(self) -> str:
        return f"moodle_{self.client_id}"


def plan_fleet(n: int, learners: tuple[int, int], hosts: int) -> list[ClientPlan]:
    """N clients, the same for the same arguments: sizes skewed small (log-uniform)."""
    from orchestration.feeds import FEEDS

    rng = random.Random(SEED)
    plans = []
    for i in range(n):
        size = round(learners[0] * (learners[1] / learners[0]) ** rng.random())
        feeds = _feeds_of(rng, FEEDS)
        options: dict[str, Any] = {}
        if rng.random() < 0.3:
            options["file_date"] = "activity_day"
        if rng.random() < 0.3:
            options["line_ending"] = "lf"
        if rng.random() < 0.15:
            options["byte_order_mark"] = True
        if rng.random() < 0.2:
            options["neutralise_formulas"] = True
        plans.append(
            ClientPlan(
                client_id=f"c{i + 1:03d}",
                release=RELEASES[i % len(RELEASES)],
                prefix="m_" if i % 9 == 4 else "mdl_",
                learners=max(size, 7),
                courses=2 + min(4, size // 50),
                zone=ZONE_CYCLE[i % len(ZONE_CYCLE)],
                feeds=feeds,
                options=options,
                host_index=i % hosts,
            )
        )
    return plans


def _feeds_of(rng: random.Random, feeds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Most clients take all four feeds; some fewer. A third rename or reorder columns."""
    names = list(FEED_NAMES) if rng.random() < 0.6 else rng.sample(FEED_NAMES, rng.randint(1, 3))
    chosen: dict[str, dict[str, Any]] = {}
    for name in sorted(names, key=FEED_NAMES.index):
        feed = feeds[name]
        settings: dict[str, Any] = {}
        if rng.random() < 0.35:
            columns = list(feed.default_columns)
            extra = [c for c in feed.column_names if c not in columns]
            columns += rng.sample(extra, min(len(extra), rng.randint(0, 2)))
            rng.shuffle(columns)
            upper = rng.random() < 0.5
            settings["columns"] = {
                c: c.upper() if upper else f"{feed.column(c).header} ({feed.prefix})"
                for c in columns
            }
        if feed.records and rng.random() < 0.3:
            settings["records"] = "all"
        chosen[name] = settings
    return chosen


# --- sites -----------------------------------------------------------------------------------


def generate_sites(
    conninfo: str, plans: list[ClientPlan], first: dt.date, days: int, marker: Path, reuse: bool
) -> float | None:
    """Generate every site into SITES_DATABASE; None when `reuse` found the same sites there."""
    import psycopg

    from synthetic_moodle import SiteSpec, generate_site

    wanted = json.dumps(
        {"first": first.isoformat(), "days": days, "plans": [_site_of(p) for p in plans]}
    )
    if reuse and marker.exists() and _holds(json.loads(marker.read_text()), json.loads(wanted)):
        return None
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"drop database if exists {SITES_DATABASE}")
        conn.execute(f"create database {SITES_DATABASE}")
    with psycopg.connect(conninfo.replace("dbname=postgres", f"dbname={SITES_DATABASE}")) as conn:
        conn.autocommit = True
        for seed, plan in enumerate(plans, start=1):
            spec = SiteSpec(
                schema=plan.schema,
                release=plan.release,
                prefix=plan.prefix,
                seed=seed,
                learners=plan.learners,
                courses=plan.courses,
                start=first,
                days=days,
                timezone=plan.zone,
            )
            generate_site(conn, spec)
    marker.write_text(wanted)
    return time.perf_counter() - started


def _site_of(plan: ClientPlan) -> dict[str, Any]:
    """What a client's generated site depends on (not its feeds, options or server)."""
    site = asdict(plan)
    return {
        key: site[key] for key in ("client_id", "release", "prefix", "learners", "courses", "zone")
    }


def _holds(made: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether sites made earlier include the wanted ones (a fleet's plan is a prefix of a larger
    one's, so the sites of --clients 200 serve --clients 20 too)."""
    return (
        made["first"] == wanted["first"]
        and made["days"] == wanted["days"]
        and made["plans"][: len(wanted["plans"])] == wanted["plans"]
    )


def fresh_warehouse(conninfo: str, database: str) -> None:
    """A new warehouse database holding the generated sites (a file-level copy of them)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"drop database if exists {database}")
        conn.execute(f"create database {database} template {SITES_DATABASE}")


# --- SFTP accounts and the clients file -------------------------------------------------------


def sftp_hosts(count: int) -> list[str]:
    """Loopback addresses standing in for distinct client servers (Linux routes all 127/8)."""
    return [f"127.0.0.{i + 1}" for i in range(count)]


def write_accounts(folder: Path, plans: list[ClientPlan]) -> Path:
    """One key pair, authorized key and folder per client; returns the server's host key file."""
    from orchestration.delivery.keys import generate_key_pair

    keys, users = folder / "sftp" / "client_keys", folder / "sftp" / "users"
    keys.mkdir(parents=True)
    users.mkdir(parents=True)
    host_key = folder / "sftp" / "ssh_host_ed25519_key"
    generate_key_pair(host_key, "bench-night-host")
    for plan in plans:
        public = generate_key_pair(keys / plan.client_id, f"bench-{plan.client_id}")
        (users / f"{plan.client_id}.pub").write_text(public + "\n")
        (folder / "sftp" / "root" / plan.client_id / "outbound").mkdir(parents=True)
    return host_key


def write_clients_file(
    folder: Path, plans: list[ClientPlan], hosts: list[str], port: int, first_day: dt.date
) -> Path:
    import yaml

    clients = {}
    for plan in plans:
        entry: dict[str, Any] = {
            "name": f"Client {plan.client_id}",
            "moodle_schema": plan.schema,
            "feeds": plan.feeds,
            "sftp": {
                "host": hosts[plan.host_index],
                "port": port,
                "username": plan.client_id,
                "directory": "/outbound",
                "private_key_path": f"sftp/client_keys/{plan.client_id}",
                "host_key_file": "sftp/ssh_host_ed25519_key.pub",
            },
            **plan.options,
        }
        if plan.prefix != "mdl_":
            entry["table_prefix"] = plan.prefix
        if plan.zone != FILE_ZONE:
            entry["timezone"] = plan.zone
        clients[plan.client_id] = entry
    document = {
        "timezone": FILE_ZONE,
        "first_day": first_day.isoformat(),
        "lookback_days": 14,
        "archive_dir": "archive",
        "clients": clients,
    }
    path = folder / "clients.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def expected_files(folder: Path, plans: list[ClientPlan], day: dt.date) -> dict[Path, str]:
    """Every subscribed (client, feed) file of `day` on the server -> its client's zone."""
    from orchestration.days import file_name
    from orchestration.feeds import FEEDS

    expected = {}
    for plan in plans:
        for feed in plan.feeds:
            name = file_name(FEEDS[feed].prefix, day, plan.options.get("file_date", "next_day"))
            expected[folder / "sftp" / "root" / plan.client_id / "outbound" / name] = plan.zone
    return expected


# --- one night ---------------------------------------------------------------------------------


@dataclass
class ZoneNight:
    zone: str
    clients: int
    triggered: float
    marts_runs: list[str]
    skipped: str | None = None
    finished: float | None = None
    last_file: float | None = None
    timed_out: bool = False


@dataclass
class Night:
    n: int
    zones: list[ZoneNight] = field(default_factory=list)
    runs: list[harness.RunTiming] = field(default_factory=list)
    expected: dict[Path, str] = field(default_factory=dict)
    delivered: dict[Path, float] = field(default_factory=dict)
    memory_baseline: int = 0
    memory_peak: int = 0
    generation_seconds: float | None = None
    daemon_ready_seconds: float = 0.0
    limits: dict[str, int] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)

    @property
    def wall(self) -> float:
        first = min(z.triggered for z in self.zones)
        ends = [z.last_file or z.finished or first for z in self.zones]
        return max(ends) - first

    @property
    def busy(self) -> float:
        """Sum of the zones' walls: the machine's time for the night when zones do not overlap."""
        return sum(zone_wall(z) for z in self.zones)


def zone_wall(zone: ZoneNight) -> float:
    return (zone.last_file or zone.finished or zone.triggered) - zone.triggered


def night_tick_time(zone: str, night: dt.date) -> dt.datetime:
    return dt.datetime.combine(night, dt.time(MARTS_HOUR), tzinfo=ZoneInfo(zone))


def zone_groups(plans: list[ClientPlan], night: dt.date) -> list[tuple[str, list[ClientPlan]]]:
    """(zone whose schedule ticks, its clients), in the order the clock ticks them."""
    if not PER_ZONE_SCHEDULES:
        return [(FILE_ZONE, plans)]
    zones = sorted({p.zone for p in plans}, key=lambda z: night_tick_time(z, night))
    return [(zone, [p for p in plans if p.zone == zone]) for zone in zones]


def schedule_for(zone: str) -> str:
    return marts_schedule_name(zone) if PER_ZONE_SCHEDULES else "daily_marts_schedule"


@dataclass
class NightSetup:
    args: argparse.Namespace
    folder: Path
    plans: list[ClientPlan]
    night: dt.date
    env: dict[str, str]
    processes: harness.Processes
    pg: Any = None
    drill: FaultDrill | None = None


def run_night(setup: NightSetup, generation: float | None) -> Night:
    """Start the SFTP servers and the daemon, drive each zone's 03:00 tick, and read it back."""
    import dagster as dg

    args, folder = setup.args, setup.folder
    result = Night(n=len(setup.plans), generation_seconds=generation)
    day = setup.night - dt.timedelta(days=1)
    result.expected = expected_files(folder, setup.plans, day)
    servers = _start_sftp_servers(setup)
    os.environ.update(setup.env)
    defs = _load_definitions()
    # The instance's tables are created here, before the daemon opens it, so that two processes
    # never create them at once.
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
        daemon = harness.Daemon(setup.processes, setup.env, folder / "daemon.log")
        daemon.start()
        result.daemon_ready_seconds = harness.wait_for_daemon(
            instance, setup.processes, daemon.pid, args.start_timeout
        )
        if args.faults:
            setup.drill = FaultDrill(setup, result, instance, daemon, servers)
        with harness.remote_workspace(instance, ROOT / "workspace.yaml") as workspace:
            sampler = harness.MemorySampler()
            sampler.start()
            try:
                _drive_zones(setup, result, defs, instance, workspace, daemon)
            finally:
                sampler.stop()
            result.memory_baseline, result.memory_peak = sampler.baseline, sampler.peak
        since = min(z.triggered for z in result.zones) - 1
        result.runs = harness.read_runs(instance, since, DELIVERY_ASSET_SUFFIX)
    result.delivered = _delivered_files(result.expected)
    result.limits = {"max_concurrent_runs": args.max_runs, "per_sftp_host": args.per_host}
    if setup.drill is not None:
        result.faults = setup.drill.done
    return result


def _load_definitions() -> Any:
    """The code location as workspace.yaml loads it, in this process, to evaluate the ticks."""
    try:
        return runpy.run_module("orchestration.definitions")["defs"]
    except Exception as error:
        raise harness.BenchmarkError(
            f"the code location orchestration.definitions does not load: "
            f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
        ) from error


def _start_sftp_servers(setup: NightSetup) -> dict[str, int]:
    """One server per host address; host -> its pid."""
    sftp = setup.folder / "sftp"
    pids = {}
    for host in sftp_hosts(setup.args.sftp_hosts):
        if harness.port_in_use(host, setup.args.port):
            raise harness.BenchmarkError(f"{host}:{setup.args.port} is in use; pass --port")
        pid = setup.processes.start(
            f"SFTP server {host}",
            [
                sys.executable,
                "-m",
                "ods_local.sftp_server",
                "--root",
                str(sftp / "root"),
                "--users-dir",
                str(sftp / "users"),
                "--host-key",
                str(sftp / "ssh_host_ed25519_key"),
                "--host",
                host,
                "--port",
                str(setup.args.port),
            ],
            setup.env,
            setup.folder / f"sftp-{host}.log",
        )
        harness.wait_for_port(host, setup.args.port, f"SFTP server {host}", setup.processes, pid)
        pids[host] = pid
    return pids


def _drive_zones(
    setup: NightSetup,
    result: Night,
    defs: Any,
    instance: Any,
    workspace: Any,
    daemon: harness.Daemon,
) -> None:
    groups = zone_groups(setup.plans, setup.night)
    for zone, plans in groups:
        result.zones.append(_trigger(setup, zone, plans, defs, instance, workspace))
        if not setup.args.zones_at_once:
            _wait_for_zone(setup, result, result.zones[-1], plans, instance, daemon)
    if setup.args.zones_at_once:
        for zone_night, (_, plans) in zip(result.zones, groups, strict=True):
            _wait_for_zone(setup, result, zone_night, plans, instance, daemon)


def _trigger(
    setup: NightSetup, zone: str, plans: list[ClientPlan], defs: Any, instance: Any, workspace: Any
) -> ZoneNight:
    name = schedule_for(zone)
    at = night_tick_time(zone, setup.night)
    triggered = time.time()
    requests, skipped = harness.evaluate_tick(defs, instance, name, at)
    run_ids = [
        harness.submit_request(
            defs, instance, workspace, request, job_name=MARTS_JOB, schedule_name=name
        )
        for request in requests
    ]
    print(f"  {zone}: tick {at:%Y-%m-%d %H:%M %Z} of {name}: {len(run_ids)} run(s) queued")
    return ZoneNight(zone, len(plans), triggered, run_ids, skipped=skipped)


def _wait_for_zone(
    setup: NightSetup,
    result: Night,
    zone: ZoneNight,
    plans: list[ClientPlan],
    instance: Any,
    daemon: harness.Daemon,
) -> None:
    """Until every file of the zone is on the server and no run is in flight or awaiting its
    retry; or, after a failure, until nothing has run for the sensor's grace period; or the
    timeout."""
    if not zone.marts_runs:  # the tick requested nothing: no night to wait for
        zone.finished = zone.triggered
        print(f"  {zone.zone}: the tick requested no run ({zone.skipped or 'no skip message'})")
        return
    wanted = {path for path, z in result.expected.items() if z in {p.zone for p in plans}}
    if not PER_ZONE_SCHEDULES:
        wanted = set(result.expected)
    idle_since: float | None = None
    while True:
        if setup.drill is not None:
            setup.drill.step()
        daemon.check_alive()
        now = time.time()
        present = {path for path in wanted if path.exists()}
        # A failed run whose retry the daemon has yet to create is work still to come.
        active = harness.active_runs(instance, zone.triggered - 1) + harness.runs_awaiting_retry(
            instance, zone.triggered - 1
        )
        idle_since = None if active else (idle_since or now)
        drilling = setup.drill is not None and not setup.drill.finished
        if idle_since is not None and (
            (present == wanted and not drilling) or now - idle_since > setup.args.idle_grace
        ):
            break
        if now - zone.triggered > setup.args.timeout:
            zone.timed_out = True
            print(
                f"  TIMEOUT {zone.zone}: {len(present)}/{len(wanted)} files after "
                f"{setup.args.timeout:.0f} s, {len(active)} run(s) in flight: "
                + ", ".join(f"{r.job_name} {r.status.value}" for r in active[:5])
            )
            break
        time.sleep(1)
    zone.finished = time.time()
    mtimes = [path.stat().st_mtime for path in wanted if path.exists()]
    zone.last_file = max(mtimes) if mtimes else None
    print(f"  {zone.zone}: {len(present)}/{len(wanted)} files, {zone_wall(zone):.0f} s")


def _delivered_files(expected: dict[Path, str]) -> dict[Path, float]:
    return {path: path.stat().st_mtime for path in expected if path.exists()}


# --- the restart drill (--faults) ----------------------------------------------------------

FAULTS = ("worker", "daemon", "code-server")
DRILL_WAIT_SECONDS = 120


class FaultDrill:
    """Kills processes of the night at chosen moments, one fault per files run in progress, in
    the order given, and records what it did (the summary's `faults`):

    - worker: once the client's ledger records the run's first delivery, the SFTP server is
      paused (SIGSTOP), the run's own process killed (SIGKILL) and the server resumed, so the
      run dies between two deliveries;
    - daemon: once every marts run has succeeded, `dagster-daemon`'s whole process group is
      killed (the daemon, its code server and the runs in progress: a machine or container
      dying), and the daemon started again, its run monitoring's max_runtime_seconds set to
      --restart-max-runtime so that the orphaned runs are failed in test time;
    - code-server: the daemon's code server process alone is killed.
    """

    def __init__(
        self,
        setup: NightSetup,
        night: Night,
        instance: Any,
        daemon: harness.Daemon,
        servers: dict[str, int],
    ) -> None:
        self.setup, self.night, self.instance = setup, night, instance
        self.daemon, self.servers = daemon, servers
        self.pending: list[str] = list(setup.args.faults)
        self.done: list[dict[str, Any]] = []
        self.targeted: set[str] = set()
        self.since = time.time()

    @property
    def finished(self) -> bool:
        return not self.pending

    def step(self) -> None:
        if not self.pending:
            return
        kind = self.pending[0]
        if kind == "daemon" and not self._marts_done():
            return
        run = self._files_run_in_progress()
        if run is None:
            return
        self.targeted.add(run.run_id)
        record = {"worker": self._kill_worker, "daemon": self._kill_daemon}.get(
            kind, self._kill_code_server
        )(run)
        if record is not None:
            record |= {"fault": kind, "run_id": run.run_id, "at": time.time()}
            record["partition"] = run.tags.get("dagster/partition")
            self.done.append(record)
            self.pending.pop(0)
            print(f"  fault {kind}: {json.dumps(record, default=str)}", flush=True)

    def _marts_done(self) -> bool:
        """Every zone triggered, and each of its marts runs succeeded."""
        if len(self.night.zones) < len(zone_groups(self.setup.plans, self.setup.night)):
            return False
        ids = [run_id for zone in self.night.zones for run_id in zone.marts_runs]
        runs = [self.instance.get_run_by_id(run_id) for run_id in ids]
        return all(run is not None and run.status.value == "SUCCESS" for run in runs)

    def _files_run_in_progress(self) -> Any:
        """A files run, started, not met by a fault yet. For the daemon's kill, which fails every
        run in flight, no retry may be in flight: the worker fault's retry is seen through to its
        end rather than killed again (it would need a retry of its own)."""
        active = harness.active_runs(self.instance, self.since - 3600)
        if self.pending[0] == "daemon" and any(PARENT_TAG in run.tags for run in active):
            return None
        for run in active:
            if (
                run.job_name in FILES_JOBS
                and run.run_id not in self.targeted
                and run.status.value == "STARTED"
                and harness.run_worker_pid(self.instance, run.run_id) is not None
            ):
                return run
        return None

    def _client_files(self, run: Any) -> list[Path]:
        client = run.tags.get("dagster/partition", "").split("|")[0]
        return [path for path in self.night.expected if path.parent.parent.name == client]

    def _kill_worker(self, run: Any) -> dict[str, Any] | None:
        pid = harness.run_worker_pid(self.instance, run.run_id)
        files = self._client_files(run)
        client = run.tags.get("dagster/partition", "").split("|")[0]
        plan = next(p for p in self.setup.plans if p.client_id == client)
        server = self.servers[sftp_hosts(self.setup.args.sftp_hosts)[plan.host_index]]
        # Between two deliveries: once the ledger holds the run's first delivery (a kill between
        # a file's rename and its ledger line, a few milliseconds, would have it sent again).
        ledger_file = self.setup.folder / "archive" / client / "deliveries.jsonl"
        deadline = time.monotonic() + DRILL_WAIT_SECONDS
        for looks in itertools.count():
            recorded = _recorded_by(ledger_file, run.run_id)
            if recorded:
                break
            ended = looks % 50 == 0 and self.instance.get_run_by_id(run.run_id).is_finished
            if ended or time.monotonic() > deadline:
                return None  # it ended before a file arrived: the next run gets the fault
            time.sleep(0.01)
        self.setup.processes.signal(server, signal.SIGSTOP)
        try:
            os.kill(check_pid(pid), signal.SIGKILL)
        finally:
            self.setup.processes.signal(server, signal.SIGCONT)
        folder = files[0].parent
        recorded = _recorded_by(ledger_file, run.run_id)
        delivered = {name: (folder / name).stat().st_ino for name in recorded}
        return {"pid": pid, "delivered_before": delivered, "files": len(files)}

    def _kill_daemon(self, run: Any) -> dict[str, Any] | None:
        in_flight = [r.run_id for r in harness.active_runs(self.instance, self.since - 3600)]
        delivered = {
            p.parent.parent.name + "/" + p.name: p.stat().st_ino
            for p in self.night.expected
            if p.exists()
        }
        killed = time.time()
        self.daemon.kill()
        settings = harness.instance_settings(
            self.setup.pg,
            max_runs=self.setup.args.max_runs,
            per_host=self.setup.args.per_host,
            host_tag=SFTP_HOST_TAG,
            run_monitoring={
                "max_runtime_seconds": int(self.setup.args.restart_max_runtime),
                "poll_interval_seconds": 5,
            },
        )
        harness.write_instance_yaml(self.setup.folder / "dagster", settings)
        self.daemon.start()
        harness.wait_for_daemon(
            self.instance, self.setup.processes, self.daemon.pid, self.setup.args.start_timeout
        )
        return {
            "in_flight": in_flight,
            "delivered_before": delivered,
            "down_seconds": round(time.time() - killed, 1),
        }

    def _kill_code_server(self, run: Any) -> dict[str, Any] | None:
        pid = self.daemon.code_server_pid()
        if pid is None:
            return None
        worker = harness.run_worker_pid(self.instance, run.run_id)
        os.kill(pid, signal.SIGKILL)
        return {"pid": pid, "worker": worker}


def _recorded_by(ledger_file: Path, run_id: str) -> list[str]:
    """The file names the ledger records as delivered by that run."""
    try:
        lines = ledger_file.read_text().splitlines()
    except FileNotFoundError:
        return []
    names = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("run_id") == run_id:
            names.append(entry["file_name"])
    return names


def check_pid(pid: int | None) -> int:
    if pid is None:
        raise harness.BenchmarkError("a run in progress has no process id in its event log")
    return pid


# --- summary file (--summary) ---------------------------------------------------------------


def queue_figures(night: Night) -> dict[str, Any]:
    """The most runs in progress at once, of all runs and of the files runs of each SFTP host,
    from the run records' launch and end events."""
    now = time.time()
    spans = {r.run_id: harness.in_progress_span(r, now) for r in night.runs}
    hosts: dict[str, list[tuple[float, float]]] = {}
    for run in night.runs:
        span = spans[run.run_id]
        if run.job in FILES_JOBS and span is not None and SFTP_HOST_TAG in run.tags:
            hosts.setdefault(run.tags[SFTP_HOST_TAG], []).append(span)
    return {
        "most_runs_at_once": harness.most_at_once([s for s in spans.values() if s]),
        "most_files_runs_at_once_per_host": {h: harness.most_at_once(v) for h, v in hosts.items()},
    }


def write_summary(path: Path, nights: list[Night]) -> None:
    """The nights as JSON, for tests: runs, files, the queue's figures and the faults."""
    document = [
        {
            "clients": night.n,
            "limits": night.limits,
            "queue": queue_figures(night),
            "expected": sorted(str(p) for p in night.expected),
            "delivered": sorted(str(p) for p in night.delivered),
            "runs": [asdict(run) for run in night.runs],
            "faults": night.faults,
        }
        for night in nights
    ]
    path.write_text(json.dumps(document, indent=1, default=str))


def _print_queue(night: Night) -> None:
    figures = queue_figures(night)
    per_host = figures["most_files_runs_at_once_per_host"]
    print(
        f"queue: at most {figures['most_runs_at_once']} runs at once "
        f"(max_concurrent_runs {night.limits.get('max_concurrent_runs')}); files runs at once "
        f"per SFTP host at most {max(per_host.values(), default=0)} (limit "
        f"{night.limits.get('per_sftp_host')}): "
        + ", ".join(f"{h} {n}" for h, n in sorted(per_host.items()))
    )


# --- report -------------------------------------------------------------------------------


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    return (
        f"mean {statistics.fmean(values):.2f} s, median {statistics.median(values):.2f} s, "
        f"max {max(values):.2f} s"
    )


def _gb(value: int) -> str:
    return f"{value / 2**30:.2f} GB"


def print_night(night: Night, verbose: bool) -> None:
    print(f"\n== night of {night.n} clients ==")
    if night.generation_seconds is not None:
        print(f"sites generated in {night.generation_seconds:.1f} s (not part of the night)")
    print(f"daemon ready in {night.daemon_ready_seconds:.1f} s (not part of the night)")
    for zone in night.zones:
        note = " TIMED OUT" if zone.timed_out else ""
        note += f" (tick skipped: {zone.skipped})" if zone.skipped else ""
        deliveries = [
            at
            for run in night.runs
            if run.job in FILES_JOBS and _zone_of_run(run, night) == zone.zone
            for at in run.deliveries
        ]
        if deliveries:
            note += f"; last delivery materialisation at {max(deliveries) - zone.triggered:.1f} s"
        print(
            f"zone {zone.zone:<20} {zone.clients:>4} clients  trigger to last file "
            f"{zone_wall(zone):7.1f} s{note}"
        )
    print(
        f"night: first trigger to last file {night.wall:.1f} s; zones' walls summed {night.busy:.1f} s"
    )
    _print_stages(night)
    _print_runs(night)
    _print_queue(night)
    for fault in night.faults:
        print(f"fault {fault['fault']}: run {fault['run_id'][:8]} ({fault['partition']})")
    _print_files(night, verbose)
    print(
        f"memory: peak {_gb(night.memory_peak)} used on the machine, "
        f"{_gb(night.memory_peak - night.memory_baseline)} above the {_gb(night.memory_baseline)} "
        "before the night"
    )
    print_summary_row(night)


@dataclass
class ZoneStages:
    """Seconds in each stage of one zone's night, from the event log."""

    union_views: float
    dbt: float
    marts_run: float
    sensor_gap: float | None
    files: float | None


def zone_stages(night: Night, zone: ZoneNight) -> ZoneStages:
    marts = [r for r in night.runs if r.run_id in zone.marts_runs]
    files = [r for r in night.runs if r.job in FILES_JOBS and _zone_of_run(r, night) == zone.zone]
    union = dbt = 0.0
    for run in marts:
        for key, (start, end) in run.steps.items():
            if UNION_VIEWS_STEP_HINT in key:
                union += end - start
            else:
                dbt += end - start
    marts_span = [(r.starting, r.ended) for r in marts if r.starting and r.ended]
    starts = [r.starting for r in files if r.starting]
    ends = [r.ended for r in files if r.ended]
    gap = min(starts) - max(e for _, e in marts_span) if starts and marts_span else None
    return ZoneStages(
        union_views=union,
        dbt=dbt,
        marts_run=sum(e - s for s, e in marts_span),
        sensor_gap=gap,
        files=max(ends) - min(starts) if starts and ends else None,
    )


def _print_stages(night: Night) -> None:
    for zone in night.zones:
        stages = zone_stages(night, zone)
        gap = "-" if stages.sensor_gap is None else f"{stages.sensor_gap:.1f} s"
        files = "-" if stages.files is None else f"{stages.files:.1f} s"
        print(
            f"stages {zone.zone:<20} union views {stages.union_views:.1f} s, dbt "
            f"{stages.dbt:.1f} s (marts run {stages.marts_run:.1f} s); marts end to first files "
            f"run {gap}; files runs first start to last end {files}"
        )
    marts = [r for r in night.runs if r.job == MARTS_JOB]
    steps: dict[str, float] = {}
    for run in marts:
        for key, (start, end) in run.steps.items():
            steps[key] = steps.get(key, 0.0) + end - start
    print(
        "marts steps, all zones: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(steps.items()))
    )


def print_summary_row(night: Night) -> None:
    """The night in one row, as the issue's table has it."""
    files = [r for r in night.runs if r.job in FILES_JOBS]
    stages = [zone_stages(night, zone) for zone in night.zones]
    start_up = [r.start_up for r in files if r.start_up is not None]
    mean = statistics.fmean
    print(
        "\n| clients | files runs | marts stage | files stage | start-up per files run "
        "| real work per files run | night (zones summed) | peak memory |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {night.n} | {len(files)} | {sum(s.marts_run for s in stages):.0f} s "
        f"| {sum(s.files or 0 for s in stages):.0f} s "
        f"| {mean(start_up) if start_up else 0:.1f} s "
        f"| {mean([r.work for r in files]) if files else 0:.2f} s "
        f"| {night.busy:.0f} s | {_gb(night.memory_peak)} |"
    )


def _zone_of_run(run: harness.RunTiming, night: Night) -> str | None:
    if not PER_ZONE_SCHEDULES:
        return FILE_ZONE
    key = run.tags.get("dagster/partition/client") or run.tags.get("dagster/partition", "")
    client = key.split("|")[0]
    for path, zone in night.expected.items():
        if path.parent.parent.name == client:
            return zone
    return None


def _print_runs(night: Night) -> None:
    by_job = Counter(r.job for r in night.runs)
    print("runs: " + ", ".join(f"{job} {count}" for job, count in sorted(by_job.items())))
    for job in sorted(by_job):
        runs = [r for r in night.runs if r.job == job]
        queued = [r.queued for r in runs if r.queued is not None]
        start_up = [r.start_up for r in runs if r.start_up is not None]
        print(f"  {job}: queued {_stats(queued)}")
        print(f"  {job}: start-up (launch to first step) {_stats(start_up)}")
        print(f"  {job}: real work (its steps) {_stats([r.work for r in runs])}")
    statuses = Counter(r.status for r in night.runs)
    print("run statuses: " + ", ".join(f"{s} {c}" for s, c in sorted(statuses.items())))


def _print_files(night: Night, verbose: bool) -> None:
    deliveries = sum(len(r.deliveries) for r in night.runs)
    missing = sorted(set(night.expected) - set(night.delivered))
    print(
        f"files: {len(night.delivered)} delivered of {len(night.expected)} expected; "
        f"{deliveries} delivery materialisations"
    )
    for path in missing[: None if verbose else 10]:
        print(f"  missing: {path.parent.parent.name}/{path.name}")
    failed = [r for r in night.runs if r.status == "FAILURE"]
    for run in failed[: None if verbose else 10]:
        where = run.tags.get("dagster/partition", "")
        print(f"  failed: {run.job} {where} {run.run_id[:8]}: {'; '.join(run.errors)}")


def print_growth(nights: list[Night]) -> None:
    print(
        "\n| clients | night wall | zones summed | per-client cost | peak memory (above idle) | runs |"
    )
    print("|---|---|---|---|---|---|")
    previous: Night | None = None
    for night in nights:
        cost = "-"
        if previous is not None:
            cost = f"{(night.busy - previous.busy) / (night.n - previous.n):.2f} s"
        print(
            f"| {night.n} | {night.wall:.0f} s | {night.busy:.0f} s | {cost} | "
            f"{_gb(night.memory_peak)} ({_gb(night.memory_peak - night.memory_baseline)}) | "
            f"{len(night.runs)} |"
        )
        previous = night


# --- command line -------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",")})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("--clients: one or more positive numbers, e.g. 20,50,200")
    return sizes


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    first, last = int(low), int(high or low)
    if first < 7 or last < first:
        raise argparse.ArgumentTypeError("--learners-range: LOW-HIGH with 7 <= LOW <= HIGH")
    return first, last


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=_sizes, default=[200], help="N, or sizes: 20,50,200")
    parser.add_argument("--learners-range", type=_range, default=(20, 200), help="e.g. 20-200")
    parser.add_argument(
        "--days", type=int, default=15, help="days of activity up to the night's day"
    )
    parser.add_argument("--work", type=Path, default=ROOT / ".ods" / "bench-night")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and PostgreSQL")
    parser.add_argument("--reuse", action="store_true", help="reuse the sites of a --keep run")
    parser.add_argument(
        "--verbose", action="store_true", help="list every missing file and failure"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="SFTP port (all hosts)")
    parser.add_argument(
        "--sftp-hosts",
        type=int,
        default=SFTP_HOSTS,
        help="SFTP servers the clients spread over, on 127.0.0.1, .2, …: each is an "
        f"{SFTP_HOST_TAG} value, limited to {RUNS_PER_SFTP_HOST} runs at a time "
        "(default: enough to fill max_concurrent_runs; 1 is every client on one server)",
    )
    parser.add_argument(
        "--layout",
        choices=["issue13", "current"],
        default="issue13",
        help="Dagster layout: per-zone schedules and one files run per client (issue13), or "
        "one schedule and a files run per feed (current)",
    )
    parser.add_argument(
        "--max-runs",
        type=int,
        default=MAX_CONCURRENT_RUNS,
        help="the instance's concurrency.runs.max_concurrent_runs (default: deploy/dagster.yaml's)",
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=RUNS_PER_SFTP_HOST,
        help=f"files runs at once per {SFTP_HOST_TAG} value (default: deploy/dagster.yaml's)",
    )
    parser.add_argument(
        "--summary", type=Path, help="write the night's runs, files and queue figures as JSON"
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=[],
        help="restart drill: kill, one per files run in progress, in this order, any of "
        f"{','.join(FAULTS)} (implies --zones-at-once)",
    )
    parser.add_argument(
        "--restart-max-runtime",
        type=float,
        default=60,
        help="run monitoring's max_runtime_seconds after the drill restarts the daemon",
    )
    parser.add_argument("--zones-at-once", action="store_true", help="trigger every zone at once")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per zone")
    parser.add_argument(
        "--idle-grace",
        type=float,
        default=90,
        help="seconds with no run in flight after which a zone with missing files is over "
        "(the files sensor must have had its turn)",
    )
    parser.add_argument("--start-timeout", type=float, default=300, help="daemon start, seconds")
    args = parser.parse_args(argv)
    if not 1 <= args.sftp_hosts <= 250:
        parser.error("--sftp-hosts: 1 to 250")
    if args.faults:
        args.zones_at_once = True
    return args


def _faults(text: str) -> list[str]:
    faults = [part for part in text.split(",") if part]
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"--faults: unknown {unknown}; any of {','.join(FAULTS)}")
    return faults


def _on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt


def _env(args: argparse.Namespace, pg: Any, folder: Path, n: int) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **pg.libpq_env(),
        "PGDATABASE": f"night_n{n}",
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "DAGSTER_HOME": str(folder / "dagster"),
        "ODS_HOME": str(args.work),
        "ODS_CLIENTS_FILE": str(folder / "clients.yaml"),
    }


def _prepare_size(
    args: argparse.Namespace, pg: Any, plans: list[ClientPlan], night: dt.date, n: int
) -> tuple[Path, dict[str, str]]:
    folder = args.work / f"n{n}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_accounts(folder, plans)
    first_day = night - dt.timedelta(days=args.days)
    write_clients_file(folder, plans, sftp_hosts(args.sftp_hosts), args.port, first_day)
    # The shipped instance (deploy/dagster.yaml) on a database of its own per size.
    instance_db = harness.fresh_instance_database(pg, f"dagster_n{n}")
    settings = harness.instance_settings(
        instance_db, max_runs=args.max_runs, per_host=args.per_host, host_tag=SFTP_HOST_TAG
    )
    harness.write_instance_yaml(folder / "dagster", settings)
    fresh_warehouse(pg.conninfo(), f"night_n{n}")
    return folder, _env(args, pg, folder, n)


def _nights(args: argparse.Namespace, pg: Any, processes: harness.Processes) -> Iterator[Night]:
    # The night of `night` builds the day before it; its 03:00 has passed in every zone.
    night = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    day = night - dt.timedelta(days=1)
    fleet = plan_fleet(max(args.clients), args.learners_range, args.sftp_hosts)
    first = day - dt.timedelta(days=args.days - 1)
    generation = generate_sites(
        pg.conninfo(), fleet, first, args.days, args.work / "sites.json", args.reuse
    )
    print(
        f"sites: {len(fleet)} generated in {generation:.1f} s"
        if generation is not None
        else f"sites: {len(fleet)} reused from {args.work / 'sites.json'}"
    )
    for n in args.clients:
        plans = fleet[:n]
        folder, env = _prepare_size(args, pg, plans, night, n)
        print(f"\nnight of {n} clients, day {day}, in {folder}", flush=True)
        instance_db = dataclasses.replace(pg, database=f"dagster_n{n}")
        setup = NightSetup(args, folder, plans, night, env, processes, pg=instance_db)
        try:
            yield run_night(setup, generation if n == args.clients[0] else None)
        finally:
            processes.stop_all()


def _remove_work(args: argparse.Namespace, made_work: bool) -> None:
    """Remove what the benchmark made: the whole folder if it made it, else its own parts."""
    if made_work:
        shutil.rmtree(args.work, ignore_errors=True)
        return
    for part in [args.work / "pgdata", args.work / "run", args.work / "sites.json"] + [
        args.work / f"n{n}" for n in args.clients
    ]:
        if part.is_dir():
            shutil.rmtree(part, ignore_errors=True)
        else:
            part.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work = args.work.resolve()
    if args.layout == "current":
        use_current_layout()
    manifest = ROOT / "dbt_project" / "target" / "manifest.json"
    if not manifest.exists():
        print(f"error: no dbt manifest at {manifest}; run `.venv/bin/ods parse` first")
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Loading the code location in this process (to evaluate the ticks) warns of beta APIs.
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    made_work = not args.work.exists()
    args.work.mkdir(parents=True, exist_ok=True)
    from ods_local.postgres import start_postgres, stop_postgres

    pgdata = args.work / "pgdata"
    # Stopped in the `finally` below (unless --keep), which Ctrl-C and SIGTERM reach too.
    pg = start_postgres(pgdata)
    processes = harness.Processes()
    nights: list[Night] = []
    try:
        for night in _nights(args, pg, processes):
            print_night(night, args.verbose)
            nights.append(night)
        if len(nights) > 1:
            print_growth(nights)
        if args.summary:
            write_summary(args.summary, nights)
    except harness.BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopping the daemon, the SFTP servers and PostgreSQL", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        if not args.keep:
            stop_postgres(pgdata)
            _remove_work(args, made_work)
    # A night that left a file undelivered is a failed night, whatever its runs say.
    complete = all(set(n.expected) <= set(n.delivered) for n in nights)
    return 0 if complete and all(not z.timed_out for n in nights for z in n.zones) else 1


if __name__ == "__main__":
    raise SystemExit(main())
