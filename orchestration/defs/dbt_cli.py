"""dagster-dbt's `DbtCliResource`, with what a night of many marts runs needs from it.

Each dbt step of a run starts a `dbt` process. What that costs by dagster-dbt's defaults, and
what this resource does instead (figures: CPU-seconds on the 2-core machine of the README):

- **`dbt --version`** (about 3 s): dagster-dbt starts it once per resource instance, which is once
  per run, to learn dbt's version. The `dbt` run here is always the venv's own (code_location.py),
  so the version is the installed dbt-core's, read from the package metadata.
- **A full parse of the project** (about 4-5 s, growing with the project): dbt parses only what
  changed since its last parse (partial parsing) when it finds that parse's state in the target
  folder and the vars, profile and project are the same. dagster-dbt gives each invocation a new
  target folder and seeds it with `target/partial_parse.msgpack`, written once by `ods parse`
  without the warehouse's `PG*` variables, so every build parsed everything again. Here each
  successful build's parse state is kept per warehouse (`target/parse_state/`, named by a hash
  of the profile's variables) and seeds the next build; the build's settings travel as
  environment variables, not vars (macros/build_setting.sql says why). A night's build then
  re-parses the six files that read those settings.
- **Starting dbt** (about 3 s of imports before dbt reads a file): the `dbt` run is `ods-dbt`,
  which has a server that imported dbt once fork it (orchestration/dbt_server.py); the server
  belongs to the process running the steps and ends with it. `ODS_DBT_FORKED=0` turns it off.
- **A dbt adapter in the calling process** (about 1 s): for every invocation dagster-dbt loads
  the project, the profile and dbt's macros into the process running the step, to make an adapter
  that only its `.fetch_row_counts()` and `.fetch_column_metadata()` use. Neither is asked for
  here (rows and bytes are measured on the files), so no adapter is made.
- **The invocation's folder** (about 3 MB: manifest, run results, logs): dagster-dbt leaves one
  per invocation, for ever. A build that succeeded has its folder removed (its events and logs
  are in the run's event log); a failed build's folder stays for whoever looks into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.dbt_server import (
    SERVER_ENV,
    forked_dbt_enabled,
    running_server,
    server_address,
)
from orchestration.paths import venv_bin

FORKED_DBT = "ods-dbt"  # dbt forked from a preloaded server (orchestration/dbt_server.py)

# The environment variables dbt_project/profiles.yml reads (tests/test_dbt_cli.py keeps the two
# in step): dbt parses everything again when any of them differs from its last parse.
PROFILE_ENV_VARS = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")
PARSE_STATE_FILE = "partial_parse.msgpack"
# Parse states kept (about 1.4 MB each): enough for a host's warehouses, bounded for a checkout
# whose test runs each make their own databases.
KEEP_PARSE_STATES = 8

# dagster-dbt starts dbt with a copy of this process's environment and has no parameter for an
# environment of its own; the settings are put into it for the moment dbt is started, one start
# at a time (they are not secrets, and restored at once).
_environment_lock = threading.Lock()


@contextmanager
def with_environment(values: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with `values` set, for the block; as it was afterwards. One
    block at a time (a lock): the environment is the process's, shared by its threads."""
    with _environment_lock:
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


def parse_state_path(target_root: Path, environ: Mapping[str, str]) -> Path:
    """Where the parse state of builds against this warehouse is kept: one file per set of the
    profile's variables (a hash of their values: the password is part of it, never written)."""
    profile = "\0".join(f"{name}={environ.get(name, '')}" for name in PROFILE_ENV_VARS)
    key = hashlib.sha256(profile.encode()).hexdigest()[:16]
    return target_root / "parse_state" / f"{key}.msgpack"


_PARTIAL = re.compile(
    r"Partial parsing enabled: (\d+) files deleted, (\d+) files added, (\d+) files changed"
)
_FULL = re.compile(r"(Unable to do partial parsing because [^.\"\\]*|saved manifest not found)")


