"""The deployment files: the image's build steps, run in a clean venv (no Docker engine here), and
the Docker and Helm instance settings loaded through Dagster's own validation, with the limits of
each equal to deploy/dagster.yaml's."""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker" / "compose.yaml"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"

# Values for the `env:` settings of the instance files; nothing is connected to.
INSTANCE_ENV = {
    "DAGSTER_POSTGRES_HOST": "dagster-db.invalid",
    "DAGSTER_POSTGRES_PORT": "5432",
    "DAGSTER_POSTGRES_USER": "dagster",
    "DAGSTER_POSTGRES_PASSWORD": "not-a-secret",
    "DAGSTER_POSTGRES_DB": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-secret",  # the Helm chart's name for the password
}


# ---- reading the files ----------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), per stage name."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            current = stages.setdefault(arguments.split()[-1], [])
        elif current is not None:
            current.append((keyword, arguments.strip()))
    return stages


def _env_of(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in instructions:
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def _copies(instructions: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """(sources, destination) of the COPY instructions that take files from the build context."""
    copies = []
    for keyword, arguments in instructions:
        if keyword == "COPY" and "--from=" not in arguments:
            *sources, destination = arguments.split()
            copies.append((sources, destination))
    return copies


def _image_command() -> list[str]:
    (command,) = [json.loads(a) for k, a in _dockerfile_stages()["runtime"] if k == "CMD"]
    return command


def _run_ok(
    command: list[str], cwd: Path, env: dict[str, str], *, timeout: float, stdin: str | None = None
) -> str:
    """Run `command`, which must exit 0 (its output is the failure message); returns its stdout."""
    done = subprocess.run(
        command, input=stdin, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE)


def _launcher_settings() -> dict[str, Any]:
    return _yaml(ROOT / "deploy" / "docker" / "dagster.yaml")["run_launcher"]["config"]


def _env_references(node: Any) -> set[str]:
    """Names of the environment variables that a dagster.yaml reads (`{env: NAME}`)."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_references(value) for value in node))
    return set()


# ---- Dagster's validation of an instance file (also run in the image's venv, as source) ---------


def validate_instance_yaml(text: str, env: dict[str, str]) -> dict[str, Any]:
    """Load a dagster.yaml as DagsterInstance does, up to (not including) connecting: Dagster's
    schema of the whole file (and its concurrency rules), then each configurable class it names
    (storage, run coordinator, run launcher) imported and its config processed against the class's
    own schema, `env:` values resolved from `env`. Returns the processed settings."""
    import importlib
    import os
    import tempfile
    from pathlib import Path

    from dagster._config import process_config, resolve_to_config_type
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    saved = dict(os.environ)
    os.environ.update(env)  # for `env:` values; put back below, other tests share the process
    try:
        with tempfile.TemporaryDirectory() as home:
            Path(home, "dagster.yaml").write_text(text)
            settings, _ = dagster_instance_config(home)
            ref = InstanceRef.from_dir(home)
        processed: dict[str, Any] = {
            key: settings.get(key) for key in ["concurrency", "run_monitoring", "run_retries"]
        }
        for section, data in [
            ("storage", ref.storage_data),
            ("run_storage", ref.run_storage_data),
            ("run_coordinator", ref.run_coordinator_data),
            ("run_launcher", ref.run_launcher_data),
        ]:
            klass = getattr(importlib.import_module(data.module_name), data.class_name)
            config_type = resolve_to_config_type(klass.config_type())
            result = process_config(config_type, data.config_dict)
            if not result.success:
                errors = [error.message for error in result.errors]
                raise ValueError(f"{section} {data.class_name}: {errors}")
            processed[section] = {"class": data.class_name, "config": result.value}
        return processed
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ---- the Helm chart's instance file, as the chart writes it ------------------------------------


def _helm_dagster_yaml(values: dict[str, Any], namespace: str = "ods") -> str:
    """The dagster.yaml that chart dagster/dagster 1.13.27 writes from these values, for the parts
    this project sets: helm/dagster/templates/helpers/instance/_postgresql.tpl, _run-launcher.tpl
    (K8sRunLauncher), _run-coordinator.tpl (with concurrency enabled it leaves out the fields that
    `concurrency` holds, dagster-io/dagster#33274) and _concurrency.tpl."""
    pg = values["postgresql"]
    postgres_db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams") or {},
    }
    if pg.get("postgresqlScheme"):
        postgres_db["scheme"] = pg["postgresqlScheme"]
    storage = {"postgres_db": postgres_db}
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or namespace,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": "ods-dagster",
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": "ods-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    for key, name in [
        ("envConfigMaps", "env_config_maps"),
        ("envSecrets", "env_secrets"),
    ]:
        if k8s.get(key):
            launcher[name] = [item["name"] for item in k8s[key]]
    for key, name in [
        ("envVars", "env_vars"),
        ("volumeMounts", "volume_mounts"),
        ("volumes", "volumes"),
        ("labels", "labels"),
        ("resources", "resources"),
        ("securityContext", "security_context"),
    ]:
        if k8s.get(key):
            launcher[name] = k8s[key]
    if k8s.get("runK8sConfig"):
        spelling = {"podSpecConfig": "pod_spec_config", "containerConfig": "container_config"}
        launcher["run_k8s_config"] = {spelling[k]: v for k, v in k8s["runK8sConfig"].items()}
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    queued = coordinator["config"]["queuedRunCoordinator"]
    spelling = {
        "maxConcurrentRuns": "max_concurrent_runs",
        "tagConcurrencyLimits": "tag_concurrency_limits",
        "dequeueIntervalSeconds": "dequeue_interval_seconds",
        "dequeueUseThreads": "dequeue_use_threads",
        "dequeueNumWorkers": "dequeue_num_workers",
    }
    instance: dict[str, Any] = {
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": storage,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": storage,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": storage,
        },
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher},
    }
    if values["dagsterDaemon"]["enabled"] and coordinator["enabled"]:
        instance["run_coordinator"] = {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {spelling[key]: value for key, value in queued.items() if value is not None},
        }
    concurrency = values.get("concurrency", {})
    if concurrency.get("enabled"):
        pools, runs = concurrency.get("pools", {}), concurrency.get("runs", {})
        rendered: dict[str, Any] = {}
        if pools:
            rendered["pools"] = {
                {"defaultLimit": "default_limit"}.get(key, key): value
                for key, value in pools.items()
            }
        if runs:
            rendered["runs"] = {spelling[key]: value for key, value in runs.items()}
        instance["concurrency"] = rendered
    daemon = values["dagsterDaemon"]
    for key in ["runMonitoring", "runRetries"]:
        # The chart writes these itself when enabled; this project writes them through
        # additionalInstanceConfig instead (its keys lack settings deploy/dagster.yaml uses).
        assert not daemon.get(key, {}).get("enabled"), f"dagsterDaemon.{key} and additional"
    instance.update(values.get("additionalInstanceConfig") or {})
    return yaml.safe_dump(instance, sort_keys=False)


