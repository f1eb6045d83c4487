"""The machinery of `benchmarks/nightly_at_scale.py`: the processes it starts (SFTP servers,
`dagster-daemon`), the Dagster instance's settings, submitting what a schedule tick requests to the
run queue, the machine's memory, and reading a night back from run records and the event log.

Nothing here knows the project's job or schedule names: the benchmark passes them in, so a change
of the Dagster layout is an edit of the benchmark's constants only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import dagster as dg

from ods_local.services import process_group_alive

ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
STOP_WAIT_SECONDS = 20.0


class BenchmarkError(RuntimeError):
    """The night could not be set up or did not finish; the message says what to look at."""


# --- processes ------------------------------------------------------------------------------


@dataclass
class _Started:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


class Processes:
    """Processes the benchmark started, each in its own session, so that stopping one stops the
    children it started too (the daemon's code server and the run workers) and nothing else."""

    def __init__(self) -> None:
        self._started: list[_Started] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> int:
        handle = log.open("ab")
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=Path(__file__).resolve().parent.parent,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._started.append(_Started(name, process, handle))
        return process.pid

    def check_alive(self, pid: int) -> None:
        for started in self._started:
            if started.process.pid == pid and started.process.poll() is not None:
                raise BenchmarkError(
                    f"{started.name} (pid {pid}) exited with status {started.process.returncode}; "
                    f"see {started.log.name}"
                )

    def stop(self, pid: int) -> None:
        for started in [s for s in self._started if s.process.pid == pid]:
            _stop_group(started.process)
            started.log.close()
            self._started.remove(started)

    def stop_all(self) -> None:
        for started in reversed(list(self._started)):
            self.stop(started.process.pid)

    def kill(self, pid: int) -> None:
        """SIGKILL the process group the benchmark created for `pid` (a crash: no clean-up)."""
        for started in [s for s in self._started if s.process.pid == pid]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            started.process.wait(timeout=30)
            deadline = time.monotonic() + 10
            while process_group_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            started.log.close()
            self._started.remove(started)

    def signal(self, pid: int, sig: signal.Signals) -> None:
        """Send `sig` to the process `pid` alone (SIGSTOP/SIGCONT a server, say)."""
        os.kill(pid, sig)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group the benchmark created for it, SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, STOP_WAIT_SECONDS), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            # The group may outlive its leader (a run worker still finishing): wait a moment.
            deadline = time.monotonic() + wait
            while process_group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not process_group_alive(process.pid):
                return
        except subprocess.TimeoutExpired:
            continue


def wait_for_port(host: str, port: int, what: str, processes: Processes, pid: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        processes.check_alive(pid)
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise BenchmarkError(f"{what} did not listen on {host}:{port} within 20 s")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces; the parent follows.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


class Daemon:
    """`dagster-daemon run` as the benchmark starts it, which a fault drill may kill and start
    again. Its process group holds the daemon, the code server it starts (`dagster api grpc`)
    and, under the default run launcher, every run worker that code server started."""

    def __init__(self, processes: Processes, env: Mapping[str, str], log: Path) -> None:
        self.processes, self.env, self.log = processes, env, log
        self.pid = 0
        self.starts = 0

    def start(self) -> int:
        argv = [str(Path(sys.executable).with_name("dagster-daemon")), "run"]
        self.pid = self.processes.start(
            "dagster-daemon", [*argv, "-w", "workspace.yaml"], self.env, self.log
        )
        self.starts += 1
        return self.pid

    def check_alive(self) -> None:
        self.processes.check_alive(self.pid)

    def kill(self) -> None:
        """SIGKILL the whole group, as a machine or container dying would."""
        self.processes.kill(self.pid)

    def code_server_pid(self) -> int | None:
        servers = [pid for pid, cmd in children_of(self.pid) if " api grpc" in cmd]
        return servers[0] if servers else None


# --- the Dagster instance -------------------------------------------------------------------


def instance_settings(
    server: Any,
    *,
    max_runs: int,
    per_host: int,
    host_tag: str,
    dequeue_seconds: int = 2,
    run_monitoring: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The shipped deploy/dagster.yaml, its storage on `server`'s database (as the local default
    has it), with the benchmark's limits on top: every other setting (queue, pools, launcher, run
    monitoring and retries) is production's."""
    import yaml

    from ods_local.instance import local_instance_text

    settings: dict[str, Any] = yaml.safe_load(local_instance_text(server))
    settings["run_coordinator"]["config"]["dequeue_interval_seconds"] = dequeue_seconds
    runs = settings["concurrency"]["runs"]
    runs["max_concurrent_runs"] = max_runs
    limits = [limit for limit in runs["tag_concurrency_limits"] if limit["key"] == host_tag]
    if len(limits) != 1:
        raise BenchmarkError(f"deploy/dagster.yaml has no single tag limit for {host_tag}")
    limits[0]["limit"] = per_host
    settings["run_monitoring"] = {**settings.get("run_monitoring", {}), **(run_monitoring or {})}
    return settings


