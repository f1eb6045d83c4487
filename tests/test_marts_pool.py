"""The marts job runs its steps in the run's own process (the in-process executor), and its steps
still take turns in the pool `dbt_marts` across runs (deploy/dagster.yaml: pools.default_limit 1):
two zones' marts runs never rebuild the views at once (orchestration/defs/jobs.py). Two runs are
launched at once through the shipped launcher, each a process of its own, as the queue does."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.launcher import LaunchRunContext

from ods_local.postgres import LocalPostgres
from orchestration.defs.jobs import MARTS_POOL
from orchestration.paths import PROJECT_ROOT
from tests import launcher_jobs
from tests.e2e_support import instance_database_url


def test_two_runs_steps_in_the_marts_pool_never_overlap(pg: LocalPostgres, tmp_path: Path) -> None:
    shipped = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    assert launcher_jobs.pooled_step.pool == MARTS_POOL
    log = tmp_path / "steps.log"
    overrides = {
        # On PostgreSQL, as shipped: a step claims a pool slot with SELECT ... FOR UPDATE SKIP
        # LOCKED, which SQLite ignores (two runs' steps there can claim the same free slot).
        "storage": {"postgres": {"postgres_url": instance_database_url(pg)}},
        "concurrency": {"pools": shipped["concurrency"]["pools"]},
        "run_launcher": shipped["run_launcher"] | {"config": {"preload": ["dagster"]}},
    }
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
        # The pool's slots as the first claim makes them (limit: the shipped default_limit).
        # Made here, once: Dagster 1.13 makes them on a pool's first claim by counting, then
        # inserting, so two runs claiming a brand-new pool at the same instant on a busy machine
        # each made a slot and both ran (seen once in CI); a pool that exists is not affected.
        instance.event_log_storage.initialize_concurrency_limit_to_default(MARTS_POOL)
        assert instance.event_log_storage.get_concurrency_info(MARTS_POOL).slot_count == 1
        origin = dg.reconstructable(launcher_jobs.pooled_job).get_python_origin()
        run_ids = []
        for _ in range(2):
            run = instance.create_run_for_job(
                launcher_jobs.pooled_job,
                run_config={"ops": {"pooled_step": {"config": {"log": str(log)}}}},
                job_code_origin=origin,
            )
            instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
            run_ids.append(run.run_id)
        deadline = time.monotonic() + 180
        while True:
            runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
            if all(r is not None and r.is_finished for r in runs):
                break
            assert time.monotonic() < deadline, [r.status for r in runs if r]
            time.sleep(0.2)
        assert [r.status for r in runs if r] == [dg.DagsterRunStatus.SUCCESS] * 2
    events = [line.split() for line in log.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end", "start", "end"], events
