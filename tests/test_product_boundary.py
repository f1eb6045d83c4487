"""The product (`orchestration`) apart from the local tooling (`ods_local`: embedded PostgreSQL,
local SFTP and mail servers, the demo; `synthetic_moodle`: the synthetic site generator).

The tooling depends on the product, never the other way round: no product module imports tooling
at module level, and the few functions that do are the local default's own paths (listed below,
each reached only when the local default is chosen or a tooling command runs). Loading the code
location against a real warehouse imports no tooling module at all; the production image does not
even ship them (tests/test_deploy_files.py loads the code location there)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from orchestration.paths import PROJECT_ROOT

PRODUCT = PROJECT_ROOT / "orchestration"
TOOLING = ("ods_local", "synthetic_moodle")

# (module, function): where the product reaches the tooling, and why that is the local default.
LOCAL_DEFAULT_PATHS = {
    # PGHOST unset outside production: start the embedded PostgreSQL.
    ("orchestration/warehouse.py", "local_default_settings"),
    # DAGSTER_HOME unset: the local demo's instance.
    ("orchestration/cli.py", "_instance_home"),
    # No SMTP server configured and the local mail sink's home given (the local default's).
    ("orchestration/defs/alerts.py", "channels"),
    # `ods contract --source synthetic`: a synthetic site on the embedded server.
    ("orchestration/commands/contract.py", "_write"),
}


def _tooling_imports(path: Path) -> list[tuple[str | None, str]]:
    """(enclosing function or None at module level, imported module) of each tooling import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str | None, str]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name if function is None else function
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
            found.extend((function, n) for n in names if n.split(".")[0] in TOOLING)
            visit(child, inner)

    visit(tree, None)
    return found


def test_no_product_module_imports_the_tooling_except_on_the_local_default_paths() -> None:
    reached = set()
    for path in sorted(PRODUCT.rglob("*.py")):
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        for function, module in _tooling_imports(path):
            assert function is not None, f"{relative} imports {module} at module level"
            assert (relative, function) in LOCAL_DEFAULT_PATHS, (
                f"{relative}:{function} imports {module}: the product may reach the local "
                "tooling only on the local default's paths (LOCAL_DEFAULT_PATHS)"
            )
            reached.add((relative, function))
    assert reached == LOCAL_DEFAULT_PATHS  # none listed that no longer exists


def test_the_tooling_packages_are_not_inside_the_product() -> None:
    for name in TOOLING:
        assert not (PRODUCT / name).exists()
        assert (PROJECT_ROOT / name / "__init__.py").exists()


def test_loading_the_code_location_against_a_warehouse_imports_no_tooling(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("a private key file\n")
    clients = {
        "clients": {
            "acme": {
                "name": "Acme",
                "moodle_schema": "moodle_acme",
                "feeds": {"completion": None},
                "sftp": {
                    "host": "sftp.acme.example",
                    "username": "acme",
                    "private_key_path": "key",
                    "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOM0Ckey",
                },
            }
        }
    }
    (tmp_path / "clients.yaml").write_text(yaml.safe_dump(clients))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DAGSTER_"))}
    env |= {
        "ODS_CLIENTS_FILE": str(tmp_path / "clients.yaml"),
        "ODS_ARCHIVE_DIR": str(tmp_path / "archive"),
        "ODS_DEPLOYMENT": "production",
        "PGHOST": "warehouse.invalid",  # nothing connects at load
    }
    script = (
        "import json, sys\n"
        "import orchestration.definitions as location\n"
        "location.defs.get_repository_def()\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {TOOLING!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
