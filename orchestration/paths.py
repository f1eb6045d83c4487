"""Where the project keeps its files on this machine.

Everything that the local default run creates (embedded PostgreSQL data, SFTP folders and keys,
the archive of delivered files, Dagster's run history) lives under one git-ignored folder,
`.ods/` in the checkout, or wherever `ODS_HOME` points.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def ods_home() -> Path:
    """The folder that holds the local default's state (`ODS_HOME`, default `<checkout>/.ods`)."""
    return Path(os.environ.get("ODS_HOME", PROJECT_ROOT / ".ods")).resolve()
