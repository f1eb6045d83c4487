"""The Dagster code location that `workspace.yaml` loads (`dagster dev -w workspace.yaml`).

On the local default (PGHOST unset) this module, the first thing every Dagster process of the
code location imports, starts the embedded PostgreSQL and exports its `PG*` settings, once, so
that the runs and dbt subprocesses it starts inherit them (orchestration/warehouse.py)."""

from orchestration import warehouse
from orchestration.defs.code_location import build_definitions

warehouse.export_local_default()
defs = build_definitions()
