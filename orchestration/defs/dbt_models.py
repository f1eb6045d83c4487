"""The dbt project as Dagster assets: staging and intermediate views, and the daily feed marts."""

import datetime as dt
import graphlib
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject, dbt_assets

from orchestration.clients import ClientsConfig
from orchestration.dbt_args import VIEWS_BUILD_ARGS, marts_build
from orchestration.defs.dbt_cli import OdsDbtCliResource
from orchestration.defs.jobs import CLIENTS_TAG, MARTS_POOL, TIMEZONE_TAG
from orchestration.defs.partitions import clients_whose_day_is_not_over
from orchestration.defs.resources import WarehouseResource
from orchestration.defs.run_scope import clients_of_run
from orchestration.defs.views_state import (
    built_for,
    missing_views,
    record_built,
    views_fingerprint,
)
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


def _in_dependency_order(context: dg.AssetExecutionContext) -> list[dg.AssetKey]:
    """The step's selected assets, each after those it depends on (Dagster's rule for a
    multi-asset's outputs)."""
    selected = context.selected_asset_keys
    deps = context.assets_def.asset_deps
    order = graphlib.TopologicalSorter(
        {key: {dep for dep in deps.get(key, set()) if dep in selected} for key in selected}
    )
    return list(order.static_order())


def _unique_ids_of(context: dg.AssetExecutionContext) -> list[str]:
    """dbt unique ids of the step's selected assets (dagster-dbt keeps them in the specs'
    metadata)."""
    ids = []
    for key in context.selected_asset_keys:
        spec_metadata = context.assets_def.specs_by_key[key].metadata
        unique_id = spec_metadata.get("dagster_dbt/unique_id")
        if unique_id:
            ids.append(unique_id)
    return sorted(ids)


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


def clients_to_build(
    config: ClientsConfig, tags: Mapping[str, str], last_day: dt.date, now: dt.datetime
) -> list[str]:
    """The clients a marts run builds (its zone's, those it lists, or all: sensors.clients_of_run)
    — refused with a clear error when the run's last day is not over yet for one of them, since
    its file would miss the rest of the day."""
    client_ids = clients_of_run(config, tags)
    if not client_ids:
        raise dg.Failure(
            description=(
                f"the run's tags name no configured client ({TIMEZONE_TAG}="
                f"{tags.get(TIMEZONE_TAG)!r}, {CLIENTS_TAG}={tags.get(CLIENTS_TAG)!r})"
            ),
            allow_retries=False,
        )
    early = clients_whose_day_is_not_over(config, client_ids, last_day, now)
    if early:
        zones_early = sorted({config.timezone_of(c) for c in early})
        raise dg.Failure(
            description=(
                f"{last_day} is not over yet in {', '.join(zones_early)} (clients "
                f"{', '.join(early)}): a build now would miss the rest of their day. Each time "
                "zone's 03:00 schedule builds its clients' day once it is over there; to build "
                f"earlier days, pick days that are over, or tag the run {TIMEZONE_TAG}=<zone>."
            ),
            allow_retries=False,
        )
    return client_ids


def build_dbt_assets(
    config: ClientsConfig, daily: dg.DailyPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """Two dbt asset sets: views built on demand, and the incremental marts by day."""
    translator = FeedTranslator()

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        exclude=MARTS_SELECTION,
        dagster_dbt_translator=translator,
        name="moodle_views",
        pool=MARTS_POOL,  # two marts runs at once must not rebuild the views under each other
    )
    def moodle_views(
        context: dg.AssetExecutionContext, dbt: OdsDbtCliResource, warehouse_db: WarehouseResource
    ) -> Iterator[Any]:
        """Staging and intermediate views over the Moodle union views: built again only when the
        union views or the views' SQL changed, or a view is missing (views_state)."""
        unique_ids = [uid for uid in _unique_ids_of(context) if uid.startswith("model.")]
        with warehouse_db.connect(autocommit=True) as conn:
            wanted = views_fingerprint(conn, manifest(), unique_ids)
            missing = missing_views(conn, manifest(), unique_ids)
            if wanted is not None and not missing and built_for(conn) == wanted:
                context.log.info(
                    f"the {len(unique_ids)} views are as built from the same union views and SQL: "
                    "dbt not run (they and their tests are re-built when either changes)"
                )
                # Still an output per view: the marts downstream run only after their inputs
                # did (an output not yielded would skip them).
                for key in _in_dependency_order(context):
                    yield dg.MaterializeResult(
                        asset_key=key, metadata={"rebuilt": False, "built_from": wanted}
                    )
                return
        if missing:
            context.log.info(f"building the views; missing: {', '.join(missing[:10])}")
        yield from dbt.build(VIEWS_BUILD_ARGS, context)
        if wanted is not None and context.selected_asset_keys == set(context.assets_def.keys):
            with warehouse_db.connect(autocommit=True) as conn:
                record_built(conn, wanted)

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        select=MARTS_SELECTION,
        partitions_def=daily,
        dagster_dbt_translator=translator,
        name="feed_marts",
        pool=MARTS_POOL,
    )
    def feed_marts(context: dg.AssetExecutionContext, dbt: OdsDbtCliResource) -> Iterator[Any]:
        """One incremental mart per feed; a run rebuilds exactly its days (a backfill is one run),
        for its time zone's clients (or the clients it names), leaving every other client's rows
        as they were."""
        first, last = context.partition_key_range.start, context.partition_key_range.end
        client_ids = clients_to_build(
            config, context.run.tags, dt.date.fromisoformat(last), dt.datetime.now(dt.UTC)
        )
        context.log.info(f"building {first}..{last} for {len(client_ids)} client(s): {client_ids}")
        everyone = len(client_ids) == len(config.clients)
        build = marts_build(
            first, last, config.lookback_days, client_ids=None if everyone else client_ids
        )
        yield from dbt.build(build.args, context, settings_env=build.env)

    return [moodle_views, feed_marts]
