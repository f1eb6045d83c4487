"""PreloadedRunLauncher (orchestration/run_launcher.py) with a real instance: a run executes in a
process forked from the preloaded server; a worker killed mid-run is reported failed at once;
Dagster's run monitoring sees a dead worker through the health check; terminate cancels the run.
The daemon-level behaviour (a whole night, the daemon killed) is tests/test_restart_safety.py."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.launcher import LaunchRunContext, WorkerStatus

from orchestration.run_launcher import WORKER_PID_TAG, PreloadedRunLauncher
from tests import launcher_jobs

WAIT_SECONDS = 120


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(
        temp_dir=str(tmp_path),
        overrides={
            "run_launcher": {
                "module": "orchestration.run_launcher",
                "class": "PreloadedRunLauncher",
                # Dagster only: what this job needs (the shipped default adds dbt and others).
                "config": {"preload": ["dagster", "dagster._cli.api"]},
            }
        },
    ) as instance:
        yield instance


def _launch(instance: dg.DagsterInstance, marker: Path, seconds: float) -> str:
    config = {"marker": str(marker), "seconds": seconds}
    return _launch_job(instance, launcher_jobs.marker_job, {"write_marker": {"config": config}})


def _launch_job(instance: dg.DagsterInstance, job: dg.JobDefinition, ops: dict[str, Any]) -> str:
    run = instance.create_run_for_job(
        job,
        run_config={"ops": ops},
        job_code_origin=dg.reconstructable(job).get_python_origin(),
    )
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return run.run_id


def _wait(instance: dg.DagsterInstance, run_id: str, until: object) -> dg.DagsterRun:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        if until(run):  # type: ignore[operator]
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run.status} after {WAIT_SECONDS} s")


def _wait_for_marker(marker: Path) -> int:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (marker.exists() and marker.read_text()):
        assert time.monotonic() < deadline, "the run's step never started"
        time.sleep(0.1)
    return int(marker.read_text())


def test_the_configured_launcher_is_the_preloaded_one(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, PreloadedRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health


def test_a_run_executes_in_a_forked_worker_whose_pid_is_in_its_tags(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    run_id = _launch(instance, marker, 0)
    run = _wait(instance, run_id, lambda r: r.is_finished)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    worker = int(marker.read_text())
    assert worker != os.getpid()
    assert run.tags[WORKER_PID_TAG] == str(worker)
    # Its worker exits once the run is over (the run's SUCCESS is written a moment before the
    # process ends): a health check then says it is gone (what run monitoring would see).
    deadline = time.monotonic() + WAIT_SECONDS
    while (health := instance.run_launcher.check_run_worker_health(run)).status != (
        WorkerStatus.NOT_FOUND
    ):
        assert health.status == WorkerStatus.RUNNING, health
        assert time.monotonic() < deadline, f"worker {worker} still alive after the run"
        time.sleep(0.1)


def test_a_worker_killed_mid_run_is_reported_failed_at_once(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    run_id = _launch(instance, marker, 600)
    worker = _wait_for_marker(marker)
    running = instance.get_run_by_id(run_id)
    assert running is not None
    assert instance.run_launcher.check_run_worker_health(running).status == WorkerStatus.RUNNING
    os.kill(worker, signal.SIGKILL)
    run = _wait(instance, run_id, lambda r: r.is_finished)
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert any(f"pid {worker}) was killed by signal 9" in e.message for e in failure), failure


def test_terminate_cancels_a_run_in_progress(instance: dg.DagsterInstance, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    run_id = _launch(instance, marker, 600)
    _wait_for_marker(marker)
    assert instance.run_launcher.terminate(run_id)
    run = _wait(instance, run_id, lambda r: r.is_finished)
    assert run.status == dg.DagsterRunStatus.CANCELED
    assert not instance.run_launcher.terminate(run_id)  # already over


def test_each_run_has_the_launching_processs_environment_as_it_was_at_the_launch(
    instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fork server keeps the environment it was started with (by the first launch of this
    # process): a later run must still see the launching process's own.
    variable = "ODS_TEST_LAUNCH_ENVIRONMENT"
    for value in ("first", "second"):
        monkeypatch.setenv(variable, value)
        marker = tmp_path / value
        config = {"marker": str(marker), "variable": variable}
        run_id = _launch_job(
            instance, launcher_jobs.environment_job, {"write_environment": {"config": config}}
        )
        run = _wait(instance, run_id, lambda r: r.is_finished)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert marker.read_text() == value
