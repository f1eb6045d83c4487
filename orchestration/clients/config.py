"""The clients file: which feeds each client gets, in which columns, delivered where.

One YAML file holds every client (`ODS_CLIENTS_FILE`, default `config/clients.yaml`). It is
validated here when the code location loads, so a wrong entry stops the load with a message that
names the client, the key and what is allowed; nothing is delivered half-configured. Secrets
are never in the file, only the names of environment variables or files that hold them.

Set-ups that would leak one client's data to another are refused at load, each naming both
clients and the key:
- two clients on the same SFTP account and folder: the same (host, case-insensitive; port;
  username; directory). A relative directory (`outbound`) is relative to the account's login
  folder, which on a chrooted account is `/`, so `outbound` and `/outbound` count as the same
  folder;
- two clients reading the same `moodle_schema`;
- an `sftp.directory` that is not a clean path: it must equal its `posixpath.normpath` form, with
  no `.` or `..` component, no empty component (`//`), no trailing `/` (except `/` itself), no
  backslash and no control character. Absolute (`/outbound`) and relative (`outbound`, below the
  login folder) directories are both allowed.
Files the file names (`sftp.private_key_path`, `sftp.host_key_file`; relative to the clients
file's folder) must exist and be readable files at load (`load_clients(require_files=False)` skips
that check, for `ods up` / `ods demo`, which create the demo's keys and load again afterwards).
Environment variables (`sftp.private_key_env`, `sftp.password_env`) are read at delivery time
only, as secrets should be (inside a run, through the `sftp_secrets` resource): a missing one is
a clear error then, not at load.
`alerts.email` (optional) lists addresses at the client that get its alerts as well as the
operators; each must be a plain address (`name@domain`), refused at load otherwise.

What a client receives beyond its CSV files, each off unless the client asks:
- `manifest: true`: a `MANIFEST<YYYYMMDD>.json` per client-day, written last (`export.manifest`);
- `compress: gzip`: files sent as `….csv.gz`;
- `encrypt: {public_key: PATH}`: files sent encrypted to the client's OpenPGP public key,
  `….csv.pgp` (`….csv.gz.pgp` with gzip). The key file is checked at load like the key files
  above (readable, one OpenPGP public key, not expired or revoked, able to encrypt); the error
  names the client, the path and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestration.delivery.keys import PINNABLE_KEY_TYPES
from orchestration.export.openpgp import OpenPgpError, inspect_public_key
from orchestration.feeds import FEEDS, Feed
from orchestration.paths import PROJECT_ROOT

DEFAULT_CLIENTS_FILE = PROJECT_ROOT / "config" / "clients.yaml"
MIN_RETENTION_DAYS = 28
SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


# The schemas the project writes: the union views step's `moodle` and dbt's custom schemas
# (dbt_project.yml). A client's replica under one of these names would be overwritten or mixed.
PROJECT_SCHEMAS = frozenset({"moodle", "staging", "intermediate", "marts", "information_schema"})


class ConfigError(ValueError):
    """The clients file is wrong; the message names the file, the client and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/London'"
        ) from None
    return value


class FeedSettings(_Strict):
    """One feed of one client. `columns` maps canonical column → header, in file order."""

    columns: dict[str, str] | None = None
    records: Literal["completed_or_passed", "all"] | None = None

    @field_validator("columns")
    @classmethod
    def _headers_unique_and_non_empty(cls, columns: dict[str, str] | None) -> dict[str, str] | None:
        if columns is None:
            return None
        if not columns:
            raise ValueError("columns is empty; omit it to get the feed's default columns")
        seen: dict[str, str] = {}
        for column, header in columns.items():
            if not isinstance(header, str) or not header.strip():
                raise ValueError(f"column {column!r} has an empty header")
            if header in seen:
                raise ValueError(
                    f"duplicate header {header!r} for columns {seen[header]!r} and {column!r}"
                )
            seen[header] = column
        return columns


