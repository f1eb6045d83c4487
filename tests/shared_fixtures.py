"""Fixtures that several test modules share, loaded for every module by tests/conftest.py's
`pytest_plugins` (a module's own fixture of the same name wins).

Nothing else imports this module, so pytest loads it as a plugin first (and rewrites its asserts).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ods_local.postgres import LocalPostgres
from ods_local.sftp_server import LocalSftpServer
from tests.e2e_support import add_sftp_account, client_entry, write_clients_file
from tests.files_step_support import acme_sftp_site, fill_completion_mart


@pytest.fixture(scope="module")
def sftp_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of `sftp_server`'s keys: its host key, and each account's private key under the
    account's name."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def sftp_server(
    tmp_path_factory: pytest.TempPathFactory, sftp_keys: Path
) -> Iterator[LocalSftpServer]:
    """A local SFTP server for the whole module, with two clients' accounts, acme and globex
    (add_sftp_account: a key pair in `sftp_keys`, an `outbound` folder in the account's root)."""
    server = LocalSftpServer(tmp_path_factory.mktemp("sftp"), host_key_path=sftp_keys / "host")
    for user in ("acme", "globex"):
        add_sftp_account(server, sftp_keys, user)
    with server:
        yield server


@pytest.fixture(scope="module")
def completion_mart(module_pg: LocalPostgres) -> LocalPostgres:
    """The module's database holding the small Completion mart of files_step_support (acme's
    ROWS)."""
    return fill_completion_mart(module_pg)


@pytest.fixture
def acme_files_site(
    completion_mart: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """acme_sftp_site for the test, over `completion_mart`: `clients(**options)` writes acme's
    clients file (client_entry with `options`) and points ODS_CLIENTS_FILE at it, returning its
    path; `archive` is the archive root, `folder` acme's folder on the server, `server` the server.
    """
    with acme_sftp_site(completion_mart, tmp_path, monkeypatch) as (server, key):

        def clients(**options: Any) -> Path:
            entry = client_entry("moodle_acme", server, "acme", key, **options)
            # No retries: a failure here is the test's, not a server's that may clear.
            path = write_clients_file(
                tmp_path / "clients.yaml", {"acme": entry}, delivery_retries=0
            )
            monkeypatch.setenv("ODS_CLIENTS_FILE", str(path))
            return path

        yield {
            "clients": clients,
            "archive": tmp_path / "archive",
            "folder": server.root / "acme" / "outbound",
            "server": server,
        }
