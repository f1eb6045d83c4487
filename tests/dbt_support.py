"""Running dbt from tests: the venv's dbt against a test database, in the test's own folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from orchestration.paths import DBT_PROJECT_DIR

VENV_BIN = Path(sys.executable).parent


def run_dbt(
    command: str,
    dirs: Path,
    env: dict[str, str],
    dbt_vars: dict[str, Any] | None = None,
    *extra: str,
    target: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`dbt <command>` with the test database's PG* `env`; fails the test with dbt's output.

    Each test module passes its own `dirs` (target and log folders), so modules never share
    dbt's state.
    """
    args = [
        str(VENV_BIN / "dbt"),
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
    full_env = {
        **os.environ,
        **env,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    result = subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"dbt {command} failed:\n{result.stdout[-8000:]}{result.stderr}"
    return result
