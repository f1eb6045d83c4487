"""The union views over every client's replicated Moodle schema: what dbt's `moodle` source reads."""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.defs.jobs import MARTS_POOL
from orchestration.defs.resources import WarehouseResource
from orchestration.moodle.replica_indexes import missing_index_costs, missing_indexes
from orchestration.moodle.union_views import MoodleSource, create_union_views


def moodle_sources(config: ClientsConfig) -> list[MoodleSource]:
    return [
        MoodleSource(
            client_id=client_id,
            moodle_schema=client.moodle_schema,
            table_prefix=client.table_prefix,
            timezone=config.timezone_of(client_id),
        )
        for client_id, client in sorted(config.clients.items())
    ]


def build_union_views_asset(config: ClientsConfig, tables: list[str]) -> dg.AssetsDefinition:
    """One asset per dbt source table, all made by one step so the views always agree."""
    specs = [
        dg.AssetSpec(
            key=["moodle", table],
            group_name="moodle",
            description=(
                f"Union view moodle.{table}: the Moodle table of every configured client, "
                "with a leading client_id column."
            ),
        )
        for table in tables
    ]

    # In the marts pool with the dbt steps: two zones' marts runs at once (New York and Toronto
    # tick together) must not rewrite the views under each other.
    @dg.multi_asset(specs=specs, name="moodle_union_views", pool=MARTS_POOL)
    def moodle_union_views(
        context: dg.AssetExecutionContext, warehouse_db: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        """(Re)create the union views and the client settings table; replicas are only read.

        Missing day-window indexes on the replicas are reported, with what a day's read costs
        without them, not created: `ods replica-indexes` prints or applies them."""
        sources = moodle_sources(config)
        replicas = [(s.moodle_schema, s.table_prefix) for s in sources]
        with warehouse_db.connect() as conn:
            report = create_union_views(conn, sources)
            costs = missing_index_costs(conn, missing_indexes(conn, replicas))
        context.log.info(
            f"union views over {len(sources)} client schemas: "
            + ("unchanged, nothing written" if report["unchanged"] else "written")
            + (f"; dropped and made again: {report['recreated']}" if report["recreated"] else "")
        )
        if costs:
            context.log.warning(
                f"{len(costs)} day-window index(es) missing on the replicas, so those reads scan "
                f"whole tables: {', '.join(c['table'] + '(' + c['column'] + ')' for c in costs)}. "
                "`ods replica-indexes --print` gives the statements for the replica's DBA."
            )
        for spec in specs:
            missing = [c for c in costs if c["union_view"] == spec.key.path[-1]]
            metadata: dict[str, Any] = {
                "clients": len(sources),
                # True when nothing changed since the last run, so nothing was written.
                "unchanged": report["unchanged"],
            }
            if missing:
                metadata["missing_replica_indexes"] = dg.MetadataValue.json(missing)
            yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)

    return moodle_union_views
