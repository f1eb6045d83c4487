"""Runs submitted to the Dagster instance's run queue from a command (`ods resend`, `ods rebuild`),
and waiting for them.

A run is created from the code location as the daemon's sensors create theirs (the remote job of
workspace.yaml's code location, its execution plan, `instance.create_run`) and handed to
`instance.submit_run`: with the QueuedRunCoordinator it queues, under the instance's limits
(`concurrency.runs`: runs per `ods/sftp_host`, `max_concurrent_runs`); with the default
coordinator it is launched at once. Either way it is in the UI's run history like any other.

Queued runs are started by `dagster-daemon`. When none serves the instance (no heartbeat of its
run queue in the last `DAEMON_SILENT_SECONDS`), the command dequeues its own runs with Dagster's
own queue logic, `QueuedRunCoordinatorDaemon`, over its own copy of the code location: the same
limits, counting the runs in progress of every other process, and the instance's run launcher
starts them as the daemon would. Two commands dequeuing at once take turns (a lock file in
DAGSTER_HOME), so neither launches on a count the other is about to change. Runs queued by
others are left to the daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict, Unpack

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.external import RemoteJob
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES
from dagster._core.workspace.context import (
    BaseWorkspaceRequestContext,
    WorkspaceProcessContext,
)
from dagster._core.workspace.load_target import (
    InProcessWorkspaceLoadTarget,
    WorkspaceFileTarget,
    WorkspaceLoadTarget,
)
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from orchestration.paths import PROJECT_ROOT

WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
# The daemon writes a heartbeat every 30 s (dagster._daemon.controller); two missed ones and a
# margin mean it is gone. (Dagster's own "healthy" allows 30 minutes: far too long to leave an
# operator's runs queued.)
DAEMON_SILENT_SECONDS = 90.0
POLL_SECONDS = 0.5
LOCK_FILE = ".ods-run-queue.lock"


class CodeLocationError(RuntimeError):
    """The code location of workspace.yaml did not load: no run can be created."""


class _OwnQueuedRuns:
    """The instance, as seen by the queue logic when a command dequeues: only the given runs are
    queued (every run in progress still counts against the limits). Everything else is the
    instance itself."""

    def __init__(self, instance: dg.DagsterInstance, run_ids: Sequence[str]) -> None:
        self._instance = instance
        self._run_ids = list(run_ids)

    def get_runs(self, filters: dg.RunsFilter | None = None, **kwargs: Any) -> Sequence[Any]:
        if filters is not None and filters.statuses == [dg.DagsterRunStatus.QUEUED]:
            filters = dg.RunsFilter(statuses=filters.statuses, run_ids=self._run_ids)
        return self._instance.get_runs(filters, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._instance, name)


class _OwnRunsDequeuer(QueuedRunCoordinatorDaemon):
    """One pass of Dagster's run queue over a command's own queued runs."""

    run_ids: Sequence[str] = ()

    def _get_runs_to_dequeue(
        self,
        instance: dg.DagsterInstance,
        concurrency_config: Any,
        fixed_iteration_time: float | None,
    ) -> list[dg.DagsterRun]:
        own: Any = _OwnQueuedRuns(instance, self.run_ids)
        return super()._get_runs_to_dequeue(own, concurrency_config, fixed_iteration_time)


class RunSpec(TypedDict):
    """A run to submit, besides its job: its tags and run config, and the assets and checks it
    selects (None, or left out: the whole job). What `submit_run` and `RunQueue.submit` take."""

    tags: Mapping[str, str]
    run_config: Mapping[str, Any]
    asset_selection: NotRequired[Sequence[dg.AssetKey] | None]
    asset_check_selection: NotRequired[Sequence[dg.AssetCheckKey] | None]


def submit_run(
    instance: dg.DagsterInstance,
    workspace: BaseWorkspaceRequestContext,
    job_name: str,
    **spec: Unpack[RunSpec],
) -> str:
    """Create a run of the job (or of the selected assets and checks) from the workspace's one
    code location and submit it; the run id. As the daemon creates its sensors' and schedules'
    runs (dagster/_daemon/sensor.py): the remote job, its execution plan, `create_run`."""
    from dagster._core.definitions.selector import JobSubsetSelector

    tags, run_config = spec["tags"], spec["run_config"]
    asset_selection = spec.get("asset_selection")
    asset_check_selection = spec.get("asset_check_selection")
    (location,) = workspace.code_locations
    (repository,) = location.get_repositories().values()
    remote_job: RemoteJob = location.get_job(
        JobSubsetSelector(
            location_name=location.name,
            repository_name=repository.name,
            job_name=job_name,
            op_selection=None,
            asset_selection=asset_selection,
            asset_check_selection=asset_check_selection,
        )
    )
    plan = location.get_execution_plan(
        remote_job,
        run_config,
        step_keys_to_execute=None,
        known_state=None,
        instance=instance,
    )
    run = instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=run_config,
        resolved_op_selection=None,
        step_keys_to_execute=None,
        status=dg.DagsterRunStatus.NOT_STARTED,
        op_selection=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.run_tags, **tags},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan.execution_plan_snapshot,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset(asset_selection) if asset_selection else None,
        asset_check_selection=(
            frozenset(asset_check_selection) if asset_check_selection is not None else None
        ),
        asset_graph=repository.asset_graph,
    )
    instance.submit_run(run.run_id, workspace)
    return run.run_id


def code_location_target(
    instance: dg.DagsterInstance, workspace_file: Path = WORKSPACE_FILE
) -> WorkspaceLoadTarget:
    """The code location of workspace.yaml as a command loads it: in this process, under the
    workspace's own location name (so the daemon, the UI and run retries find the runs' location
    in their workspace by that name), saving the code server a process would start (a new
    interpreter importing Dagster, dbt and the definitions: about 7 CPU-seconds a command).

    Dagster's DefaultRunLauncher starts runs only through a code server, so with it the workspace
    file is loaded as the daemon loads it: a code server of the command's own."""
    file_target = WorkspaceFileTarget(paths=[str(workspace_file)])
    if isinstance(instance.run_launcher, DefaultRunLauncher):
        return file_target
    return InProcessWorkspaceLoadTarget(
        [
            InProcessCodeLocationOrigin(
                origin.loadable_target_origin,
                # What a code server in this image would report (Docker and Kubernetes launchers
                # start a run in its origin's image).
                container_image=os.environ.get("DAGSTER_CURRENT_IMAGE"),
                location_name=origin.location_name,
            )
            for origin in file_target.create_origins()
        ]
    )


