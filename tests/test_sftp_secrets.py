"""SFTP secrets through the `sftp_secrets` resource (issue 15, item 5): the code location binds a
`dg.EnvVar` for each variable the clients file names, the UI lists them by name, a run reads them
when it starts, and a missing one fails only its client's run, naming the client, the key and the
variable. The secret itself is in no event, run record or snapshot that Dagster keeps or shows.

acme logs in with a key (`private_key_env`), globex with a password (`password_env`), both on a
real local SFTP server; the runs are the real files step (export from a small hand-written
Completion mart, checks, delivery) and the real reconciliation of the folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql
from files_step_support import DAY, failure_message, fill_completion_mart

from ods_local.sftp_server import LocalSftpServer
from orchestration.clients import load_clients
from orchestration.defs.client_files import build_client_files_asset, delivery_key, file_key
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import CLIENT_FILES_JOB
from orchestration.defs.partitions import client_day_key, client_day_partitions
from orchestration.defs.reconciliation import RECONCILIATION_JOB
from orchestration.defs.resources import ArchiveResource, SftpSecrets, WarehouseResource
from orchestration.export import archive
from orchestration.feeds import FEEDS
from orchestration.paths import PROJECT_ROOT
from tests.e2e_support import add_sftp_account, client_entry, write_clients_file

# Dagster's own snapshot code (RepositorySnap.from_def, what the UI is sent) reads the deprecated
# ScheduleDefinition.environment_vars; nothing here sets it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Property `ScheduleDefinition.environment_vars` is deprecated:DeprecationWarning"
)

NAME = "Completion20261128.csv"  # DAY's file: dated the day after the activity day
ACME_KEY = "ODS_TEST_ACME_SFTP_KEY"
GLOBEX_PASSWORD = "ODS_TEST_GLOBEX_SFTP_PASSWORD"
PASSWORD = "globex-secret-4711-correct-horse"
COMPLETION = FEEDS["completion"]


@dataclass
class Site:
    server: LocalSftpServer
    clients_file: Path
    archive: Path
    key_text: str
    instance: dg.DagsterInstance
    env: pytest.MonkeyPatch

    def delivered(self, client_id: str) -> bytes:
        """The client's file for DAY as it is in its folder; the same bytes as in the archive."""
        remote = (self.server.root / client_id / "outbound" / NAME).read_bytes()
        assert (
            remote
            == (archive.feed_folder(self.archive, client_id, "completion") / NAME).read_bytes()
        )
        return remote

    def not_delivered(self, client_id: str) -> bool:
        return not (self.server.root / client_id / "outbound" / NAME).exists()

    def secret_fragments(self) -> list[str]:
        """What must never be stored or shown: the password, and each line of the key's body."""
        body = [line for line in self.key_text.splitlines() if line and "PRIVATE KEY" not in line]
        assert body
        return [PASSWORD, *body]


@pytest.fixture
def site(pg: Any, tmp_path: Path) -> Iterator[Site]:
    server = LocalSftpServer(tmp_path / "sftp", host_key_path=tmp_path / "host_key")
    key = add_sftp_account(server, tmp_path / "keys", "acme")
    (server.add_user("globex", password=PASSWORD) / "outbound").mkdir()
    server.start()  # its port goes into the clients file
    acme = client_entry("moodle_acme", server, "acme", key)
    del acme["sftp"]["private_key_path"]
    acme["sftp"]["private_key_env"] = ACME_KEY
    globex = client_entry("moodle_globex", server, "globex", key)
    del globex["sftp"]["private_key_path"]
    globex["sftp"]["password_env"] = GLOBEX_PASSWORD
    clients_file = write_clients_file(
        tmp_path / "clients.yaml",
        {"acme": acme, "globex": globex},
        archive_dir=str(tmp_path / "archive"),
        delivery_retries=0,  # a failure here is the test's, not a server's that may clear
    )
    fill_completion_mart(pg)  # acme's rows; globex has none: its file is the header alone
    (tmp_path / "dagster").mkdir()
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in pg.libpq_env().items():
                env.setenv(name, value)
            env.setenv("ODS_CLIENTS_FILE", str(clients_file))
            env.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
            env.delenv("ODS_DEPLOYMENT", raising=False)
            env.delenv(ACME_KEY, raising=False)
            env.delenv(GLOBEX_PASSWORD, raising=False)
            with dg.DagsterInstance.ephemeral() as instance:
                yield Site(
                    server, clients_file, tmp_path / "archive", key.read_text(), instance, env
                )
    finally:
        server.stop()


