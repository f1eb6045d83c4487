"""The dbt resource of the code location (orchestration/defs/dbt_cli.py): a marts run gives dbt
its settings as environment variables, the next build of the same warehouse parses only what
those settings changed, and a successful build leaves no target folder behind.

Two marts runs on a real PostgreSQL, for two different days (two different windows): the first
parses the project in full (no parse state yet for this database), the second partially; the
ledger of days built shows the settings reached dbt (the window's days, recorded)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.dbt_args import BUILD_SETTING_ENV_PREFIX
from orchestration.dbt_server import running_server
from orchestration.defs.code_location import build_definitions
from orchestration.defs.dbt_cli import PROFILE_ENV_VARS, parse_state_path, prune_parse_states
from orchestration.defs.jobs import DAILY_MARTS_JOB
from orchestration.paths import DBT_PROJECT_DIR
from synthetic_moodle import SiteSpec, generate_site
from tests.e2e_support import acme_entry, ods_environment, write_clients_file

DAYS = (dt.date(2026, 11, 26), dt.date(2026, 11, 27))
TARGET_ROOT = DBT_PROJECT_DIR / "target"


def test_the_profile_variables_are_those_profiles_yml_reads() -> None:
    profiles = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    assert set(re.findall(r"env_var\('(\w+)'", profiles)) == set(PROFILE_ENV_VARS)


def test_each_warehouse_has_its_own_parse_state_named_without_its_password() -> None:
    one = {"PGHOST": "db", "PGPORT": "5432", "PGPASSWORD": "s3cret-pw"}
    assert parse_state_path(TARGET_ROOT, one) == parse_state_path(TARGET_ROOT, dict(one))
    assert parse_state_path(TARGET_ROOT, one) != parse_state_path(
        TARGET_ROOT, {**one, "PGPORT": "5433"}
    )
    assert "s3cret" not in str(parse_state_path(TARGET_ROOT, one))


def test_only_the_most_recent_parse_states_are_kept(tmp_path: Path) -> None:
    states = [tmp_path / f"{n:02d}.msgpack" for n in range(12)]
    for age, path in enumerate(states):  # 00 written last
        path.write_bytes(b"state")
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
    (tmp_path / "notes.txt").write_text("not a parse state")
    removed = prune_parse_states(tmp_path, keep=8)
    assert sorted(p.name for p in removed) == [p.name for p in states[8:]]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        *(p.name for p in states[:8]),
        "notes.txt",
    ]


@pytest.fixture(scope="module")
def two_nights(module_pg: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("dbt_cli")
    with psycopg.connect(module_pg.conninfo(), autocommit=True) as conn:
        generate_site(conn, SiteSpec("moodle_acme", start=DAYS[0], days=2, learners=12))
    clients_file = write_clients_file(
        tmp / "clients.yaml", {"acme": acme_entry()}, archive_dir=str(tmp / "archive")
    )
    with ods_environment(module_pg, clients_file):
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        state = parse_state_path(TARGET_ROOT, os.environ)
        state.unlink(missing_ok=True)  # left by an earlier session with this same database
        before = dict(os.environ)
        runs = [
            defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
                instance=instance, partition_key=day.isoformat()
            )
            for day in DAYS
        ]
        yield {
            "instance": instance,
            "runs": runs,
            "state": state,
            "before": before,
            "dbt": (defs.resources or {})["dbt"],
            "tmp": tmp,
        }


def _messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id)]


def test_the_first_build_parses_in_full_and_the_next_only_what_its_settings_changed(
    two_nights: dict[str, Any],
) -> None:
    first, second = (
        [m for m in _messages(two_nights["instance"], run) if m.startswith("dbt parsed the ")]
        for run in two_nights["runs"]
    )
    assert all(run.success for run in two_nights["runs"])
    # Each run has two dbt steps: the views (first run only; the second finds them as built)
    # and the marts.
    assert first[0].startswith("dbt parsed the project in full ("), first
    partial = re.fullmatch(
        r"dbt parsed the project partially, .* \((\d+) changed, 0 added, 0 deleted .*\)", second[-1]
    )
    assert partial, second
    # The files that read the settings (macros/build_setting.sql: a handful), not the project.
    assert 0 < int(partial[1]) <= 12
    assert two_nights["state"].exists()


def test_the_settings_reached_dbt_and_left_no_trace_in_the_environment(
    two_nights: dict[str, Any], module_pg: LocalPostgres
) -> None:
    with psycopg.connect(module_pg.conninfo()) as conn:
        built = {
            row[0]
            for row in conn.execute(
                "select distinct report_date from marts.feed_days_built where client_id = 'acme'"
            )
        }
    # record_days_built and each run's one-day window came from the ODS_DBT_* variables: a
    # build without them records nothing.
    assert built == set(DAYS)
    assert not [name for name in os.environ if name.startswith(BUILD_SETTING_ENV_PREFIX)]


def test_a_successful_build_leaves_no_target_folder(two_nights: dict[str, Any]) -> None:
    for run in two_nights["runs"]:
        left = [p.name for p in TARGET_ROOT.iterdir() if f"-{run.run_id[:8]}-" in p.name]
        assert left == [], left


def test_the_builds_started_dbt_from_this_processs_dbt_server(two_nights: dict[str, Any]) -> None:
    server = running_server()  # started by the first build, ends with this process
    assert server is not None
    for run in two_nights["runs"]:
        said = [m for m in _messages(two_nights["instance"], run) if "dbt server" in m]
        assert said and set(said) == {
            f"dbt starts forked from this process's dbt server (pid {server.pid})"
        }, said


def test_no_dbt_adapter_is_made_in_the_process_running_the_step(two_nights: dict[str, Any]) -> None:
    # dagster-dbt would load the project, profile and macros into this process for every dbt
    # invocation (about a CPU-second), for row counts and column metadata nobody asks for.
    invocation = two_nights["dbt"].cli(["parse"], target_path=two_nights["tmp"] / "parse")
    assert invocation.wait().is_successful()
    assert invocation.adapter is None
