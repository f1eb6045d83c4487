"""The union views over every client's replicated Moodle schema: what dbt's `moodle` source reads."""

from collections.abc import Iterator

import dagster as dg

from orchestration.clients import ClientsConfig
from orchestration.defs.resources import WarehouseResource
from orchestration.moodle.replica_indexes import create_replica_indexes
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

    @dg.multi_asset(specs=specs, name="moodle_union_views")
    def moodle_union_views(
        context: dg.AssetExecutionContext, warehouse_db: WarehouseResource
    ) -> Iterator[dg.MaterializeResult]:
        """(Re)create the union views, the client settings table and the replicas' day-window indexes."""
        sources = moodle_sources(config)
        with warehouse_db.connect() as conn:
            report = create_union_views(conn, sources)
            indexes = create_replica_indexes(
                conn, [(s.moodle_schema, s.table_prefix) for s in sources]
            )
        context.log.info(f"union views over {len(sources)} client schemas: {report}")
        if indexes:
            context.log.info(f"created day-window indexes: {', '.join(indexes)}")
        for spec in specs:
            yield dg.MaterializeResult(
                asset_key=spec.key,
                metadata={"clients": ", ".join(s.client_id for s in sources)},
            )

    return moodle_union_views
