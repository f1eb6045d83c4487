"""The dbt project as Dagster assets: staging and intermediate views, and the daily feed marts."""

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration import warehouse
from orchestration.dbt_args import VIEWS_BUILD_ARGS, dbt_build_args
from orchestration.paths import DBT_PROJECT_DIR, dbt_parse_args, venv_bin

MARTS_SELECTION = "config.materialized:incremental"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def parse_project() -> None:
    """Write dbt's manifest with `dbt parse`, run from the venv (`.venv/bin/dbt`), and put it in
    place atomically: a run or a test reading the manifest meanwhile sees the old one or the new.

    dagster-dbt's `DbtProject.prepare_if_dev()` does the same under `dagster dev` but looks `dbt`
    up on PATH, where the venv's bin folder is usually not (`make ui`, a fresh shell)."""
    target = dbt_project.manifest_path.parent
    parse_dir = target / "dev_parse"  # dbt's partial-parse state stays between starts
    command = [str(venv_bin("dbt")), *dbt_parse_args(), "--target-path", str(parse_dir)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    made = parse_dir / "manifest.json"
    if done.returncode != 0 or not made.exists():
        raise RuntimeError(
            f"`{shlex.join(command)}` failed (exit status {done.returncode}):\n"
            f"{done.stdout}{done.stderr}"
        )
    staged = target / f".manifest.{os.getpid()}.json"
    shutil.copyfile(made, staged)
    os.replace(staged, dbt_project.manifest_path)


# Under `dagster dev` (which sets DAGSTER_IS_DEV_CLI for the processes it starts) the manifest is
# made again at load, so edits to the dbt project show; elsewhere it is made by `make` (`ods
# parse`) or at deploy time.
if os.environ.get("DAGSTER_IS_DEV_CLI"):
    parse_project()


class FeedTranslator(DagsterDbtTranslator):
    """Groups dbt models by their folder (staging, intermediate, marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "moodle"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


def manifest() -> dict[str, Any]:
    return json.loads(dbt_project.manifest_path.read_text())


def moodle_source_tables() -> list[str]:
    """The union views dbt reads, as declared in the dbt sources (one source of truth)."""
    return sorted(
        source["name"]
        for source in manifest()["sources"].values()
        if source["source_name"] == "moodle"
    )


def build_dbt_assets(
    daily: dg.DailyPartitionsDefinition, lookback_days: int
) -> list[dg.AssetsDefinition]:
    """Two dbt asset sets: views built on demand, and the incremental marts by day."""
    translator = FeedTranslator()

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        exclude=MARTS_SELECTION,
        dagster_dbt_translator=translator,
        name="moodle_views",
    )
    def moodle_views(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        """Staging and intermediate views over the Moodle union views."""
        warehouse.use_local_default_if_unset()
        yield from dbt.cli(VIEWS_BUILD_ARGS, context=context).stream()

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        select=MARTS_SELECTION,
        partitions_def=daily,
        dagster_dbt_translator=translator,
        name="feed_marts",
        pool="dbt_marts",
    )
    def feed_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        """One incremental mart per feed; a run rebuilds exactly its days (a backfill is one run)."""
        warehouse.use_local_default_if_unset()
        first, last = context.partition_key_range.start, context.partition_key_range.end
        yield from dbt.cli(dbt_build_args(first, last, lookback_days), context=context).stream()

    return [moodle_views, feed_marts]