# ---- the image ----------------------------------------------------------------------------------


def test_dockerfile_copies_only_files_that_exist_and_are_not_docker_ignored():
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [s for stage in _dockerfile_stages().values() for c in _copies(stage) for s in c[0]]
    assert "deploy/dagster.yaml" in copied and "uv.lock" in copied
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        parts = Path(source).parts
        for pattern in ignored:
            prefix = Path(pattern.lstrip("*/")).parts
            assert parts[: len(prefix)] != prefix, f".dockerignore's {pattern} hides {source}"
    # Local state and build output never reach the build context.
    for kept_out in [".venv", ".ods", "dbt_project/target", ".git"]:
        assert kept_out in ignored


def test_dockerfile_installs_uv_at_the_version_the_makefile_pins():
    (pinned,) = re.findall(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    runs = " ".join(a for k, a in _dockerfile_stages()["build"] if k == "RUN")
    assert re.findall(r"\buv==(\S+)", runs) == [pinned]


def test_the_image_runs_as_a_user_and_ships_the_instance_file_in_dagster_home():
    runtime = _dockerfile_stages()["runtime"]
    (user,) = [a for k, a in runtime if k == "USER"]
    assert not user.startswith(("0", "root"))
    env = _env_of(runtime)
    assert (["deploy/dagster.yaml"], f"{env['DAGSTER_HOME']}/dagster.yaml") in _copies(runtime)
    # The mounts of the deployments are where the image's settings look.
    assert Path(env["ODS_CLIENTS_FILE"]).parent == Path("/etc/ods/config")
    assert env["ODS_ARCHIVE_DIR"] == "/var/lib/ods/archive"


def test_every_deployment_runs_the_code_location_that_workspace_yaml_loads():
    command = _image_command()
    (entry,) = _yaml(ROOT / "workspace.yaml")["load_from"]
    assert command[command.index("-m") + 1] == entry["python_module"]["module_name"]
    assert _compose()["services"]["code-location"]["command"] == command
    (deployment,) = _yaml(HELM_VALUES)["dagster-user-deployments"]["deployments"]
    chart_command = ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p"]
    assert [*chart_command, str(deployment["port"]), *deployment["codeServerArgs"]] == command
    # The webserver and daemon know the location by the name `ods resend` gives its runs.
    (server,) = _yaml(ROOT / "deploy" / "docker" / "workspace.yaml")["load_from"]
    assert server["grpc_server"]["location_name"] == entry["python_module"]["module_name"]
    assert server["grpc_server"]["port"] == deployment["port"]
    (helm_server,) = _yaml(HELM_VALUES)["dagsterWebserver"]["workspace"]["servers"]
    assert helm_server == {
        "host": deployment["name"],
        "port": deployment["port"],
        "name": entry["python_module"]["module_name"],
    }


@pytest.fixture(scope="module")
def image_app(tmp_path_factory) -> Path:
    """The build stage replayed outside Docker: each COPY from the repository into a fresh folder
    (the image's /app), each `RUN sh deploy/image/build.sh <step>` run there with the stage's ENV,
    uv from the dev venv (the same pinned version) and the same interpreter as the lock."""
    app = tmp_path_factory.mktemp("app")
    build = _dockerfile_stages()["build"]
    env = {**os.environ, **_env_of(build)}
    # Two settings only make the image better, at 30 s more here: .pyc files (faster starts) and
    # copies out of uv's cache (a cache mount cannot be hard-linked into a layer).
    env.pop("UV_COMPILE_BYTECODE", None)
    env.pop("UV_LINK_MODE", None)
    for name in ["VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "DAGSTER_HOME", "PGHOST"]:
        env.pop(name, None)
    env["UV"] = str(Path(sys.executable).with_name("uv"))
    env["UV_PYTHON"] = str(Path(sys.base_prefix) / "bin" / "python3.11")
    steps = 0
    for keyword, arguments in build:
        if keyword == "COPY":
            *sources, destination = arguments.split()
            for source in sources:
                into_folder = destination.endswith("/") or destination == "."
                target = app / destination / Path(source).name if into_folder else app / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    # As .dockerignore leaves them out of the build context.
                    leave_out = shutil.ignore_patterns("__pycache__", "target", "logs")
                    shutil.copytree(ROOT / source, target, ignore=leave_out)
                else:
                    shutil.copy2(ROOT / source, target)
        elif keyword == "RUN" and "deploy/image/build.sh" in arguments:
            step = arguments.split("deploy/image/build.sh", 1)[1].split()
            _run_ok(["sh", "deploy/image/build.sh", *step], app, env, timeout=300)
            steps += 1
    assert steps == 2
    return app


def test_the_image_build_steps_make_a_venv_without_dev_tools_and_with_the_manifest(image_app):
    bin_dir = image_app / ".venv" / "bin"
    for program in ["dagster", "dagster-webserver", "dagster-daemon", "dbt", "ods"]:
        assert (bin_dir / program).exists(), program
    for dev_tool in ["pytest", "ruff", "mypy", "uv"]:
        assert not (bin_dir / dev_tool).exists(), dev_tool
    manifest = json.loads((image_app / "dbt_project" / "target" / "manifest.json").read_text())
    marts = [n for n in manifest["nodes"].values() if n["config"]["materialized"] == "incremental"]
    assert len(marts) == 4


def _deployment_config_folder(tmp_path: Path) -> Path:
    """A platform team's mounts: /etc/ods/config/clients.yaml and a key under /etc/ods/keys."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "acme").write_text("a private key file\n")
    (tmp_path / "config").mkdir()
    clients = {
        "timezone": "Europe/London",
        "clients": {
            "acme": {
                "name": "Acme Health Trust",
                "moodle_schema": "moodle_acme",
                "feeds": {"completion": None, "quiz": None},
                "sftp": {
                    "host": "sftp.acme.example",
                    "username": "acme",
                    "private_key_path": "../keys/acme",
                    "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOM0Ckey",
                },
            }
        },
    }
    path = tmp_path / "config" / "clients.yaml"
    path.write_text(yaml.safe_dump(clients))
    return path


def test_the_image_venv_loads_the_code_location_and_its_instance_files(image_app, tmp_path):
    """In the venv the build steps made: the three instance files pass Dagster's validation with
    the launchers of the image (dagster-postgres, dagster-docker, dagster-k8s must be there), and
    `dagster definitions validate` loads the code location from a mounted clients file."""
    runtime = _dockerfile_stages()["runtime"]
    (in_dagster_home,) = [s for s, d in _copies(runtime) if d.endswith("/dagster.yaml")]
    instance_files = {
        "image": (ROOT / in_dagster_home[0]).read_text(),
        "docker": (ROOT / "deploy" / "docker" / "dagster.yaml").read_text(),
        "helm": _helm_dagster_yaml(_yaml(HELM_VALUES)),
    }
    # One process (Dagster's import takes ~10 s in a venv without .pyc files): the instance
    # files first, then `dagster definitions validate` of the code location from a clients file
    # mounted as the image expects (DAGSTER_HOME unset: the instance files name servers that are
    # not here, and the validation needs no instance of ours).
    script = "\n".join(
        [
            "import json, sys",
            "from typing import Any",
            textwrap.dedent(inspect.getsource(validate_instance_yaml)),
            "files, env = json.loads(sys.stdin.read())",
            "print(json.dumps({k: validate_instance_yaml(v, env)['run_launcher']['class']"
            " for k, v in files.items()}), flush=True)",
            "from dagster._cli import main",
            "sys.argv = ['dagster', 'definitions', 'validate', '-m', 'orchestration.definitions']",
            "main()",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "VIRTUAL_ENV")}
    env["ODS_CLIENTS_FILE"] = str(_deployment_config_folder(tmp_path))
    env["ODS_ARCHIVE_DIR"] = str(tmp_path / "archive")
    env["PGHOST"] = "warehouse.invalid"  # not the embedded database; nothing connects at load
    printed = _run_ok(
        [str(image_app / ".venv" / "bin" / "python"), "-c", script],
        tmp_path,
        env,
        timeout=120,
        stdin=json.dumps([instance_files, INSTANCE_ENV]),
    )
    launchers, *log = printed.splitlines()
    assert json.loads(launchers) == {
        "image": "PreloadedRunLauncher",
        "docker": "DockerRunLauncher",
        "helm": "K8sRunLauncher",
    }
    assert any(
        "Validation successful for code location orchestration.definitions" in line for line in log
    ), printed


# ---- the Docker deployment ----------------------------------------------------------------------


def test_the_docker_instance_is_deploy_dagster_yaml_with_the_docker_run_launcher():
    shipped = _yaml(ROOT / "deploy" / "dagster.yaml")
    docker = _yaml(ROOT / "deploy" / "docker" / "dagster.yaml")
    assert docker["run_launcher"]["class"] == "DockerRunLauncher"
    shipped.pop("run_launcher")
    docker.pop("run_launcher")
    assert docker == shipped


def test_the_docker_instance_validates_against_the_installed_dagster_docker():
    processed = validate_instance_yaml(
        (ROOT / "deploy" / "docker" / "dagster.yaml").read_text(), INSTANCE_ENV
    )
    assert processed["run_launcher"]["class"] == "DockerRunLauncher"
    assert processed["run_coordinator"]["class"] == "QueuedRunCoordinator"
    postgres = processed["storage"]["config"]["postgres_db"]
    assert postgres["hostname"] == INSTANCE_ENV["DAGSTER_POSTGRES_HOST"]
    assert postgres["password"] == INSTANCE_ENV["DAGSTER_POSTGRES_PASSWORD"]
    # The launcher itself accepts these settings (it refuses e.g. `environment` in
    # container_kwargs); it connects to Docker only when it launches.
    from dagster_docker import DockerRunLauncher

    DockerRunLauncher(**processed["run_launcher"]["config"])


def test_runs_receive_the_instance_and_warehouse_variables():
    forwarded = set(_launcher_settings()["env_vars"])
    instance_vars = _env_references(_yaml(ROOT / "deploy" / "dagster.yaml"))
    assert {v for v in instance_vars if v.startswith("DAGSTER_POSTGRES_")} == instance_vars
    assert instance_vars <= forwarded
    profiles = (ROOT / "dbt_project" / "profiles.yml").read_text()
    warehouse_vars = set(re.findall(r"env_var\('(\w+)'", profiles))
    assert {"PGHOST", "PGPASSWORD"} <= warehouse_vars <= forwarded


def test_runs_mount_what_the_code_location_mounts_on_the_compose_network():
    compose = _compose()
    launcher = _launcher_settings()
    code_location = compose["services"]["code-location"]
    run_volumes = launcher["container_kwargs"]["volumes"]
    # The same mounts, except the instance file (a run gets the instance from the daemon).
    assert run_volumes == [v for v in code_location["volumes"] if not v.startswith("./")]
    # Docker, not compose, creates the runs' containers: the names must be compose's own.
    assert launcher["network"] in {n["name"] for n in compose["networks"].values()}
    assert launcher["network"] in {n for n in code_location["networks"]}
    declared = {v["name"] for v in compose["volumes"].values()}
    named = {v.split(":")[0] for v in run_volumes if not v.startswith("/")}
    assert named <= declared and named <= set(compose["volumes"])
    # The mounts are where the image reads the clients file and writes the archive.
    env = _env_of(_dockerfile_stages()["runtime"])
    targets = {v.split(":")[1] for v in run_volumes}
    assert str(Path(env["ODS_CLIENTS_FILE"]).parent) in targets
    assert env["ODS_ARCHIVE_DIR"] in targets


def test_the_compose_services_keep_secrets_in_the_env_file():
    compose = _compose()
    secret = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.I)
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), f"{name}: {key}"
    for name in ["code-location", "webserver", "daemon"]:
        assert compose["services"][name]["env_file"] == ["ods.env"]
    assert "ods.env" in (ROOT / "deploy" / "docker" / ".gitignore").read_text().split()
    example = (ROOT / "deploy" / "docker" / "ods.env.example").read_text()
    assert set(re.findall(r"^\w*PASSWORD=(.*)$", example, re.M)) == {""}
    # Every variable a run is given is set for the daemon, which gives it.
    set_in_example = set(re.findall(r"^(\w+)=", example, re.M))
    daemon_env = set(compose["services"]["daemon"]["environment"])
    assert set(_launcher_settings()["env_vars"]) <= set_in_example | daemon_env


# ---- the Helm deployment ------------------------------------------------------------------------


def test_the_helm_limits_are_deploy_dagster_yaml_limits():
    helm = validate_instance_yaml(_helm_dagster_yaml(_yaml(HELM_VALUES)), INSTANCE_ENV)
    shipped = validate_instance_yaml((ROOT / "deploy" / "dagster.yaml").read_text(), INSTANCE_ENV)
    assert helm["concurrency"] == shipped["concurrency"]
    assert helm["run_coordinator"] == shipped["run_coordinator"]
    for section in ["run_monitoring", "run_retries"]:
        assert helm[section] == shipped[section], section
    assert helm["concurrency"]["runs"]["max_concurrent_runs"] == 8


def test_helm_limits_that_differ_from_deploy_dagster_yaml_are_caught():
    """The comparison above sees a changed limit (so it is not comparing a file with itself)."""
    values = copy.deepcopy(_yaml(HELM_VALUES))
    values["concurrency"]["runs"]["tagConcurrencyLimits"][0]["limit"] = 3
    helm = validate_instance_yaml(_helm_dagster_yaml(values), INSTANCE_ENV)
    shipped = validate_instance_yaml((ROOT / "deploy" / "dagster.yaml").read_text(), INSTANCE_ENV)
    assert helm["concurrency"] != shipped["concurrency"]


def test_the_helm_instance_validates_against_the_installed_dagster_k8s():
    processed = validate_instance_yaml(_helm_dagster_yaml(_yaml(HELM_VALUES)), INSTANCE_ENV)
    assert processed["run_launcher"]["class"] == "K8sRunLauncher"
    assert processed["run_storage"]["class"] == "PostgresRunStorage"
    postgres = processed["run_storage"]["config"]["postgres_db"]
    assert postgres["scheme"] == _yaml(ROOT / "deploy" / "dagster.yaml")["storage"]["postgres"][
        "postgres_db"
    ].get("scheme", "postgresql")


def test_the_helm_volumes_are_kubernetes_objects_mounted_where_the_image_reads():
    import kubernetes.client as k8s
    from dagster_k8s.models import k8s_snake_case_dict

    (deployment,) = _yaml(HELM_VALUES)["dagster-user-deployments"]["deployments"]
    volumes = [k8s_snake_case_dict(k8s.V1Volume, v) for v in deployment["volumes"]]
    mounts = [k8s_snake_case_dict(k8s.V1VolumeMount, m) for m in deployment["volumeMounts"]]
    assert {m["name"] for m in mounts} == {v["name"] for v in volumes}
    env = _env_of(_dockerfile_stages()["runtime"])
    by_path = {m["mount_path"]: m for m in mounts}
    assert str(Path(env["ODS_CLIENTS_FILE"]).parent) in by_path
    assert env["ODS_ARCHIVE_DIR"] in by_path and not by_path[env["ODS_ARCHIVE_DIR"]].get(
        "read_only"
    )
    assert deployment["podSecurityContext"]["runAsUser"] == int(
        next(a for k, a in _dockerfile_stages()["runtime"] if k == "USER").split(":")[0]
    )
    assert deployment["envSecrets"] and deployment["includeConfigInLaunchedRuns"]["enabled"]
