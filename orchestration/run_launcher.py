"""A run launcher for one machine whose runs start in a fraction of a second: each run is a process
forked from a server that has already imported Dagster, dagster-dbt and dbt.

Why: with Dagster's `DefaultRunLauncher` every run is a fresh interpreter (the code server starts
it with multiprocessing's "spawn") that imports Dagster (about 1.7 CPU-seconds on this 2-core
machine) and then the code location, whose dagster-dbt import pulls in dbt-core (about 2.8 more)
before the run's first step. A night is one files run per client, each about a second of real
work: at 200 clients those imports were most of the night's CPU, and the queue, which launched one
run at a time while each import ran, never had more than 3-4 runs in progress (README,
"Benchmarks"). Here the imports happen once, in a fork server (multiprocessing's "forkserver",
started by the first launch, its modules preloaded); each run is forked from it and loads only the
code location itself (the clients file and the dbt manifest, read fresh for every run, as before).

What it keeps from the default launcher: a run executes exactly as `dagster api execute_run` does
(same Dagster function, same instance, same code location from the run's origin); Dagster's run
monitoring can check a run's health (its process id, kept in the run's tags), so a run whose
process died with the daemon is failed, and retried, at the monitor's next poll instead of after
its whole maximum runtime; a run worker killed alone is reported failed at once by the process
that launched it; `terminate` interrupts the run as Dagster's cancellation does.

What it needs: the daemon (or whoever dequeues: `ods resend` without a daemon) and the runs on
one machine, in the code location's Python environment, which is how the local default and a
single-machine deployment run. Beyond one machine, use Dagster's Docker or Kubernetes launcher
(deploy/docker, deploy/helm), where each run is its own container.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Self

from dagster import _check as check
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, RunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClass, ConfigurableClassData

# The run's worker process id, for health checks from any process on the machine (a restarted
# daemon included).
WORKER_PID_TAG = "ods/run_worker_pid"
# The modules the fork server imports once: everything heavy a run imports before its code
# location. The code location itself is not preloaded: it reads the clients file and the dbt
# manifest, which may change between runs.
DEFAULT_PRELOAD = (
    "dagster",
    "dagster._cli.api",
    "dagster_postgres",
    "dagster_dbt",
    "psycopg",
    "paramiko",
)

log = logging.getLogger(__name__)


def _execute_run(serialized_args: str, environment: Mapping[str, str]) -> None:
    """The run worker, in a process forked from the server: `dagster api execute_run`'s body, in
    the launching process's environment as it was at the launch (the fork server keeps the one
    it started with, as a code server does; a process that launches runs for one warehouse after
    another, such as a test session, must not have them run with the first one's settings)."""
    os.environ.clear()
    os.environ.update(environment)
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.instance import DagsterInstance
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import deserialize_value
    from dagster._utils.interrupts import capture_interrupts

    # The fork server ignores ^C; a run must stop on SIGINT as a spawned worker does (terminate).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = deserialize_value(serialized_args, ExecuteRunArgs)
    with capture_interrupts(), DagsterInstance.from_ref(check.not_none(args.instance_ref)) as inst:
        _execute_run_command_body(args.run_id, inst, lambda _event: None, False)


def _alive(pid: int) -> bool:
    """Whether `pid` is a live process of this machine (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


class PreloadedRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run as a process forked from a server that preloaded Dagster and dbt
    (`preload`, a list of module names; default: Dagster, dagster-postgres, dagster-dbt,
    psycopg, paramiko). One machine only; see the module's docstring."""

    def __init__(
        self, inst_data: ConfigurableClassData | None = None, preload: Sequence[str] | None = None
    ) -> None:
        self._inst_data = inst_data
        self._preload = list(preload if preload is not None else DEFAULT_PRELOAD)
        self._lock = threading.Lock()
        self._context: Any = None
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> Any:
        from dagster import Array, Field, StringSource

        return {
            "preload": Field(
                Array(StringSource),
                is_required=False,
                description="Modules the fork server imports once, before any run.",
            )
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> Self:
        return cls(inst_data=inst_data, preload=config_value.get("preload"))

    def _fork_server(self) -> Any:
        with self._lock:
            if self._context is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(self._preload)
                self._context = context
            return self._context

    def launch_run(self, context: LaunchRunContext) -> None:
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import serialize_value

        run = context.dagster_run
        origin = check.not_none(
            run.job_code_origin, f"run {run.run_id} has no code origin to load its job from"
        )
        args = ExecuteRunArgs(
            job_origin=origin, run_id=run.run_id, instance_ref=self._instance.get_ref()
        )
        worker = self._fork_server().Process(
            target=_execute_run,
            args=(serialize_value(args), dict(os.environ)),
            name=f"dagster-run-{run.run_id}",
        )
        worker.start()
        # Not a child to wait for at exit: a daemon (or `ods resend --no-wait`) that stops leaves
        # its runs running, as the default launcher's code server does.
        multiprocessing.process._children.discard(worker)  # type: ignore[attr-defined]
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(worker.pid)})
        threading.Thread(
            target=self._watch, args=(run.run_id, worker), name=f"watch-{run.run_id}", daemon=True
        ).start()

    def _watch(self, run_id: str, worker: multiprocessing.process.BaseProcess) -> None:
        """Report a run whose worker died before finishing it (killed, out of memory): the
        worker cannot say so itself."""
        worker.join()
        if worker.exitcode == 0:
            return
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return
        cause = (
            f"was killed by signal {-worker.exitcode}"
            if worker.exitcode is not None and worker.exitcode < 0
            else f"exited with status {worker.exitcode}"
        )
        message = f"The run's process (pid {worker.pid}) {cause} before the run finished."
        log.warning("run %s: %s", run_id, message)
        self._instance.report_run_failed(run, message)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = run.tags.get(WORKER_PID_TAG)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker process id recorded")
        if _alive(int(pid)):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=pid)
        return CheckRunHealthResult(
            WorkerStatus.NOT_FOUND, f"the run's process (pid {pid}) is gone", run_worker_id=pid
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        pid = run.tags.get(WORKER_PID_TAG)
        if pid is None or not _alive(int(pid)):
            return False
        self._instance.report_run_canceling(run)
        os.kill(int(pid), signal.SIGINT)
        return True