def write_instance_yaml(home: Path, settings: Mapping[str, Any]) -> Path:
    """`<home>/dagster.yaml` holding `settings` (the benchmark's copy of the shipped file)."""
    import yaml

    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(
        "# Written by benchmarks/nightly_at_scale.py: deploy/dagster.yaml, storage on the\n"
        "# benchmark's embedded PostgreSQL, with the benchmark's limits.\n"
        + yaml.safe_dump(dict(settings), sort_keys=False)
    )
    return path


def fresh_instance_database(server: Any, database: str) -> Any:
    """A new, empty database on `server` for a night's Dagster instance; its LocalPostgres."""
    import dataclasses

    import psycopg

    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{database}" with (force)')
        conn.execute(f'create database "{database}"')
    return dataclasses.replace(server, database=database)


def wait_for_daemon(
    instance: dg.DagsterInstance, processes: Processes, pid: int, timeout: float
) -> float:
    """Seconds until the daemon's scheduler, sensor and run queue all sent a heartbeat (since
    now: a daemon started again finds its predecessor's heartbeats in the instance)."""
    wanted = {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"}
    started, since = time.monotonic(), time.time()
    while time.monotonic() - started < timeout:
        processes.check_alive(pid)
        beating = {
            str(name)
            for name, beat in instance.get_daemon_heartbeats().items()
            if beat.timestamp >= since
        }
        if wanted <= beating:
            return time.monotonic() - started
        time.sleep(1)
    raise BenchmarkError(
        f"dagster-daemon sent no heartbeat for {', '.join(sorted(wanted))} within {timeout:.0f} s "
        "(its code location may not load: see daemon.log)"
    )


@contextlib.contextmanager
def remote_workspace(instance: dg.DagsterInstance, workspace_yaml: Path) -> Iterator[Any]:
    """The workspace as the webserver sees it (its own code server), to create runs with."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(
        instance,
        WorkspaceFileTarget(paths=[str(workspace_yaml)]),
        version=dg.__version__,
        read_only=False,
        code_server_log_level="WARNING",
    ) as process_context:
        yield process_context.create_request_context()


def evaluate_tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, schedule_name: str, at: dt.datetime
) -> tuple[list[dg.RunRequest], str | None]:
    """What the schedule's tick at `at` requests (its run requests, or its skip message)."""
    schedule = defs.resolve_schedule_def(schedule_name)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
    )
    data = schedule.evaluate_tick(context)
    return list(data.run_requests or []), data.skip_message


def submit_request(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    workspace: Any,
    request: dg.RunRequest,
    *,
    job_name: str,
    schedule_name: str,
) -> str:
    """Create the run a request asks for (partition tags resolved as the daemon resolves them)
    and submit it to the run queue, as `ods` commands submit theirs; returns the run id. The
    request's check keys are not passed on: a deadline run checks every feed of its job."""
    from dagster._core.storage.tags import SCHEDULE_NAME_TAG

    from orchestration.defs.queued_runs import submit_run

    name = request.job_name or job_name
    if request.partition_key is not None:
        request = request.with_resolved_tags_and_config(
            target_definition=defs.resolve_job_def(name),
            dynamic_partitions_requests=[],
            dynamic_partitions_store=instance,
        )
    return submit_run(
        instance,
        workspace,
        name,
        tags={**(request.tags or {}), SCHEDULE_NAME_TAG: schedule_name},
        run_config=request.run_config,
        asset_selection=request.asset_selection,
    )


def active_runs(instance: dg.DagsterInstance, since: float) -> list[dg.DagsterRun]:
    return list(
        instance.get_runs(
            filters=dg.RunsFilter(
                statuses=ACTIVE_STATUSES,
                created_after=dt.datetime.fromtimestamp(since, dt.UTC),
            )
        )
    )


def runs_awaiting_retry(instance: dg.DagsterInstance, since: float) -> list[dg.DagsterRun]:
    """Failed runs the instance's run_retries will run again (Dagster tags the failure
    `dagster/will_retry=true`) whose retry no run is yet: the retry daemon creates it a few
    seconds after the failure, and a night is not over before it."""
    will_retry = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={"dagster/will_retry": "true"},
            created_after=dt.datetime.fromtimestamp(since, dt.UTC),
        )
    )
    return [
        run
        for run in will_retry
        if not instance.get_run_ids(
            filters=dg.RunsFilter(tags={"dagster/parent_run_id": run.run_id}), limit=1
        )
    ]


