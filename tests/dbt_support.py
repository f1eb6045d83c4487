"""Running dbt from tests: the installed dbt against a test database, in the test's own folders.

dbt runs in the test process through its programmatic entry point (`dbtRunner`), with the same
arguments as the command line. Each call still parses the project and connects afresh; what is
saved is starting a Python process and importing dbt (about 3 s of the 6–10 s a call takes
here). dbt reads its environment (the `PG*` variables of profiles.yml) when invoked, so the test
database's variables are set for the duration of the call only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from orchestration.feeds import Feed
from orchestration.paths import DBT_PROJECT_DIR


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_dbt(
    command: str,
    dirs: Path,
    env: dict[str, str],
    dbt_vars: dict[str, Any] | None = None,
    *extra: str,
    target: Path | None = None,
) -> None:
    """`dbt <command>` with the test database's PG* `env`; fails the test with dbt's output.

    Each test module passes its own `dirs` (target and log folders), so modules never share
    dbt's state.
    """
    success, log = invoke_dbt(command, dirs, env, dbt_vars, *extra, target=target)
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
) -> tuple[bool, str]:
    """`dbt <command>` as run_dbt runs it, for a test that expects it may fail: (success, log,
    ending with dbt's exception when there was one)."""
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
    if dbt_vars is not None:
        args += ["--vars", json.dumps(dbt_vars)]
    output: list[str] = []

    def keep(event: EventMsg) -> None:
        if event.info.level != EventLevel.DEBUG:
            output.append(event.info.msg)

    settings = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}
    with _environment({**env, **settings}):
        result = dbtRunner(callbacks=[keep]).invoke(args)
    return bool(result.success), "\n".join(output) + f"\n{result.exception or ''}"
