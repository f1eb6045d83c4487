"""The clients file: a valid file loads; each bad input gets its own clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestration.clients import ConfigError, load_clients
from orchestration.delivery.keys import parse_public_key_line
from orchestration.feeds import COMPLETION

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOM0Ckey"


def _valid() -> dict:
    return {
        "timezone": "Europe/London",
        "clients": {
            "acme": {
                "name": "Acme Health Trust",
                "moodle_schema": "moodle_acme",
                "feeds": {
                    "completion": {
                        "columns": {"username": "Employee ID", "completion_date": "Completed"}
                    }
                },
                "sftp": {
                    "host": "sftp.example.org",
                    "username": "acme",
                    "directory": "/outbound",
                    "private_key_env": "ACME_SFTP_KEY",
                    "host_key": HOST_KEY,
                },
                "retention_days": 28,
            },
            "globex": {
                "name": "Globex",
                "moodle_schema": "moodle_globex",
                "timezone": "America/New_York",
                "feeds": {"completion": None},
                "sftp": {
                    "host": "sftp.example.org",
                    "username": "globex",
                    "password_env": "GLOBEX_SFTP_PASSWORD",
                    "host_key_file": "keys/host.pub",
                },
            },
        },
    }


def _write(tmp_path: Path, data: dict) -> Path:
    # The host key file globex names, relative to the clients file's folder.
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "host.pub").write_text(HOST_KEY + "\n")
    path = tmp_path / "clients.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(tmp_path: Path, data: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        load_clients(_write(tmp_path, data))
    return str(raised.value)


def test_a_valid_file_loads_with_defaults_and_client_order_of_columns(tmp_path):
    config = load_clients(_write(tmp_path, _valid()))
    acme = config.clients["acme"]
    assert list(acme.headers(COMPLETION).items()) == [
        ("username", "Employee ID"),
        ("completion_date", "Completed"),
    ]
    assert list(config.clients["globex"].headers(COMPLETION)) == list(COMPLETION.default_columns)
    assert config.timezone_of("globex") == "America/New_York"
    assert config.timezone_of("acme") == "Europe/London"
    assert config.clients["globex"].sftp.host_key_file == (tmp_path / "keys/host.pub").resolve()
    assert config.subscribers("completion") == ["acme", "globex"]
    assert acme.file_date == "next_day" and acme.line_ending == "crlf"


def test_client_id_must_be_a_slug(tmp_path):
    data = _valid()
    data["clients"]["Acme Corp"] = data["clients"].pop("acme")
    assert "client id 'Acme Corp' is not a slug" in _error(tmp_path, data)


def test_unknown_feed_names_the_client_and_the_allowed_feeds(tmp_path):
    data = _valid()
    data["clients"]["acme"]["feeds"]["grades"] = {}
    message = _error(tmp_path, data)
    assert "client 'acme'" in message and "unknown feed 'grades'" in message
    assert "allowed: " in message and "completion" in message


def test_unknown_column_names_the_feed_and_lists_the_allowed_columns(tmp_path):
    data = _valid()
    data["clients"]["acme"]["feeds"]["completion"]["columns"]["shoe_size"] = "Shoe"
    message = _error(tmp_path, data)
    assert "client 'acme'" in message
    assert "feeds.completion.columns: unknown column 'shoe_size'" in message
    assert "course_shortname" in message


def test_duplicate_headers_are_refused(tmp_path):
    data = _valid()
    data["clients"]["acme"]["feeds"]["completion"]["columns"]["email"] = "Employee ID"
    message = _error(tmp_path, data)
    assert "duplicate header 'Employee ID'" in message and "client 'acme'" in message


def test_retention_below_28_days_is_refused(tmp_path):
    data = _valid()
    data["clients"]["acme"]["retention_days"] = 14
    message = _error(tmp_path, data)
    assert "client 'acme': retention_days" in message and "at least 28" in message


def test_a_secret_in_the_file_is_not_a_key_we_accept(tmp_path):
    data = _valid()
    data["clients"]["acme"]["sftp"]["private_key"] = "-----BEGIN OPENSSH PRIVATE KEY-----"
    message = _error(tmp_path, data)
    assert "sftp.private_key" in message and "BEGIN OPENSSH" not in message


def test_missing_credentials_and_missing_host_key_are_refused(tmp_path):
    data = _valid()
    del data["clients"]["acme"]["sftp"]["private_key_env"]
    assert "set exactly one of private_key_env" in _error(tmp_path, data)
    data = _valid()
    del data["clients"]["acme"]["sftp"]["host_key"]
    assert "pin the server's host key" in _error(tmp_path, data)


# The types paramiko verifies a server's host key by, written out here rather than read from the
# code: the clients file and delivery must each accept exactly these.
PINNABLE = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
NOT_PINNABLE = ("ssh-dss", "sk-ssh-ed25519@openssh.com", "ssh-ed448")


@pytest.mark.parametrize("key_type", PINNABLE + NOT_PINNABLE)
def test_the_clients_file_accepts_a_host_key_type_exactly_when_delivery_does(tmp_path, key_type):
    line = f"{key_type} AAAAC3NzaC1lZDI1NTE5AAAAIOM0Ckey"
    data = _valid()
    data["clients"]["acme"]["sftp"]["host_key"] = line
    try:
        parse_public_key_line(line)
        delivery_accepts = True
    except ValueError:
        delivery_accepts = False
    try:
        load_clients(_write(tmp_path, data))
        config_accepts = True
    except ConfigError as error:
        assert "client 'acme'" in str(error) and "host key" in str(error)
        config_accepts = False
    assert config_accepts == delivery_accepts == (key_type in PINNABLE)


def test_unknown_timezone_is_refused(tmp_path):
    data = _valid()
    data["clients"]["acme"]["timezone"] = "Mars/Olympus"
    assert "unknown time zone 'Mars/Olympus'" in _error(tmp_path, data)


def test_records_option_belongs_to_the_scorm_feed_only(tmp_path):
    data = _valid()
    data["clients"]["acme"]["feeds"]["completion"]["records"] = "all"
    assert "only the scorm feed has 'records'" in _error(tmp_path, data)


def test_a_missing_environment_variable_is_a_clear_error_at_delivery_time(tmp_path, monkeypatch):
    monkeypatch.delenv("ACME_SFTP_KEY", raising=False)
    config = load_clients(_write(tmp_path, _valid()))
    with pytest.raises(ConfigError, match="client 'acme': environment variable ACME_SFTP_KEY"):
        config.clients["acme"].sftp.credentials("acme")
    monkeypatch.setenv("ACME_SFTP_KEY", "key text")
    assert config.clients["acme"].sftp.credentials("acme") == ("key text", None)


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_clients(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("clients: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_clients(bad)


def test_delivery_retries_default_to_three_from_30_seconds_and_are_bounded(tmp_path):
    config = load_clients(_write(tmp_path, _valid()))
    assert (config.delivery_retries, config.delivery_retry_delay_seconds) == (3, 30)
    data = {**_valid(), "delivery_retries": 11}
    message = _error(tmp_path, data)
    assert "delivery_retries" in message and "less than or equal to 10" in message
    data = {**_valid(), "delivery_retry_delay_seconds": -1}
    message = _error(tmp_path, data)
    assert "delivery_retry_delay_seconds" in message and "greater than or equal to 0" in message


def _second_acme(**sftp: object) -> dict:
    """A copy of acme under another id and schema, with sftp settings changed as given."""
    data = _valid()
    twin = yaml.safe_load(yaml.safe_dump(data["clients"]["acme"]))
    twin["moodle_schema"] = "moodle_acme_two"
    twin["sftp"].update(sftp)
    data["clients"]["acme_two"] = twin
    return data


def test_two_clients_on_the_same_account_and_folder_are_refused(tmp_path):
    # Same host (in other letters), port, user and folder (once relative to a chrooted login).
    data = _second_acme(host="SFTP.Example.ORG", port=22, directory="outbound")
    message = _error(tmp_path, data)
    assert "clients 'acme' and 'acme_two'" in message
    assert "sftp.username" in message and "sftp.directory" in message
    assert "acme@SFTP.Example.ORG:22" in message


def test_the_same_account_in_another_folder_or_another_account_is_accepted(tmp_path):
    load_clients(_write(tmp_path, _second_acme(directory="/outbound/two")))
    load_clients(_write(tmp_path, _second_acme(username="acme_two")))
    load_clients(_write(tmp_path, _second_acme(port=2222)))


def test_two_clients_reading_one_moodle_schema_are_refused(tmp_path):
    data = _valid()
    data["clients"]["globex"]["moodle_schema"] = "moodle_acme"
    message = _error(tmp_path, data)
    assert "clients 'acme' and 'globex'" in message
    assert "moodle_schema 'moodle_acme'" in message


@pytest.mark.parametrize(
    "directory",
    [
        "../globex/outbound",
        "/outbound/../../globex",
        "/outbound/.",
        "./outbound",
        "/outbound/",
        "//outbound",
        "/out//bound",
        "out\\bound",
        "/out\nbound",
        "",
    ],
)
def test_a_directory_that_is_not_a_clean_path_is_refused(tmp_path, directory):
    data = _valid()
    data["clients"]["acme"]["sftp"]["directory"] = directory
    message = _error(tmp_path, data)
    assert "client 'acme': sftp.directory:" in message
    assert "use a clean path such as '/outbound'" in message


@pytest.mark.parametrize("directory", ["/", "/outbound", "/a/b_c-d.e", "outbound"])
def test_clean_directories_are_accepted(tmp_path, directory):
    data = _valid()
    data["clients"]["acme"]["sftp"]["directory"] = directory
    assert load_clients(_write(tmp_path, data)).clients["acme"].sftp.directory == directory


@pytest.mark.parametrize("key", ["private_key_path", "host_key_file"])
def test_a_missing_key_or_host_key_file_is_refused_at_load(tmp_path, key):
    data = _valid()
    sftp = data["clients"]["globex"]["sftp"]
    if key == "private_key_path":
        del sftp["password_env"]
    sftp[key] = "keys/absent"
    message = _error(tmp_path, data)
    assert f"client 'globex': sftp.{key}: file {tmp_path / 'keys' / 'absent'} does not exist" in (
        message
    )
    assert "read at delivery time" in message
    # `ods up` / `ods demo` load first without the files, which they then create.
    config = load_clients(tmp_path / "clients.yaml", require_files=False)
    assert getattr(config.clients["globex"].sftp, key) == tmp_path / "keys" / "absent"


def test_a_folder_where_a_key_file_should_be_is_refused(tmp_path):
    data = _valid()
    data["clients"]["globex"]["sftp"]["host_key_file"] = "keys"
    assert "client 'globex': sftp.host_key_file: file" in _error(tmp_path, data)
    assert "is not a file" in _error(tmp_path, data)


@pytest.mark.parametrize("schema", ["moodle", "marts", "staging", "pg_catalog"])
def test_a_moodle_schema_named_like_one_the_project_writes_is_refused(
    tmp_path: Path, schema: str
) -> None:
    data = _valid()
    data["clients"]["acme"]["moodle_schema"] = schema

    message = _error(tmp_path, data)

    assert "client 'acme'" in message
    assert f"moodle_schema {schema!r} is a schema the project writes itself" in message