# --- machine memory -------------------------------------------------------------------------


def used_memory_bytes() -> int:
    """MemTotal - MemAvailable: what the whole machine uses, page cache not counted."""
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) * 1024
    return fields["MemTotal"] - fields["MemAvailable"]


class MemorySampler(threading.Thread):
    """Samples the machine's used memory every `interval` seconds; `peak` is the largest seen."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="memory-sampler")
        self.interval = interval
        self.baseline = used_memory_bytes()
        self.peak = self.baseline
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.peak = max(self.peak, used_memory_bytes())

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)


# --- reading a night back -------------------------------------------------------------------

_EVENTS = {
    dg.DagsterEventType.RUN_STARTING,
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}
_STEP_ENDS = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
_RUN_ENDS = {
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
}


@dataclass
class RunTiming:
    """One run of the night, from its record and its event log (epoch seconds)."""

    run_id: str
    job: str
    status: str
    tags: dict[str, str]
    created: float
    starting: float | None = None
    first_step: float | None = None
    ended: float | None = None
    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    deliveries: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def start_up(self) -> float | None:
        """Launch (RUN_STARTING) to the first step's start: process start and loading code."""
        if self.starting is None or self.first_step is None:
            return None
        return self.first_step - self.starting

    @property
    def queued(self) -> float | None:
        return None if self.starting is None else self.starting - self.created

    @property
    def work(self) -> float:
        return sum(end - start for start, end in self.steps.values())


def read_runs(instance: dg.DagsterInstance, since: float, delivery_suffix: str) -> list[RunTiming]:
    """Every run created since `since`, oldest first, with its timings."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(created_after=dt.datetime.fromtimestamp(since, dt.UTC))
    )
    timings = []
    for record in sorted(records, key=lambda r: r.create_timestamp):
        run = record.dagster_run
        timing = RunTiming(
            run_id=run.run_id,
            job=run.job_name,
            status=run.status.value,
            tags=dict(run.tags),
            created=record.create_timestamp.timestamp(),
        )
        _read_events(instance, timing, delivery_suffix)
        timings.append(timing)
    return timings


def _read_events(instance: dg.DagsterInstance, timing: RunTiming, delivery_suffix: str) -> None:
    step_starts: dict[str, float] = {}
    for entry in instance.all_logs(timing.run_id, of_type=_EVENTS):
        event = entry.dagster_event
        if event is None:
            continue
        kind, at = event.event_type, entry.timestamp
        if kind == dg.DagsterEventType.RUN_STARTING or (
            kind == dg.DagsterEventType.RUN_START and timing.starting is None
        ):
            timing.starting = at
        elif kind == dg.DagsterEventType.STEP_START and entry.step_key:
            step_starts[entry.step_key] = at
            timing.first_step = at if timing.first_step is None else min(timing.first_step, at)
        elif kind in _STEP_ENDS and entry.step_key in step_starts:
            timing.steps[entry.step_key] = (step_starts[entry.step_key], at)
            if kind == dg.DagsterEventType.STEP_FAILURE:
                timing.errors.append(_first_line(event, entry.user_message))
        elif kind in _RUN_ENDS:
            timing.ended = at
            if kind == dg.DagsterEventType.RUN_FAILURE and not timing.errors:
                timing.errors.append(_first_line(event, entry.user_message))
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            key = event.asset_key
            if key is not None and key.path[-1].endswith(delivery_suffix):
                timing.deliveries.append(at)


def _first_line(event: dg.DagsterEvent, fallback: str) -> str:
    error = getattr(event.event_specific_data, "error", None)
    message = getattr(error, "message", None) or fallback or event.message or "(no message)"
    return message.strip().splitlines()[0][:300]


# --- run workers and the queue's limits, from the instance ------------------------------------


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process of a run under the default launcher: the first of its engine events that
    names a process ("Executing steps in process (pid: …)": the in-process executor runs the
    steps in the run worker itself)."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = getattr(entry.dagster_event, "event_specific_data", None)
        metadata = getattr(data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def most_at_once(spans: Sequence[tuple[float, float]]) -> int:
    """The largest number of [start, end] spans open at one instant (one that ends as another
    starts does not overlap it: the queue frees a slot before it fills it)."""
    edges = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def in_progress_span(run: RunTiming, now: float) -> tuple[float, float] | None:
    """From the queue's launch of a run (RUN_STARTING: it then counts against the limits) to its
    end; a run never launched has none."""
    if run.starting is None:
        return None
    return run.starting, run.ended if run.ended is not None else now