class RunQueue:
    """The instance's run queue, from a command: submit runs, wait for them (dequeuing them
    in-process when no daemon does). Use as a context manager: it loads the code location
    (`code_location_target`); output of a code server it starts, and of the runs launched, goes
    to `output` when given."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        output: Path | None = None,
        workspace_file: Path = WORKSPACE_FILE,
    ) -> None:
        self.instance = instance
        self.output = output
        self.workspace_file = workspace_file
        self._stack = contextlib.ExitStack()
        self._context: WorkspaceProcessContext | None = None
        self.dequeued_here = False

    def __enter__(self) -> RunQueue:
        with _children_write_to(self.output):
            self._context = self._stack.enter_context(
                WorkspaceProcessContext(
                    self.instance,
                    code_location_target(self.instance, self.workspace_file),
                    version=dg.__version__,
                    read_only=False,
                    code_server_log_level="WARNING",
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        # The code server shuts down once the runs it launched have finished, not before.
        self._stack.close()

    @property
    def queued(self) -> bool:
        return isinstance(self.instance.run_coordinator, QueuedRunCoordinator)

    def _workspace(self) -> BaseWorkspaceRequestContext:
        assert self._context is not None, "use RunQueue as a context manager"
        workspace = self._context.create_request_context()
        for name in workspace.code_location_names:
            error = workspace.get_code_location_error(name)
            if error is not None:
                raise CodeLocationError(
                    f"the code location {name} of {self.workspace_file} did not load: "
                    f"{error.message.strip().splitlines()[-1]}"
                )
        return workspace

    def submit(self, job_name: str, **spec: Unpack[RunSpec]) -> str:
        """Create a run of the job (or of the selected assets and checks) and submit it; the run
        id (`submit_run`)."""
        return submit_run(self.instance, self._workspace(), job_name, **spec)

    def asset_keys_in_job(self, job_name: str) -> list[dg.AssetKey]:
        (location,) = self._workspace().code_locations
        (repository,) = location.get_repositories().values()
        return list(repository.get_asset_keys_in_job(job_name))

    def daemon_is_serving(self) -> bool:
        """A dagster-daemon's run queue sent a heartbeat lately."""
        beat = self.instance.get_daemon_heartbeats().get(QueuedRunCoordinatorDaemon.daemon_type())
        return beat is not None and time.time() - beat.timestamp <= DAEMON_SILENT_SECONDS

    def dequeue(self, run_ids: Sequence[str]) -> None:
        """One pass of the run queue over these runs: launch those the limits allow now."""
        assert self._context is not None, "use RunQueue as a context manager"
        self.dequeued_here = True
        # The launcher's fork server, started by the first launch, and every run forked from it
        # write where the code server does.
        with (
            _children_write_to(self.output),
            _queue_lock(Path(self.instance.root_directory)),
            _OwnRunsDequeuer(0) as dequeuer,
        ):
            dequeuer.run_ids = run_ids
            for _ in dequeuer.run_iteration(self._context):
                pass

    def runs(self, run_ids: Sequence[str]) -> list[dg.DagsterRun]:
        by_id = {
            run.run_id: run for run in self.instance.get_runs(dg.RunsFilter(run_ids=list(run_ids)))
        }
        return [by_id[run_id] for run_id in run_ids]

    def wait(
        self,
        run_ids: Sequence[str],
        on_progress: Callable[[str], None] = lambda _: None,
        *,
        until_launched: bool = False,
    ) -> list[dg.DagsterRun]:
        """Until every run has finished, dequeuing them here whenever no daemon serves the queue;
        calls `on_progress` with one line when it changes. `until_launched`: only until no run
        waits for this command (none queued, or a daemon serves the queue)."""
        shown = None
        while True:
            runs = self.runs(run_ids)
            queued = [r.run_id for r in runs if r.status == dg.DagsterRunStatus.QUEUED]
            daemon = bool(queued) and self.queued and self.daemon_is_serving()
            if queued and self.queued and not daemon:
                self.dequeue(queued)
                runs = self.runs(run_ids)
                queued = [r.run_id for r in runs if r.status == dg.DagsterRunStatus.QUEUED]
            line = self.progress(runs)
            if line != shown:
                on_progress(line)
                shown = line
            if all(r.is_finished for r in runs) or (until_launched and (not queued or daemon)):
                return runs
            time.sleep(POLL_SECONDS)

    def progress(self, runs: Iterable[dg.DagsterRun]) -> str:
        """e.g. `2/3 runs done, 1 queued (host sftp.example.com: 2 in progress)`."""
        from orchestration.defs.jobs import SFTP_HOST_TAG

        runs = list(runs)
        done = sum(r.is_finished for r in runs)
        states = Counter(
            "queued" if r.status == dg.DagsterRunStatus.QUEUED else "running"
            for r in runs
            if not r.is_finished
        )
        line = f"{done}/{len(runs)} runs done" + "".join(
            f", {states[state]} {state}" for state in ("running", "queued") if states[state]
        )
        hosts = sorted({r.tags[SFTP_HOST_TAG] for r in runs if SFTP_HOST_TAG in r.tags})
        if hosts and states["queued"]:
            active = Counter(
                r.tags.get(SFTP_HOST_TAG)
                for r in self.instance.get_runs(dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES))
                if r.status != dg.DagsterRunStatus.QUEUED
            )
            line += " (" + ", ".join(f"host {h}: {active[h]} in progress" for h in hosts) + ")"
        return line


@contextlib.contextmanager
def _queue_lock(home: Path) -> Iterator[None]:
    with (home / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _children_write_to(output: Path | None) -> Iterator[None]:
    """Processes started meanwhile (the code server, and through it every run it launches)
    write their stdout and stderr to `output`: dbt's log and the runs' event log, which outlive
    this process when a run does."""
    if output is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    target = os.open(output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = [os.dup(1), os.dup(2)]
    _flush()
    try:
        for fd in (1, 2):
            os.dup2(target, fd)
        yield
    finally:
        _flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(target)


def _flush() -> None:
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(ValueError, OSError):
                stream.flush()
