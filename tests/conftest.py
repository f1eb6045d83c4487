"""Shared fixtures: a real embedded PostgreSQL server for the whole test session."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from ods_local.postgres import LocalPostgres, start_postgres

# Fixtures more than one module takes (the local SFTP server with acme's and globex's accounts,
# acme's files-step site); a fixture a module defines itself wins over these.
pytest_plugins = ["tests.shared_fixtures"]

_database_numbers = itertools.count(1)

# The slowest modules (seconds each, mostly dbt), slowest first. `make test` runs pytest-xdist with
# `--dist loadfile --no-loadscope-reorder`: a worker takes the next module in collection order
# whenever it is free, so starting with these lets the quick modules fill the gaps at the end.
# (xdist's own order, most tests first, left the slowest modules, which have few tests, for last:
# one worker ran them alone for a minute.)
SLOWEST_FIRST = (
    "test_restart_safety.py",
    "test_alerts.py",
    "test_reruns_through_instance.py",
    "test_deploy_files.py",
    "test_delivery_once.py",
    "test_contract_command.py",
    "test_operations_delivery.py",
    "test_isolation_at_scale.py",
    "test_time_zones_end_to_end.py",
    "test_read_only_replicas.py",
    "test_quiet_commands.py",
    "test_late_rows_end_to_end.py",
    "test_four_feeds_end_to_end.py",
    "test_dbt_completion.py",
    "test_dbt_cli.py",
    "test_dbt_scorm.py",
    "test_dbt_f2f.py",
    "test_dbt_quiz.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FIRST)))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """One embedded PostgreSQL for the session, removed when the session ends."""
    pgdata = tmp_path_factory.mktemp("pg") / "pgdata"
    yield start_postgres(pgdata, cleanup_mode="delete")


@pytest.fixture
def pg(postgres_server: LocalPostgres) -> Iterator[LocalPostgres]:
    """A new, empty database on the session's server, for one test."""
    yield _new_database(postgres_server)


def _new_database(server: LocalPostgres) -> LocalPostgres:
    name = f"test_{next(_database_numbers)}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f"drop database if exists {name}")
        conn.execute(f"create database {name}")
    return replace(server, database=name)


@pytest.fixture(scope="module")
def module_pg(postgres_server: LocalPostgres) -> LocalPostgres:
    """A new, empty database shared by the tests of one module."""
    return _new_database(postgres_server)


@pytest.fixture(scope="module")
def dbt_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test module's own dbt target and log folders, so modules never share dbt's state."""
    return tmp_path_factory.mktemp("dbt")
