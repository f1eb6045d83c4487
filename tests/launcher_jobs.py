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
