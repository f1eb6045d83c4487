"""Where the project keeps its files on this machine.

Everything that the local default run creates (embedded PostgreSQL data, SFTP folders and keys,
the archive of delivered files, Dagster's run history) lives under one git-ignored folder,
`.ods/` in the checkout, or wherever `ODS_HOME` points.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def ods_home() -> Path:
    """The folder that holds the local default's state (`ODS_HOME`, default `<checkout>/.ods`)."""
    return Path(os.environ.get("ODS_HOME", PROJECT_ROOT / ".ods")).resolve()


def venv_bin(name: str) -> Path:
    """A program installed beside the running interpreter (`.venv/bin/<name>`): `dbt`, `dagster`.

    The venv's bin folder is often not on PATH (make, cron, a fresh shell), so programs of the
    project are run by this path rather than looked up on PATH."""
    return Path(sys.executable).with_name(name)


def dbt_parse_args() -> list[str]:
    """`dbt parse` of the project, which writes the manifest that dagster-dbt reads; it needs no
    database connection."""
    return [
        "parse",
        "--quiet",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
