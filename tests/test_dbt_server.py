"""`ods-dbt` and its server (orchestration/dbt_server.py): a dbt forked from a process that has
imported dbt behaves as the `dbt` program does: same output and exit code, the caller's
environment and working folder, ^C passed on, killed with its caller, and a server that ends with
the process that started it.

A small dbt project of the test's own (a macro that greets from an environment variable, one that
sleeps in PostgreSQL) on the session's real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from ods_local.postgres import LocalPostgres
from orchestration.dbt_server import SERVER_ENV, running_server, server_address
from orchestration.paths import venv_bin

ODS_DBT = str(venv_bin("ods-dbt"))
DBT = str(venv_bin("dbt"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dbt_server_project")
    (folder / "dbt_project.yml").write_text(
        "name: server_check\nversion: '1.0'\nprofile: server_check\nconfig-version: 2\n"
    )
    (folder / "profiles.yml").write_text(
        textwrap.dedent("""\
        server_check:
          target: dev
          outputs:
            dev:
              type: postgres
              host: "{{ env_var('PGHOST') }}"
              port: "{{ env_var('PGPORT') | as_number }}"
              user: "{{ env_var('PGUSER') }}"
              password: ""
              dbname: "{{ env_var('PGDATABASE') }}"
              schema: public
              threads: 1
        """)
    )
    (folder / "macros").mkdir()
    (folder / "macros" / "checks.sql").write_text(
        textwrap.dedent("""\
        {% macro greet() %}{{ log("greeting: " ~ env_var("ODS_TEST_GREETING"), info=True) }}{% endmacro %}
        {% macro nap(seconds) %}{% do run_query("select pg_sleep(" ~ seconds ~ ")") %}{% endmacro %}
        """)
    )
    return folder


@pytest.fixture
def environment(pg: LocalPostgres, tmp_path: Path) -> dict[str, str]:
    """What dbt is started with: the test database, its own log and target folders."""
    return {
        **os.environ,
        **pg.libpq_env(),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "ODS_TEST_GREETING": "hello from the caller",
    }


def _dbt(program: str, project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`<program> <args>` started as dagster-dbt starts dbt: stdout a pipe, stderr into it, the
    project as working folder (given as `.`: only the caller's folder makes it right)."""
    return subprocess.Popen(
        [program, *args, "--project-dir", ".", "--profiles-dir", "."],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _this_processs_server() -> subprocess.Popen[bytes]:
    server_address()  # started by the first call, the same server afterwards
    server = running_server()
    assert server is not None
    return server


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _wait_for(condition: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_a_forked_dbt_prints_and_exits_as_the_dbt_program(project, environment):
    forked = {**environment, SERVER_ENV: server_address()}
    for args, code in ((("run-operation", "greet"), 0), (("build", "--no-such-option"), 2)):
        through_server = _dbt(ODS_DBT, project, forked, *args)
        plain = _dbt(DBT, project, environment, *args)
        out, expected = through_server.communicate(timeout=120)[0], plain.communicate(120)[0]
        assert (through_server.returncode, plain.returncode) == (code, code), out + expected
        if code == 0:  # the caller's environment and folder reached the forked dbt
            assert "greeting: hello from the caller" in out
            assert "greeting: hello from the caller" in expected
        else:
            assert "No such option" in out and out == expected


def _interrupted(dbt: subprocess.Popen[str], pg: LocalPostgres) -> int:
    """Send ^C to a dbt inside its 4-second nap, as dagster-dbt stops a step; its exit code (0
    had the signal not reached dbt)."""

    def napping() -> bool:
        with psycopg.connect(pg.conninfo()) as conn:
            return conn.execute(  # dbt puts a comment before the query
                "select count(*) from pg_stat_activity"
                " where query like '%select pg_sleep(%' and pid <> pg_backend_pid()"
            ).fetchone() == (1,)

    _wait_for(napping, 60, "dbt inside its query")
    dbt.send_signal(signal.SIGINT)
    dbt.communicate(timeout=60)
    return dbt.returncode


def test_the_dbt_is_a_child_of_the_server_and_a_sigint_reaches_it(project, environment, pg):
    server = _this_processs_server()
    nap = ("run-operation", "nap", "--args", "{seconds: 4}")
    before = set(_children(server.pid))
    forked = _dbt(ODS_DBT, project, {**environment, SERVER_ENV: server_address()}, *nap)
    (child,) = _wait_for(lambda: set(_children(server.pid)) - before, 60, "a dbt forked")
    code = _interrupted(forked, pg)
    _wait_for(lambda: _gone(child), 10, "the dbt child ended")
    assert code == _interrupted(_dbt(DBT, project, environment, *nap), pg) != 0
    assert server.poll() is None  # the server serves on


def test_a_killed_caller_takes_its_dbt_with_it_and_a_killed_dbt_its_caller(project, environment):
    server = _this_processs_server()
    forked = {**environment, SERVER_ENV: server_address()}
    args = ("run-operation", "nap", "--args", "{seconds: 60}")

    before = set(_children(server.pid))
    caller = _dbt(ODS_DBT, project, forked, *args)
    (child,) = _wait_for(lambda: set(_children(server.pid)) - before, 60, "a dbt child forked")
    caller.kill()  # as when a run worker's process group is killed
    caller.wait(10)
    _wait_for(lambda: _gone(child), 10, "the dbt of a killed ods-dbt ended")

    before = set(_children(server.pid))
    caller = _dbt(ODS_DBT, project, forked, *args)
    (child,) = _wait_for(lambda: set(_children(server.pid)) - before, 60, "a dbt child forked")
    os.kill(child, signal.SIGKILL)  # e.g. the kernel's out-of-memory killer
    caller.communicate(timeout=30)
    assert caller.returncode == -signal.SIGKILL


def test_without_a_reachable_server_ods_dbt_runs_dbt_itself(project, environment, tmp_path):
    for env in (environment, {**environment, SERVER_ENV: str(tmp_path / "no-server.sock")}):
        dbt = _dbt(ODS_DBT, project, env, "run-operation", "greet")
        out = dbt.communicate(timeout=120)[0]
        assert dbt.returncode == 0, out
        assert "greeting: hello from the caller" in out


def test_the_server_ends_with_the_process_that_started_it():
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "from orchestration.dbt_server import server_address, running_server; "
            "print(server_address(), running_server().pid)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    address, pid = started.stdout.split()
    _wait_for(lambda: _gone(int(pid)), 10, "the server ended with its process")
    assert not Path(address).parent.exists()  # its socket folder removed
