"""`make ui` from a fresh clone: the Dagster UI starts with nothing added to PATH, its code location
loads without error, and its asset graph holds every feed's file and delivery assets and checks.

The UI is started the way `make ui` starts it (`ods ui --port N`), in a process group of its own,
with a minimal environment (PATH=/usr/bin:/bin, so `dbt` is not on PATH), and asked over GraphQL.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ods_local.postgres import LocalPostgres
from ods_local.services import process_group_alive
from orchestration.delivery.keys import generate_key_pair
from orchestration.feeds import FEEDS
from orchestration.paths import PROJECT_ROOT

START_TIMEOUT = 120

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on PythonError { message causes { message } }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

ASSETS_QUERY = """
{
  assetNodes {
    assetKey { path }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name } }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clients_file(folder: Path) -> Path:
    """Two remote clients that between them take every feed; their key files exist."""
    keys = folder / "keys"
    generate_key_pair(keys / "host_key", "test-host")
    clients = {}
    for client_id, feeds in (("acme", ["scorm", "f2f"]), ("globex", ["quiz", "completion"])):
        generate_key_pair(keys / client_id, f"test-{client_id}")
        clients[client_id] = {
            "name": client_id.title(),
            "moodle_schema": f"moodle_{client_id}",
            "feeds": {feed: {} for feed in feeds},
            "sftp": {
                "host": "sftp.example.org",
                "username": client_id,
                "directory": "/outbound",
                "private_key_path": f"keys/{client_id}",  # relative to the clients file's folder
                "host_key_file": "keys/host_key.pub",
            },
        }
    assert set(FEEDS) == {feed for c in clients.values() for feed in c["feeds"]}
    path = folder / "clients.yaml"
    path.write_text(yaml.safe_dump({"timezone": "Europe/London", "clients": clients}))
    return path


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


def _wait_for_webserver(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the UI exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"the webserver did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the UI's whole process group (dagster dev, webserver, daemon, code server), then
    SIGKILL what is left after 20 s; fails if anything of it survives."""
    pgid = process.pid
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        if not process_group_alive(pgid):
            break
        os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while process_group_alive(pgid) and time.monotonic() < deadline:
            process.poll()  # reap the leader, so that the group can disappear
            time.sleep(0.2)
    process.wait(timeout=5)
    assert not process_group_alive(pgid), "a process of the UI was left running"


@pytest.fixture
def ui(pg: LocalPostgres, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ODS_HOME": str(tmp_path / "ods"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "ODS_CLIENTS_FILE": str(_clients_file(tmp_path)),
        **pg.libpq_env(),
    }
    (tmp_path / "dagster").mkdir()
    elsewhere = tmp_path / "elsewhere"  # neither the checkout nor the clients file's folder
    elsewhere.mkdir()
    log = tmp_path / "ui.log"
    ods = Path(sys.executable).with_name("ods")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ods), "ui", "--port", str(port)],
            cwd=elsewhere,  # `ods ui` runs dagster dev from the project root
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_for_webserver(port, process, log)
        yield port, log
    finally:
        _stop_group(process)


def test_make_ui_serves_every_feed_with_nothing_on_path(ui):
    port, log = ui
    deadline = time.monotonic() + 60
    while True:  # the code location may still be loading when the webserver first answers
        workspace = _graphql(port, WORKSPACE_QUERY)["workspaceOrError"]
        assert workspace["__typename"] == "Workspace", workspace
        entries = workspace["locationEntries"]
        loaded = [e["locationOrLoadError"] for e in entries]
        if all(loaded) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(entries) == 1, entries
    location = entries[0]["locationOrLoadError"]
    assert location is not None, f"the code location did not load:\n{log.read_text()}"
    errors = [location.get("message")] + [c["message"] for c in location.get("causes") or []]
    assert location["__typename"] == "RepositoryLocation", "\n".join(filter(None, errors))

    nodes = _graphql(port, ASSETS_QUERY)["assetNodes"]
    checks = {
        "/".join(node["assetKey"]["path"]): sorted(
            check["name"] for check in node["assetChecksOrError"].get("checks", [])
        )
        for node in nodes
    }
    for feed in FEEDS:
        assert checks.get(f"{feed}_file") == ["header_matches_config", "rows_match_mart"], feed
        assert checks.get(f"{feed}_delivery") == ["delivered_by_0500"], feed
    assert any(key.endswith(FEEDS["completion"].mart) for key in checks), sorted(checks)
    assert (PROJECT_ROOT / "dbt_project" / "target" / "manifest.json").exists()
