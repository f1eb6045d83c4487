"""Dagster definitions: the glue on top of the pure modules (config, dbt, export, delivery)."""