def _deliver(site: Site, defs: dg.Definitions, client_id: str) -> dg.ExecuteInProcessResult:
    """The code location's files run of the client's DAY: export, checks, delivery."""
    return defs.resolve_job_def(CLIENT_FILES_JOB).execute_in_process(
        instance=site.instance,
        partition_key=client_day_key(client_id, DAY),
        raise_on_error=False,
    )


def _secrets_page(defs: dg.Definitions) -> tuple[dict[str, Any], str]:
    """The `sftp_secrets` resource as the UI's resource page gets it, and the whole snapshot."""
    snap = RepositorySnap.from_def(defs.get_repository_def())
    (resource,) = [r for r in snap.resources or [] if r.name == "sftp_secrets"]
    values = {key: json.loads(value) for key, value in resource.configured_values.items()}
    return values, serialize_value(snap)


def _kept_by_dagster(site: Site, result: dg.ExecuteInProcessResult) -> str:
    """Everything Dagster stored of the run: its record (run config and tags included), every
    event of its log, its job and execution plan snapshots."""
    run = site.instance.get_run_by_id(result.run_id)
    assert run is not None and run.run_config == {}
    stored = [run, *site.instance.all_logs(result.run_id)]
    stored.append(site.instance.get_job_snapshot(run.job_snapshot_id))
    stored.append(site.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id))
    return "\n".join(serialize_value(item) for item in stored)


def test_the_resource_page_lists_the_variables_of_the_clients_file_by_name_never_their_values(
    site: Site,
) -> None:
    site.env.setenv(ACME_KEY, site.key_text)
    site.env.setenv(GLOBEX_PASSWORD, PASSWORD)
    values, snapshot = _secrets_page(build_definitions())
    assert values == {
        "variables": {ACME_KEY: {"env": ACME_KEY}, GLOBEX_PASSWORD: {"env": GLOBEX_PASSWORD}},
        "unset_when_loaded": [],
    }
    for fragment in site.secret_fragments():
        assert fragment not in snapshot

    site.env.delenv(GLOBEX_PASSWORD)
    values, _ = _secrets_page(build_definitions())
    assert values == {
        "variables": {ACME_KEY: {"env": ACME_KEY}},
        "unset_when_loaded": [GLOBEX_PASSWORD],
    }


def test_a_files_run_delivers_with_the_key_read_when_it_starts_and_keeps_no_trace_of_it(
    site: Site,
) -> None:
    site.env.setenv(ACME_KEY, "not a key: replaced before the run starts")
    defs = build_definitions()
    site.env.setenv(ACME_KEY, site.key_text)
    result = _deliver(site, defs, "acme")
    assert result.success, failure_message(result)
    assert b"amy@example.org" in site.delivered("acme")
    kept = _kept_by_dagster(site, result)
    assert NAME in kept  # the run's events are there, with what they say of the delivery
    for fragment in site.secret_fragments():
        assert fragment not in kept


def test_the_files_step_reads_the_secret_through_the_resource_not_the_environment(
    site: Site,
) -> None:
    # The variable is unset: only the resource given to the run holds the key.
    config = load_clients(site.clients_file)
    marts = {name: dg.AssetKey(["marts", feed.mart]) for name, feed in FEEDS.items()}
    files = build_client_files_asset(config, marts, client_day_partitions(config))
    result = dg.materialize(
        [files],
        partition_key=client_day_key("acme", DAY),
        selection=[file_key(COMPLETION), delivery_key(COMPLETION)],
        resources={
            "warehouse_db": WarehouseResource(),
            "archive_dir": ArchiveResource(root=str(site.archive)),
            "sftp_secrets": SftpSecrets(variables={ACME_KEY: site.key_text}),
        },
        instance=site.instance,
        raise_on_error=False,
    )
    assert result.success, failure_message(result)
    assert b"amy@example.org" in site.delivered("acme")