def parse_summary(dbt_log: Path) -> str:
    """One line from the build's dbt.log: whether dbt parsed the project in full, and why, or
    partially, and how many files had changed."""
    try:
        with dbt_log.open(errors="replace") as log:
            for line in log:  # the parse is logged near the top: stop at it
                if partial := _PARTIAL.search(line):
                    deleted, added, changed = (int(n) for n in partial.groups())
                    return (
                        "dbt parsed the project partially, from the last build's parse state "
                        f"({changed} changed, {added} added, {deleted} deleted files parsed again)"
                    )
                if full := _FULL.search(line):
                    return f"dbt parsed the project in full ({full[1]})"
    except OSError:
        return f"dbt's log was not written ({dbt_log})"
    return "dbt parsed the project (its log does not say how)"


def prune_parse_states(folder: Path, keep: int = KEEP_PARSE_STATES) -> list[Path]:
    """Remove all but the `keep` most recently written parse states (a warehouse whose password
    or port changed leaves its old one; the test suite makes one per test database); returns
    what was removed."""

    def written(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except FileNotFoundError:  # pruned meanwhile by another build
            return 0.0

    states = sorted(folder.glob("*.msgpack"), key=written, reverse=True)
    for old in states[keep:]:
        old.unlink(missing_ok=True)
    return states[keep:]


class OdsDbtCliResource(DbtCliResource):
    """dbt as dagster-dbt runs it, without a `dbt --version` per run, with dbt's partial parsing
    kept between builds, and without leaving each successful build's target folder behind
    (orchestration/defs/dbt_cli.py)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable) in (venv_bin("dbt"), venv_bin(FORKED_DBT)):  # this venv's dbt
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        """No dbt adapter in this process (see the module's docstring): dagster-dbt runs the
        invocation without one, as it does for dbt Fusion."""
        return None

    def build(
        self,
        args: Sequence[str],
        context: dg.AssetExecutionContext,
        settings_env: Mapping[str, str] | None = None,
    ) -> Iterator[Any]:
        """Run `dbt <args>` for the step, with the build's settings (ODS_DBT_* variables) in
        dbt's environment, and stream its events; see the module's docstring."""
        target_root = Path(self.project_dir) / "target"
        step = context.op_execution_context.op.name
        target = target_root / f"{step}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:7]}"
        state = parse_state_path(target_root, os.environ)
        target.mkdir(parents=True)
        with contextlib.suppress(FileNotFoundError):  # none yet, or just pruned: a full parse
            shutil.copyfile(state, target / PARSE_STATE_FILE)
        environment = dict(settings_env or {})
        if Path(self.dbt_executable).name == FORKED_DBT and forked_dbt_enabled():
            environment[SERVER_ENV] = server_address()
            server = running_server()
            context.log.info(
                f"dbt starts forked from this process's dbt server (pid {server and server.pid})"
            )
        with with_environment(environment):
            invocation = self.cli(list(args), context=context, target_path=target)
        yield from invocation.stream()
        # Reached only when dbt succeeded (stream raises otherwise): say what dbt parsed, keep
        # its parse state for the next build, then remove its folder.
        context.log.info(parse_summary(target / "dbt.log"))
        self._keep_parse_state(context, target / PARSE_STATE_FILE, state)
        shutil.rmtree(target, ignore_errors=True)

    @staticmethod
    def _keep_parse_state(context: dg.AssetExecutionContext, made: Path, state: Path) -> None:
        if not made.exists():
            return
        try:
            state.parent.mkdir(parents=True, exist_ok=True)
            staged = state.with_name(f".{state.name}.{os.getpid()}.{threading.get_ident()}")
            shutil.copyfile(made, staged)
            os.replace(staged, state)  # a build starting meanwhile reads the old state or this
            prune_parse_states(state.parent)
        except OSError as error:  # a read-only image: builds parse in full, as before
            context.log.warning(f"dbt's parse state could not be kept in {state.parent}: {error}")
