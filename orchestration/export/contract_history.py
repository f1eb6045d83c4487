"""The contracts a client had before: in the clients file at a git revision, and recorded with the
last file of each feed delivered to it. `ods contract --diff` compares the contracts of now with
either, so an onboarding engineer sees what a change to the clients file does to a client's
files before the first night that carries it.

The clients file at a revision is read with `git show REV:<path>` in the repository that holds the
file now; only the client's own entry is validated (with the current rules, key files not
required), so another client's entry, or a setting since renamed elsewhere in the file, does not
get in the way. The archive's record of a delivered file (`<file>.json`, orchestration/export/
archive.py) carries its contract from the release that added contract versions on; an older
record has none, and that is said, not guessed.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestration.clients import ClientConfig
from orchestration.delivery.ledger import read_deliveries
from orchestration.export import archive
from orchestration.export.contract import (
    Contract,
    ContractFormatError,
    contract_from_dict,
    contracts_of_client,
)
from orchestration.feeds import FEEDS


class ContractHistoryError(ValueError):
    """The earlier contract cannot be read as asked (no git repository, an unknown revision, a
    client not in it); the message names what and says what is allowed."""


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
    )


def clients_file_at_revision(path: Path, revision: str) -> tuple[str, str]:
    """(the text of the clients file `path` at `revision`, the commit it names)."""
    path = path.resolve()
    top = _git(path.parent, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ContractHistoryError(
            f"the clients file {path} is not in a git repository, so there is no revision "
            f"{revision!r} of it to compare with; use --diff last to compare with the contracts "
            "of the last files delivered (from the archive)"
        )
    root = Path(top.stdout.strip()).resolve()
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if commit.returncode != 0 or not commit.stdout.strip():
        raise ContractHistoryError(
            f"{revision!r} is not a revision of the git repository {root}: give a commit, "
            "branch or tag (e.g. HEAD~1, main, a commit id) that `git log` shows"
        )
    sha = commit.stdout.strip()
    relative = path.relative_to(root).as_posix()
    shown = _git(root, "show", f"{sha}:{relative}")
    if shown.returncode != 0:
        raise ContractHistoryError(
            f"the clients file {relative} is not in revision {revision!r} (commit {sha[:12]}) "
            f"of {root}: it was added later or lived elsewhere then"
        )
    return shown.stdout, sha


def client_in_text(text: str, client_id: str, where: str) -> ClientConfig:
    """The client's entry in a clients file's text, validated on its own (key files not
    required: they belong to the server, not to the shape of the files)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ContractHistoryError(f"{where} is not valid YAML: {error}") from None
    clients = raw.get("clients") if isinstance(raw, dict) else None
    if not isinstance(clients, dict):
        raise ContractHistoryError(f"{where} has no 'clients' mapping")
    if client_id not in clients:
        known = ", ".join(sorted(str(c) for c in clients)) or "none"
        raise ContractHistoryError(
            f"client {client_id!r} is not in {where} (clients there: {known}); it may have "
            "been added after that revision"
        )
    try:
        return ClientConfig.model_validate(clients[client_id], context={"require_files": False})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        )
        raise ContractHistoryError(
            f"client {client_id!r} in {where} is not a valid entry under the current rules "
            f"({problems})"
        ) from None


def client_at_revision(path: Path, revision: str, client_id: str) -> ClientConfig:
    """The client's entry in the clients file at `revision`."""
    text, sha = clients_file_at_revision(path, revision)
    return client_in_text(text, client_id, f"the clients file at {revision} (commit {sha[:12]})")


def contracts_at_revision(path: Path, revision: str, client_id: str) -> dict[str, Contract]:
    """The client's contract of each feed it took in the clients file at `revision`."""
    return contracts_of_client(client_at_revision(path, revision, client_id))


@dataclass(frozen=True)
class DeliveredContract:
    """The last file of one feed delivered to the client, and the contract its archive record
    holds (None, with `missing` saying why, when it holds none)."""

    feed: str
    file_name: str
    activity_day: str
    delivered_at: str
    contract: Contract | None
    version: str | None
    missing: str | None = None
    # What the envelope appended to the CSV's name ("", ".gz", ".pgp", ".gz.pgp"); None when
    # the archive record is not found.
    sent_suffix: str | None = None


def last_delivered_contracts(archive_root: Path, client_id: str) -> dict[str, DeliveredContract]:
    """Per feed, the contract of the last file the ledger says was delivered to the client."""
    last: dict[str, Any] = {}
    for delivery in read_deliveries(archive_root, client_id):
        if delivery.feed not in FEEDS:  # a client-day manifest, not a feed's file
            continue
        if delivery.feed not in last or delivery.delivered_at >= last[delivery.feed].delivered_at:
            last[delivery.feed] = delivery
    found = {}
    for feed, delivery in last.items():
        record = _archive_record(archive_root, client_id, feed, delivery.file_name, delivery.sha256)
        contract, version, missing = None, None, None
        if record is None:
            missing = (
                f"the archive has no record of {delivery.file_name} as delivered (sha256 "
                f"{delivery.sha256[:12]}…) under {archive.feed_folder(archive_root, client_id, feed)}"
            )
        elif not isinstance(record.get("contract"), dict):
            missing = (
                f"the archive record of {delivery.file_name} has no contract: it was made before "
                "contract versions were recorded"
            )
        else:
            try:
                contract = contract_from_dict(record["contract"])
            except ContractFormatError as error:
                missing = f"the contract in the archive record of {delivery.file_name}: {error}"
            version = record.get("contract_version") or (contract.version if contract else None)
        sent_suffix = None
        if record is not None:
            sent_name = record.get("sent_file_name") or delivery.file_name
            sent_suffix = str(sent_name)[len(delivery.file_name) :]
        found[feed] = DeliveredContract(
            feed=feed,
            file_name=delivery.file_name,
            activity_day=delivery.activity_day,
            delivered_at=delivery.delivered_at,
            contract=contract,
            version=version,
            missing=missing,
            sent_suffix=sent_suffix,
        )
    return found


def _archive_record(
    archive_root: Path, client_id: str, feed: str, file_name: str, sha256: str
) -> dict[str, Any] | None:
    """The archive's record (the `.json` beside the file) of the file delivered with `sha256`:
    the current one, or one kept in history/ after a rebuild made different bytes."""
    folder = archive.feed_folder(archive_root, client_id, feed)
    candidates = [folder / f"{file_name}.json"]
    candidates += sorted((folder / "history").glob(f"{file_name}.*.json"), reverse=True)
    for candidate in candidates:
        try:
            record = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        # The ledger holds the sha256 of the bytes sent: the CSV's, or of its compressed or
        # encrypted form (`sent_sha256`) for a client who takes its files so.
        if isinstance(record, dict) and sha256 in (record.get("sha256"), record.get("sent_sha256")):
            return record
    return None
