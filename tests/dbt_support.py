"""Running dbt from tests: the installed dbt against a test database, in the test's own folders.

dbt runs in the test process through its programmatic entry point (`dbtRunner`), with the same
arguments as the command line, which saves starting a Python process and importing dbt (about 3 s
a call here). dbt reads its environment (the `PG*` variables of profiles.yml) when invoked, so
the test database's variables are set for the duration of the call only.

A build's settings (`dbt_vars`: the day window, lookback_days, record_days_built, client_ids)
go to dbt as Dagster gives them, as ODS_DBT_* environment variables (orchestration/dbt_args.py),
unless `as_vars` asks for `--vars`, as an analyst would type them. Each module keeps its own
target folder, so from its second call on dbt parses only what the settings changed.

Also what every dbt test module builds on: the warehouse of its sites (`sites_with_people`) and
which of the people's rows a mart sends at all (`sent`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import yaml

from ods_local.postgres import LocalPostgres
from orchestration.dbt_args import BUILD_SETTING_ENV_PREFIX, BUILD_SETTINGS, build_settings_env
from orchestration.defs.dbt_cli import with_environment
from orchestration.feeds import Feed
from orchestration.moodle.union_views import create_union_views
from orchestration.paths import DBT_PROJECT_DIR
from tests.dbt_people import COURSES, USERS, Site, create_site_with_people


def _no_build_settings(given: dict[str, str]) -> dict[str, str]:
    """Empty values for the ODS_DBT_* variables this call does not give (empty is unset to
    macros/build_setting.sql), so a setting of another call never leaks into this one."""
    every = (f"{BUILD_SETTING_ENV_PREFIX}{name.upper()}" for name in BUILD_SETTINGS)
    return {variable: "" for variable in every if variable not in given}


@contextmanager
def sites_with_people(pg: LocalPostgres, sites: Sequence[Site]) -> Iterator[psycopg.Connection]:
    """An autocommit connection to `pg` where each site's Moodle schema holds USERS and COURSES
    and the union views read every site: the warehouse each dbt test module starts from. The
    module then inserts its own feed's rows (the views read whatever the tables hold)."""
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        for site in sites:
            create_site_with_people(conn, site)
        create_union_views(conn, [site.source for site in sites])
        yield conn


def sent(user_id: int, course_id: int) -> bool:
    """Whether a mart sends any row of USERS' `user_id` in COURSES' `course_id` (DESIGN.md
    "Feeds"): never for a deleted user, the guest user or the site course; a suspended user's
    rows are sent."""
    _, username, deleted, _ = next(user for user in USERS if user[0] == user_id)
    _, course_format, _ = next(course for course in COURSES if course[0] == course_id)
    return not (deleted or username == "guest" or course_format == "site")


def run_dbt(command: str, *arguments: Any, **options: Any) -> None:
    """`dbt <command>` as invoke_dbt runs it (same arguments), failing the test with dbt's output.

    Each test module passes its own `dirs` (target and log folders), so modules never share
    dbt's state.
    """
    success, log = invoke_dbt(command, *arguments, **options)
    assert success, f"dbt {command} failed:\n{log[-8000:]}"


def assert_mart_columns_are_canonical_and_documented(conn: Any, feed: Feed) -> None:
    """The feed's mart has the bookkeeping columns, then the feed's canonical columns, in that
    order; its YAML documents the same columns in the same order, each with a description."""
    columns = [
        row[0]
        for row in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'marts' and table_name = %s order by ordinal_position",
            (feed.mart,),
        )
    ]
    models_yml = DBT_PROJECT_DIR / "models" / "marts" / feed.name / f"_{feed.name}__models.yml"
    documented = yaml.safe_load(models_yml.read_text())["models"][0]["columns"]
    canonical = ["client_id", "report_date", "change_key", "entity_key", *feed.column_names]
    assert columns == canonical
    assert [column["name"] for column in documented] == canonical
    assert all(column.get("description") for column in documented)


def assert_build_passed(results: list[dict[str, Any]], unit_tests_of: str = "") -> list[str]:
    """Every model, unit test and data test of a build's run_results passed; returns the ids of
    the unit tests whose id names `unit_tests_of` (a feed; every one by default), for the caller
    to count."""
    by_kind: dict[str, set[str]] = {}
    for result in results:
        by_kind.setdefault(result["unique_id"].split(".")[0], set()).add(result["status"])
    assert by_kind["unit_test"] == {"pass"}
    assert by_kind["test"] == {"pass"}
    assert by_kind["model"] == {"success"}
    return [
        result["unique_id"]
        for result in results
        if result["unique_id"].startswith("unit_test.") and unit_tests_of in result["unique_id"]
    ]


def invoke_dbt(
    command: str,
    dirs: Path,
    env: dict[str, str],
    dbt_vars: dict[str, Any] | None = None,
    *extra: str,
    target: Path | None = None,
    as_vars: bool = False,
) -> tuple[bool, str]:
    """`dbt <command>` with the test database's PG* `env`, for a test that expects it may fail:
    (success, log, ending with dbt's exception when there was one). run_dbt fails the test
    instead."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.base_types import EventLevel, EventMsg

    args = [
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target or dirs / "target"),
        "--log-path",
        str(dirs / "logs"),
        *extra,
    ]
    settings: dict[str, str] = {}
    if dbt_vars is not None and as_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    elif dbt_vars is not None:
        settings = build_settings_env(dbt_vars)
    output: list[str] = []

    def keep(event: EventMsg) -> None:
        if event.info.level != EventLevel.DEBUG:
            output.append(event.info.msg)

    settings.update({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"})
    with with_environment({**env, **settings, **_no_build_settings(settings)}):
        result = dbtRunner(callbacks=[keep]).invoke(args)
    return bool(result.success), "\n".join(output) + f"\n{result.exception or ''}"
