"""The Dagster code location that `workspace.yaml` loads (`dagster dev -w workspace.yaml`)."""

from orchestration.defs.code_location import build_definitions

defs = build_definitions()