class SftpSettings(_Strict):
    """Where a client's files go, and how we prove who we talk to."""

    host: str
    port: int = Field(22, ge=1, le=65535)
    username: str
    directory: str = "/"
    private_key_env: str | None = None
    private_key_path: Path | None = None
    password_env: str | None = None
    host_key: str | None = None
    host_key_file: Path | None = None

    @field_validator("directory")
    @classmethod
    def _clean_directory(cls, directory: str) -> str:
        return check_directory(directory)

    @field_validator("private_key_path", "host_key_file")
    @classmethod
    def _file_exists(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None or not (info.context or {}).get("require_files", True):
            return path
        if not path.is_file() or not os.access(path, os.R_OK):
            state = "is not a file" if path.exists() else "does not exist"
            if path.is_file():
                state = "is not readable by this user"
            raise ValueError(
                f"file {path} {state} (paths are relative to the clients file's folder; "
                "`ods up` creates the local demo's keys). Key and password environment "
                "variables (private_key_env, password_env) are read at delivery time, not at load"
            )
        return path

    def account_folder(self) -> tuple[str, int, str, str]:
        """(host, port, username, directory) normalised: two clients with the same one would
        share an SFTP folder. A relative directory is below the login folder, which is `/` on a
        chrooted account, so `outbound` and `/outbound` give the same folder."""
        return (self.host.lower().rstrip("."), self.port, self.username, self.directory.strip("/"))

    @model_validator(mode="after")
    def _one_credential_and_one_host_key(self) -> SftpSettings:
        credentials = [
            name
            for name in ("private_key_env", "private_key_path", "password_env")
            if getattr(self, name) is not None
        ]
        if len(credentials) != 1:
            raise ValueError(
                "set exactly one of private_key_env (name of an environment variable holding "
                "the key), private_key_path (a key file) or password_env; "
                f"found {credentials or 'none'}"
            )
        if (self.host_key is None) == (self.host_key_file is None):
            raise ValueError(
                "pin the server's host key: set exactly one of host_key "
                "('ssh-ed25519 AAAA…') or host_key_file (a .pub or known_hosts line)"
            )
        if self.host_key is not None:
            _check_host_key_line(self.host_key)
        return self

    def pinned_host_key(self) -> str:
        """The pinned public host key line (`type base64`)."""
        if self.host_key is not None:
            return self.host_key.strip()
        assert self.host_key_file is not None
        if not self.host_key_file.exists():
            raise ConfigError(f"host_key_file {self.host_key_file} does not exist")
        return _check_host_key_line(self.host_key_file.read_text())

    def credentials(
        self, client_id: str, lookup: Callable[[str], str | None] = os.environ.get
    ) -> tuple[str | None, str | None]:
        """(private key text, password) read now, at delivery time; a clear error if missing.
        `lookup` reads an environment variable's value: the process's environment by default
        (`ods` commands), the `sftp_secrets` resource inside a run (defs/resources.py)."""
        if self.private_key_env is not None:
            return _required_env(client_id, self.private_key_env, "private_key_env", lookup), None
        if self.password_env is not None:
            return None, _required_env(client_id, self.password_env, "password_env", lookup)
        assert self.private_key_path is not None
        if not self.private_key_path.exists():
            raise ConfigError(
                f"client {client_id!r}: sftp.private_key_path {self.private_key_path} does not exist"
            )
        return self.private_key_path.read_text(), None


def _required_env(client_id: str, name: str, key: str, lookup: Callable[[str], str | None]) -> str:
    value = lookup(name)
    if not value:
        raise ConfigError(
            f"client {client_id!r}: environment variable {name} (sftp.{key}) is not set; "
            "set it to the secret before delivering"
        )
    return value


def check_directory(directory: str) -> str:
    """`directory` if it is a clean path (see the module's docstring), else ValueError saying why."""
    allowed = (
        "use a clean path such as '/outbound' (from the server's root) or 'outbound' (below the "
        "login folder), or '/' itself"
    )
    if not directory:
        raise ValueError(f"directory is empty; {allowed}")
    if "\\" in directory or any(ord(c) < 32 or ord(c) == 127 for c in directory):
        raise ValueError(
            f"directory {directory!r} contains a backslash or a control character; {allowed}"
        )
    parts = directory.split("/")
    inner = parts[1:] if directory.startswith("/") else parts
    if directory != "/" and any(part in (".", "..") for part in inner):
        raise ValueError(
            f"directory {directory!r} has a '.' or '..' component, which could lead out of the "
            f"client's folder; {allowed}"
        )
    if directory != "/" and ("" in inner or posixpath.normpath(directory) != directory):
        raise ValueError(
            f"directory {directory!r} is not a clean path (an empty component '//' or a trailing "
            f"'/'); {allowed}"
        )
    return directory


def _check_host_key_line(text: str) -> str:
    parts = text.split()
    # A known_hosts line starts with the host pattern; a .pub line starts with the key type.
    if len(parts) >= 3 and parts[1] in PINNABLE_KEY_TYPES:
        parts = parts[1:]
    if len(parts) < 2 or parts[0] not in PINNABLE_KEY_TYPES:
        allowed = ", ".join(sorted(PINNABLE_KEY_TYPES))
        raise ValueError(f"host key must look like '<type> <base64>' with type one of {allowed}")
    return f"{parts[0]} {parts[1]}"


# A plain address, as SMTP's RCPT TO takes it: no display name, no comment, no list.
EMAIL_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


class AlertContacts(_Strict):
    """Who at the client hears of its failed deliveries and missed 05:00 deadlines, besides the
    operators (ODS_ALERT_EMAIL), who always do. One address or a list."""

    email: list[str]

    @field_validator("email", mode="before")
    @classmethod
    def _plain_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ValueError(
                "list at least one address, e.g. email: [learning-ops@client.example]; omit "
                "alerts to send this client's alerts to the operators only"
            )
        for address in value:
            if (
                not isinstance(address, str)
                or len(address) > 254
                or not EMAIL_ADDRESS.match(address)
            ):
                raise ValueError(
                    f"{address!r} is not an e-mail address; give plain addresses such as "
                    "'learning-ops@client.example', one per list item (no display names, commas "
                    "or spaces)"
                )
        repeated = sorted({a for a in value if [b.lower() for b in value].count(a.lower()) > 1})
        if repeated:
            raise ValueError(f"{repeated[0]!r} is listed twice")
        return value


class EncryptSettings(_Strict):
    """OpenPGP encryption of a client's files to its public key (a file the client gave us,
    exported with `gpg --armor --export`; relative to the clients file's folder)."""

    public_key: Path

    @field_validator("public_key")
    @classmethod
    def _usable_key(cls, path: Path, info: ValidationInfo) -> Path:
        if not (info.context or {}).get("require_files", True):
            return path
        if not path.is_file():
            state = "is not a file" if path.exists() else "does not exist"
            raise ValueError(
                f"public key file {path} {state} (paths are relative to the clients file's "
                "folder; `ods up` creates the local demo's key)"
            )
        try:
            inspect_public_key(path)
        except OpenPgpError as error:
            raise ValueError(str(error)) from None
        return path


class ClientConfig(_Strict):
    """One client organisation: its Moodle replica, feeds, file format and SFTP folder."""

    name: str
    moodle_schema: Annotated[str, Field(pattern=IDENTIFIER.pattern)]
    table_prefix: Annotated[str, Field(pattern=r"^[a-z0-9_]{0,20}$")] = "mdl_"
    timezone: str | None = None
    feeds: dict[str, FeedSettings]
    sftp: SftpSettings
    retention_days: int = MIN_RETENTION_DAYS
    file_date: Literal["next_day", "activity_day"] = "next_day"
    line_ending: Literal["crlf", "lf"] = "crlf"
    byte_order_mark: bool = False
    neutralise_formulas: bool = False
    alerts: AlertContacts | None = None
    # A MANIFEST<YYYYMMDD>.json per client-day, uploaded after all its files (export.manifest).
    manifest: bool = False
    # Files sent gzip-compressed (….csv.gz) and/or OpenPGP-encrypted (….csv.pgp, ….csv.gz.pgp).
    compress: Literal["gzip"] | None = None
    encrypt: EncryptSettings | None = None

    _check_tz = field_validator("timezone")(
        classmethod(lambda cls, v: None if v is None else _check_timezone(v))
    )

    @field_validator("moodle_schema")
    @classmethod
    def _not_a_schema_of_the_project(cls, schema: str) -> str:
        if schema in PROJECT_SCHEMAS or schema.startswith("pg_"):
            raise ValueError(
                f"moodle_schema {schema!r} is a schema the project writes itself (its own "
                f"schemas are {', '.join(sorted(PROJECT_SCHEMAS))}) or PostgreSQL's; replicate "
                "the client's Moodle into a schema of its own, e.g. moodle_<client>"
            )
        return schema

    @field_validator("retention_days")
    @classmethod
    def _retention_keeps_the_promise(cls, days: int) -> int:
        if days < MIN_RETENTION_DAYS:
            raise ValueError(
                f"retention_days is {days}; it must be at least {MIN_RETENTION_DAYS} "
                "(files stay in the client's folder for at least 28 days)"
            )
        return days

    @field_validator("feeds", mode="before")
    @classmethod
    def _feeds_known(cls, feeds: Any) -> Any:
        if not isinstance(feeds, dict) or not feeds:
            raise ValueError(f"list at least one feed; allowed: {', '.join(FEEDS)}")
        unknown = [name for name in feeds if name not in FEEDS]
        if unknown:
            raise ValueError(f"unknown feed {unknown[0]!r}; allowed: {', '.join(FEEDS)}")
        return {name: settings or {} for name, settings in feeds.items()}

    @model_validator(mode="after")
    def _columns_known(self) -> ClientConfig:
        for feed_name, settings in self.feeds.items():
            feed = FEEDS[feed_name]
            for column in settings.columns or {}:
                if column not in feed.column_names:
                    raise ValueError(
                        f"feeds.{feed_name}.columns: unknown column {column!r}; "
                        f"allowed: {', '.join(feed.column_names)}"
                    )
            if settings.records is not None and feed.records is None:
                with_records = [f.name for f in FEEDS.values() if f.records]
                raise ValueError(
                    f"feeds.{feed_name}.records: only the {', '.join(with_records)} feed has 'records'"
                )
        return self

    def headers(self, feed: Feed) -> dict[str, str]:
        """Canonical column → header, in the client's file order."""
        return dict(self.feeds[feed.name].columns or feed.default_headers())


class ClientsConfig(_Strict):
    """The whole clients file."""

    timezone: str = "Europe/London"
    first_day: dt.date = dt.date(2026, 1, 1)
    lookback_days: int = Field(14, ge=0, le=90)
    archive_dir: Path | None = None
    # Retries of a delivery after a fault that may clear by itself (server down, connection
    # lost, disk full), with exponential backoff: waits of delay x 1, 3, 7, ... (±delay). The
    # defaults, 3 retries from 30 s, take about 6 minutes: done well before 05:00 for a 03:00 run.
    delivery_retries: int = Field(3, ge=0, le=10)
    delivery_retry_delay_seconds: float = Field(30, ge=0, le=600)
    clients: dict[str, ClientConfig]

    _check_tz = field_validator("timezone")(classmethod(lambda cls, v: _check_timezone(v)))

    @field_validator("clients", mode="before")
    @classmethod
    def _slugs(cls, clients: Any) -> Any:
        if not isinstance(clients, dict) or not clients:
            raise ValueError("list at least one client under 'clients'")
        for client_id in clients:
            if not isinstance(client_id, str) or not SLUG.match(client_id):
                raise ValueError(
                    f"client id {client_id!r} is not a slug: lowercase letters, digits and _, "
                    "starting with a letter, at most 40 characters"
                )
        return clients

    @model_validator(mode="after")
    def _nothing_shared_between_clients(self) -> ClientsConfig:
        problems = []
        folders: dict[tuple[str, int, str, str], str] = {}
        schemas: dict[str, str] = {}
        for client_id, client in self.clients.items():
            sftp = client.sftp
            other = folders.setdefault(sftp.account_folder(), client_id)
            if other != client_id:
                problems.append(
                    f"clients {other!r} and {client_id!r}: the same sftp.host, sftp.port, "
                    f"sftp.username and sftp.directory ({sftp.username}@{sftp.host}:{sftp.port}, "
                    f"folder {sftp.directory!r}); one client's files would overwrite the "
                    "other's and each one's retention would delete the other's files. Give each "
                    "client its own account or folder"
                )
            other = schemas.setdefault(client.moodle_schema, client_id)
            if other != client_id:
                problems.append(
                    f"clients {other!r} and {client_id!r}: the same moodle_schema "
                    f"{client.moodle_schema!r}; one would receive the other's learners. Each "
                    "client reads its own Moodle replica schema"
                )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    def timezone_of(self, client_id: str) -> str:
        return self.clients[client_id].timezone or self.timezone

    def subscribers(self, feed: str) -> list[str]:
        """Client ids subscribed to `feed`, sorted."""
        return sorted(cid for cid, client in self.clients.items() if feed in client.feeds)


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"invalid clients file {path}:"]
    for problem in error.errors():
        location = list(problem["loc"])
        where = ""
        if len(location) >= 2 and location[0] == "clients":
            where = f"client {location[1]!r}: "
            location = location[2:]
        key = ".".join(str(part) for part in location)
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}{key}: {message}" if key else f"  {where}{message}")
    return "\n".join(lines)


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Paths in the file are relative to the file's own folder."""
    for client in (raw.get("clients") or {}).values():
        sftp = (client or {}).get("sftp") or {}
        for key in ("private_key_path", "host_key_file"):
            if isinstance(sftp.get(key), str):
                sftp[key] = str((base / sftp[key]).resolve())
        encrypt = (client or {}).get("encrypt")
        if isinstance(encrypt, dict) and isinstance(encrypt.get("public_key"), str):
            encrypt["public_key"] = str((base / encrypt["public_key"]).resolve())
    if isinstance(raw.get("archive_dir"), str):
        raw["archive_dir"] = str((base / raw["archive_dir"]).resolve())
    return raw


def clients_file_path() -> Path:
    return Path(os.environ.get("ODS_CLIENTS_FILE", DEFAULT_CLIENTS_FILE)).resolve()


# libyaml's safe loader where PyYAML was built with it (the wheels are): the clients file is read by
# every run's process, and for 200 clients the pure-Python loader took 0.5-0.8 s of it.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_clients(path: Path | None = None, *, require_files: bool = True) -> ClientsConfig:
    """Read and validate the clients file; raises ConfigError with every problem listed.

    `require_files=False` accepts key and host-key files that do not exist yet: only for `ods up`
    and `ods demo`, which create the local demo's keys and then load the file again with files
    required before anything else runs."""
    path = (path or clients_file_path()).resolve()
    if not path.exists():
        raise ConfigError(
            f"clients file {path} does not exist; set ODS_CLIENTS_FILE or run `make demo`"
        )
    try:
        raw = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except yaml.YAMLError as error:
        raise ConfigError(f"clients file {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"clients file {path} must be a mapping with a 'clients' key")
    try:
        return ClientsConfig.model_validate(
            _resolve_paths(raw, path.parent), context={"require_files": require_files}
        )
    except ValidationError as error:
        raise ConfigError(_describe(error, path)) from None