def test_a_missing_variable_fails_only_its_clients_run_naming_client_key_and_variable(
    site: Site,
) -> None:
    site.env.setenv(ACME_KEY, site.key_text)
    defs = build_definitions()
    failed = _deliver(site, defs, "globex")
    assert not failed.success
    message = failure_message(failed)
    assert (
        f"client 'globex': environment variable {GLOBEX_PASSWORD} (sftp.password_env) is not set"
        in message
    )
    assert NAME in message  # and which file was not delivered
    assert site.not_delivered("globex")
    # acme's secret is set: its run, from the same code location, delivers.
    delivered = _deliver(site, defs, "acme")
    assert delivered.success, failure_message(delivered)
    assert b"amy@example.org" in site.delivered("acme")


def test_a_variable_set_after_the_code_location_loaded_is_read_when_the_run_starts(
    site: Site,
) -> None:
    defs = build_definitions()
    values, _ = _secrets_page(defs)
    assert values["unset_when_loaded"] == [ACME_KEY, GLOBEX_PASSWORD]
    site.env.setenv(GLOBEX_PASSWORD, PASSWORD)
    result = _deliver(site, defs, "globex")
    assert result.success, failure_message(result)
    assert site.delivered("globex").count(b"\n") == 1  # the header: globex has no rows
    for fragment in site.secret_fragments():
        assert fragment not in _kept_by_dagster(site, result)


def test_the_folder_reconciliation_run_logs_in_through_the_resource(site: Site) -> None:
    site.env.setenv(GLOBEX_PASSWORD, PASSWORD)
    defs = build_definitions()
    assert _deliver(site, defs, "globex").success
    result = defs.resolve_job_def(RECONCILIATION_JOB).execute_in_process(
        instance=site.instance, partition_key="globex", raise_on_error=False
    )
    assert result.success, failure_message(result)
    (report,) = result.asset_materializations_for_node("folder_reconciliation")
    assert report.metadata["present"].value == 1
    site.env.delenv(GLOBEX_PASSWORD)
    unset = (
        build_definitions()
        .resolve_job_def(RECONCILIATION_JOB)
        .execute_in_process(instance=site.instance, partition_key="globex", raise_on_error=False)
    )
    assert not unset.success
    assert f"environment variable {GLOBEX_PASSWORD} (sftp.password_env)" in failure_message(unset)


RESOURCE_QUERY = """
query ($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
    __typename
    ... on ResourceDetails {
      configuredValues { key value type }
      assetKeysUsing { path }
    }
  }
}
"""


def test_the_uis_resource_page_gets_the_names_and_the_assets_that_read_them(
    site: Site, tmp_path: Path
) -> None:
    """What the webserver answers the UI (GraphQL), from the code location's own server process."""
    site.env.setenv(ACME_KEY, site.key_text)
    site.env.setenv(GLOBEX_PASSWORD, PASSWORD)
    workspace = tmp_path / "workspace.yaml"
    (tmp_path / "instance").mkdir()
    module = {"module_name": "orchestration.definitions", "working_directory": str(PROJECT_ROOT)}
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": module}]}))
    with (
        dg.DagsterInstance.local_temp(str(tmp_path / "instance")) as instance,
        define_out_of_process_context(str(workspace), None, instance) as context,
    ):
        (location,) = context.code_location_names
        selector = {
            "repositoryLocationName": location,
            "repositoryName": "__repository__",
            "resourceName": "sftp_secrets",
        }
        answer = execute_dagster_graphql(context, RESOURCE_QUERY, {"selector": selector})
    page = answer.data["topLevelResourceDetailsOrError"]
    assert page["__typename"] == "ResourceDetails", page
    values = {v["key"]: (v["type"], json.loads(v["value"])) for v in page["configuredValues"]}
    assert values == {
        "variables": (
            "VALUE",
            {ACME_KEY: {"env": ACME_KEY}, GLOBEX_PASSWORD: {"env": GLOBEX_PASSWORD}},
        ),
        "unset_when_loaded": ("VALUE", []),
    }
    using = {"/".join(key["path"]) for key in page["assetKeysUsing"]}
    assert {"completion_file", "completion_delivery", "folder_reconciliation"} <= using
    shown = json.dumps(answer.data)
    for fragment in site.secret_fragments():
        assert fragment not in shown
