"""Jobs for tests/test_run_launcher.py, in a module of their own: a run worker forked by
`PreloadedRunLauncher` loads its job from the run's code origin, i.e. by importing this module."""

import time
from pathlib import Path

import dagster as dg


@dg.op(config_schema={"marker": str, "seconds": float})
def write_marker(context: dg.OpExecutionContext) -> None:
    """Writes the worker's pid to the marker file, then waits `seconds` (so the test can kill or
    cancel the run while it is in progress)."""
    import os

    Path(context.op_config["marker"]).write_text(str(os.getpid()))
    time.sleep(context.op_config["seconds"])


@dg.job(executor_def=dg.in_process_executor)
def marker_job() -> None:
    write_marker()


@dg.op(pool="dbt_marts", config_schema={"log": str})
def pooled_step(context: dg.OpExecutionContext) -> None:
    """Appends its start and end times to the log file, 1.5 s apart."""
    with open(context.op_config["log"], "a") as log:
        log.write(f"start {time.time()}\n")
    time.sleep(1.5)
    with open(context.op_config["log"], "a") as log:
        log.write(f"end {time.time()}\n")


@dg.job(executor_def=dg.in_process_executor)
def pooled_job() -> None:
    """Like the marts job: one process, a step in the pool `dbt_marts`."""
    pooled_step()


@dg.op(config_schema={"marker": str, "variable": str})
def write_environment(context: dg.OpExecutionContext) -> None:
    """Writes the value of an environment variable, as the run sees it, to the marker file."""
    import os

    Path(context.op_config["marker"]).write_text(os.environ.get(context.op_config["variable"], ""))


@dg.job(executor_def=dg.in_process_executor)
def environment_job() -> None:
    write_environment()
