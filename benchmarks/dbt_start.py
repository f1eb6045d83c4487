"""What starting dbt costs a dbt step: `dbt parse` of the project with nothing to parse again, as
a new `dbt` process (how dagster-dbt starts dbt) and forked from the dbt server (`ods-dbt`,
orchestration/dbt_server.py, how the code location's steps start it).

    .venv/bin/python benchmarks/dbt_start.py [--runs 3]

Prints wall seconds and CPU-seconds of each `dbt parse` (a new process's own CPU; a forked dbt's
CPU as its server counts it when it ends), and the server's own start (its imports, once per
process that runs dbt steps). Needs no database: `dbt parse` does not connect.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from orchestration.dbt_server import SERVER_ENV, running_server, server_address
from orchestration.paths import DBT_PROJECT_DIR, venv_bin

TICKS = os.sysconf("SC_CLK_TCK")


def _reaped_cpu(pid: int) -> float:
    """CPU-seconds of the ended children process `pid` has waited for (cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICKS


def _own_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _parse(program: Path, env: dict[str, str], target: Path) -> None:
    subprocess.run(
        [str(program), "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def measure(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dbt-start-") as scratch:
        target = Path(scratch) / "target"
        env = {k: v for k, v in os.environ.items() if k != SERVER_ENV}
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        _parse(venv_bin("dbt"), env, target)  # the parse state, so each run below parses nothing
        print(f"dbt parse, nothing to parse again, {runs} times each (wall s / CPU s):")
        for _ in range(runs):
            cpu, started = _own_children_cpu(), time.monotonic()
            _parse(venv_bin("dbt"), env, target)
            print(f"  new dbt process:  {time.monotonic() - started:5.2f} / "
                  f"{_own_children_cpu() - cpu:5.2f}")  # fmt: skip
        started, cpu = time.monotonic(), _own_children_cpu()
        forked = {**env, SERVER_ENV: server_address()}
        server = running_server()
        assert server is not None
        print(f"  dbt server start: {time.monotonic() - started:5.2f} s wall (its imports, once)")
        for _ in range(runs):
            cpu, server_cpu, started = (
                _own_children_cpu(),
                _reaped_cpu(server.pid),
                time.monotonic(),
            )
            _parse(venv_bin("ods-dbt"), forked, target)
            spent = _own_children_cpu() - cpu + _reaped_cpu(server.pid) - server_cpu
            print(f"  forked (ods-dbt): {time.monotonic() - started:5.2f} / {spent:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="parses of each kind (default 3)")
    measure(parser.parse_args().runs)


if __name__ == "__main__":
    main()
