"""Alerts that reach a person, through Dagster's own sensors, over a real SMTP server (the local
aiosmtpd sink) and a real HTTP server (the webhook).

One module fixture plays a night on real PostgreSQL and SFTP: the marts for a day, then acme's
files run (delivered), globex's (its password is refused: once in a run that Dagster will retry,
once for the last time), the 05:00 check for initech, which never got a files run (both its feeds
missing), and for globex with the webhook broken. After each step the alert sensors are evaluated
as the daemon does (the instance, the stored cursor, the code location's resources), and the
messages counted.
"""

from __future__ import annotations

import datetime as dt
import email.message
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.storage.tags import MAX_RETRIES_TAG, WILL_RETRY_TAG

from ods_local import services
from ods_local.mail_sink import MailSink, saved_messages
from ods_local.sftp_server import LocalSftpServer
from orchestration.alerts.channels import Channels
from orchestration.alerts.message import FeedFile, Incident
from orchestration.alerts.smtp import AlertNotSent
from orchestration.clients import ConfigError, load_clients
from orchestration.defs.alerts import DEADLINE_SENSOR, DELIVERY_FAILURE_SENSOR, AlertChannels
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import DAILY_MARTS_JOB, DEADLINE_JOB
from orchestration.defs.schedules import deadline_schedule_name, marts_schedule_name
from tests.alert_support import WebhookReceiver, sensor_tick
from tests.e2e_support import (
    acme_entry,
    add_sftp_account,
    client_entry,
    client_sites,
    generate_sites,
    run_requested,
    sensor_requests,
    write_clients_file,
)


def _early_zone(now: dt.datetime) -> str:
    """A whole-hour zone where it is now between 01:00 and 04:00 (POSIX signs are reversed): its
    yesterday is over and its 05:00 is ahead, so a file delivered now is on time."""
    for offset in range(-12, 15):
        if 1 <= (now + dt.timedelta(hours=offset)).hour <= 3:
            return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    raise AssertionError(f"no whole-hour zone is between 01:00 and 04:00 at {now}")


ZONE = _early_zone(dt.datetime.now(dt.UTC))
DAY = dt.datetime.now(ZoneInfo(ZONE)).date() - dt.timedelta(days=1)
FILE_DATE = f"{DAY + dt.timedelta(days=1):%Y%m%d}"
SENSORS = (DELIVERY_FAILURE_SENSOR, DEADLINE_SENSOR)
OPERATORS = ["oncall@host.example", "data-ops@host.example"]
GLOBEX_CONTACT = "it-ops@globex.example"
# The server's password for globex, and the different one globex's password_env holds: neither
# may appear in any message.
SERVER_PASSWORD = "Server-side-Horse-7731"
WRONG_PASSWORD = "Client-side-Wrong-Pa55-4f1e"
DAGSTER_URL = "http://dagster.host.example:3000"
SITES = client_sites(
    {
        "acme": {"release": "4.2", "seed": 41},
        "globex": {"release": "4.5", "seed": 42},
        "initech": {"release": "5.0", "seed": 43},
    },
    learners=12,
    courses=3,
    start=DAY - dt.timedelta(days=1),
    days=2,
    timezone=ZONE,
)


@pytest.fixture(scope="module")
def night(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("alerts")
    generate_sites(module_pg, SITES.values())
    server = LocalSftpServer(tmp / "sftp", host_key_path=tmp / "host_key")
    keys = {name: add_sftp_account(server, tmp / "keys", name) for name in ("acme", "initech")}
    (server.add_user("globex", password=SERVER_PASSWORD) / "outbound").mkdir()
    server.start()
    clients = {
        "acme": client_entry("moodle_acme", server, "acme", keys["acme"]),
        "globex": client_entry("moodle_globex", server, "globex", keys["acme"]),
        "initech": client_entry(
            "moodle_initech",
            server,
            "initech",
            keys["initech"],
            feeds={"completion": {}, "f2f": {}},
        ),
    }
    globex = clients["globex"]["sftp"]
    del globex["private_key_path"]
    globex["password_env"] = "ODS_TEST_GLOBEX_SFTP_PASSWORD"
    clients["globex"]["alerts"] = {"email": [GLOBEX_CONTACT]}
    clients_file = write_clients_file(
        tmp / "clients.yaml",
        clients,
        timezone=ZONE,
        archive_dir=str(tmp / "archive"),
        delivery_retries=0,
    )
    (tmp / "dagster").mkdir()
    # Run retries on, as production may have them: Dagster tags each failed run will_retry.
    (tmp / "dagster" / "dagster.yaml").write_text(
        "run_retries:\n  enabled: true\n  max_retries: 0\ntelemetry:\n  enabled: false\n"
    )
    mail = tmp / "mail"
    with (
        MailSink(mail) as sink,
        WebhookReceiver() as webhook,
        pytest.MonkeyPatch.context() as env,
    ):
        for name, value in module_pg.libpq_env().items():
            env.setenv(name, value)
        for name in ("ODS_SMTP_USER", "ODS_SMTP_PASSWORD", "ODS_SMTP_STARTTLS"):
            env.delenv(name, raising=False)
        settings = {
            "ODS_CLIENTS_FILE": str(clients_file),
            "DAGSTER_HOME": str(tmp / "dagster"),
            "ODS_HOME": str(tmp / "ods"),
            "ODS_SMTP_HOST": "127.0.0.1",
            "ODS_SMTP_PORT": str(sink.port),
            "ODS_ALERT_FROM": "ods-alerts@host.example",
            "ODS_ALERT_EMAIL": ", ".join(OPERATORS),
            "ODS_ALERT_WEBHOOK_URL": webhook.url,
            "ODS_DAGSTER_URL": DAGSTER_URL,
            "ODS_TEST_GLOBEX_SFTP_PASSWORD": WRONG_PASSWORD,
        }
        for name, value in settings.items():
            env.setenv(name, value)
        defs = build_definitions()
        with dg.DagsterInstance.get() as instance:
            yield from _play_the_night(defs, instance, server, mail, webhook)
    server.stop()


def _play_the_night(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    server: LocalSftpServer,
    mail: Path,
    webhook: WebhookReceiver,
) -> Iterator[dict[str, Any]]:
    # The sensors were running before the night: their first tick sets their cursors.
    cursors = {name: sensor_tick(defs, instance, name, None).cursor for name in SENSORS}

    def tick(name: str) -> Any:
        result = sensor_tick(defs, instance, name, cursors[name])
        cursors[name] = result.cursor
        return result

    def sent() -> tuple[int, int]:
        return len(saved_messages(mail)), len(webhook.calls)

    state: dict[str, Any] = {
        "instance": instance,
        "server": server,
        "mail": mail,
        "webhook": webhook,
    }
    marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
        instance=instance, partition_key=DAY.isoformat()
    )
    requests = {
        r.partition_key.keys_by_dimension["client"]: r
        for r in sensor_requests(defs, instance, marts)
    }
    state["acme"] = run_requested(defs, instance, requests["acme"])
    [tick(name) for name in SENSORS]
    state["after_success"] = sent()

    globex = requests["globex"]
    state["will_retry"] = defs.resolve_job_def(globex.job_name).execute_in_process(
        instance=instance,
        partition_key=globex.partition_key,
        asset_selection=globex.asset_selection,
        tags={**globex.tags, MAX_RETRIES_TAG: "1"},
        raise_on_error=False,
    )
    tick(DELIVERY_FAILURE_SENSOR)
    state["after_will_retry"] = sent()

    state["refused"] = run_requested(defs, instance, globex)
    state["refused_tick"] = tick(DELIVERY_FAILURE_SENSOR)
    state["after_refused"] = sent()
    [tick(name) for name in SENSORS]
    state["after_refused_again"] = sent()

    deadline = _deadline_requests(defs, instance)
    state["missing_at_0500"] = sorted(deadline)
    state["initech_check"] = _run_check(defs, instance, deadline["initech"])
    tick(DEADLINE_SENSOR)
    state["after_missing"] = sent()
    tick(DEADLINE_SENSOR)
    state["after_missing_again"] = sent()

    webhook.status = 500
    _run_check(defs, instance, deadline["globex"])
    state["broken_webhook_tick"] = tick(DEADLINE_SENSOR)
    state["after_broken_webhook"] = sent()
    webhook.status = 200
    tick(DEADLINE_SENSOR)
    state["after_broken_webhook_again"] = sent()
    yield state


def _deadline_requests(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> dict[str, dg.RunRequest]:
    """What the zone's 05:00 schedule requests the morning after DAY: the clients missing a file."""
    schedule = defs.resolve_schedule_def(deadline_schedule_name(ZONE))
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime.combine(
            DAY + dt.timedelta(days=1), dt.time(5), tzinfo=ZoneInfo(ZONE)
        ),
        repository_def=defs.get_repository_def(),
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests or []
    return {r.tags["dagster/partition/client"]: r for r in requests}


def _run_check(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def(DEADLINE_JOB).execute_in_process(
        instance=instance, tags=request.tags
    )


def _messages(night: dict[str, Any]) -> list[email.message.EmailMessage]:
    return saved_messages(night["mail"])


def _no_secret_in(text: str, night: dict[str, Any]) -> None:
    for secret in (SERVER_PASSWORD, WRONG_PASSWORD, night["webhook"].url, "secret-token"):
        assert secret not in text


def test_a_successful_night_sends_nothing(night):
    assert night["acme"].success
    assert night["after_success"] == (0, 0)


def test_a_run_that_dagster_will_retry_waits_for_its_last_retry(night):
    assert not night["will_retry"].success
    # Dagster tagged it when its failure was stored: the retry will tell how it ends.
    stored = night["instance"].get_run_by_id(night["will_retry"].run_id)
    assert stored is not None and stored.tags[WILL_RETRY_TAG] == "true"
    # A failed run with no retries left (this instance's default, max_retries 0) is tagged
    # false: that one is alerted (next test).
    last = night["instance"].get_run_by_id(night["refused"].run_id)
    assert last is not None and last.tags[WILL_RETRY_TAG] == "false"
    assert night["after_will_retry"] == (0, 0)


def test_a_refused_login_gives_one_email_and_one_webhook_call_with_what_to_do(night):
    assert not night["refused"].success
    assert night["after_refused"] == (1, 1)
    message = _messages(night)[0]
    run_id = night["refused"].run_id
    port = night["server"].port
    file_name = f"Completion{FILE_DATE}.csv"
    assert message["Subject"] == (
        f"[ODS] globex {DAY}: delivery failed - {file_name} to "
        f"globex@127.0.0.1:{port}, folder /outbound"
    )
    assert message["From"] == "ods-alerts@host.example"
    assert message["To"] == ", ".join(OPERATORS)
    assert message["Cc"] == GLOBEX_CONTACT  # the client's own contact, from the clients file
    assert message["X-ODS-Sink-Rcpt-To"] == ", ".join([*OPERATORS, GLOBEX_CONTACT])
    body = message.get_content()
    for fact in (
        "Client:  globex (Globex Ltd)",
        f"Day:     {DAY} ({ZONE})",
        "Feed:    completion",
        f"File:    {file_name}",
        f"Server:  globex@127.0.0.1:{port}, folder /outbound",
        "the server refused the login of globex with the configured password",
        f"ods resend --client globex --from {DAY}",
        f"{DAGSTER_URL}/runs/{run_id}",
        f"partition globex|{DAY}",
    ):
        assert fact in body, fact
    _no_secret_in(message.as_string(), night)

    call = night["webhook"].calls[0]
    payload = call["body"]
    assert call["path"] == "/hooks/T000/B000/secret-token"
    assert call["headers"]["Content-Type"] == "application/json"
    assert {k: payload[k] for k in ("kind", "client", "day", "feeds", "files", "run_id")} == {
        "kind": "delivery_failed",
        "client": "globex",
        "day": DAY.isoformat(),
        "feeds": ["completion"],
        "files": [file_name],
        "run_id": run_id,
    }
    assert payload["server"] == f"globex@127.0.0.1:{port}, folder /outbound"
    assert "refused the login of globex" in payload["what_happened"]
    assert payload["text"].startswith(f"*{message['Subject']}*")  # Slack shows `text`
    _no_secret_in(json.dumps(payload), night)
    # The sensor acted on exactly this run.
    (reaction,) = night["refused_tick"].dagster_run_reactions
    assert reaction.dagster_run.run_id == run_id and reaction.error is None


def test_a_second_evaluation_does_not_repeat_a_message(night):
    assert night["after_refused_again"] == night["after_refused"]
    assert night["after_missing_again"] == night["after_missing"]
    assert night["after_broken_webhook_again"] == night["after_broken_webhook"]


def test_a_file_missing_at_0500_gives_one_message_listing_every_missing_file(night):
    assert night["missing_at_0500"] == ["globex", "initech"]
    failed = [e for e in night["initech_check"].get_asset_check_evaluations() if not e.passed]
    assert sorted(e.asset_key.path[-1] for e in failed) == ["completion_delivery", "f2f_delivery"]
    assert night["after_missing"] == (2, 2)
    message = _messages(night)[1]
    files = [f"F2F{FILE_DATE}.csv", f"Completion{FILE_DATE}.csv"]
    assert message["Subject"] == (
        f"[ODS] initech {DAY}: not delivered by 05:00 - 2 files ({', '.join(files)}) to "
        f"initech@127.0.0.1:{night['server'].port}, folder /outbound"
    )
    assert message["To"] == ", ".join(OPERATORS) and message["Cc"] is None
    body = message.get_content()
    for fact in (
        f"Day:     {DAY} ({ZONE}); due {DAY + dt.timedelta(days=1)} 05:00 ",
        "Feeds:   f2f, completion",
        f"Files:   {', '.join(files)}",
        f"the client's folder had no {files[0]} (f2f), {files[1]} (completion)",
        "No files run was made for this client-day.",
        f"schedule {marts_schedule_name(ZONE)}",
        f"ods rebuild --client initech --from {DAY}",
    ):
        assert fact in body, fact
    payload = night["webhook"].calls[1]["body"]
    assert (payload["kind"], payload["client"], payload["files"]) == (
        "deadline_missed",
        "initech",
        files,
    )


def test_a_broken_webhook_fails_the_tick_with_the_reason_and_the_email_still_goes(night):
    (reaction,) = night["broken_webhook_tick"].dagster_run_reactions
    error = reaction.error.to_string()
    assert "the webhook (ODS_ALERT_WEBHOOK_URL) failed: HTTP 500" in error
    assert f"sent: e-mail to {', '.join([*OPERATORS, GLOBEX_CONTACT])}" in error
    _no_secret_in(error, night)
    # The e-mail went; the webhook was called once (and answered 500), and not again.
    assert night["after_broken_webhook"] == (3, 3)
    message = _messages(night)[2]
    assert message["Subject"].startswith(f"[ODS] globex {DAY}: not delivered by 05:00")
    body = message.get_content()
    assert f"The last files run, {night['refused'].run_id}, failed:" in body
    assert f"ods resend --client globex --from {DAY}" in body  # its file is in the archive


def test_alert_contacts_are_plain_addresses_named_with_the_client_and_key(tmp_path):
    clients = {
        "acme": acme_entry(alerts={"email": ["ops@acme.example", "Acme IT <it@acme.example>"]})
    }
    path = write_clients_file(tmp_path / "clients.yaml", clients)
    with pytest.raises(ConfigError) as refused:
        load_clients(path)
    assert "client 'acme': alerts.email: 'Acme IT <it@acme.example>' is not an e-mail" in str(
        refused.value
    )
    clients["acme"]["alerts"] = {"email": "ops@acme.example"}
    alerts = load_clients(write_clients_file(path, clients)).clients["acme"].alerts
    assert alerts is not None and alerts.email == ["ops@acme.example"]


def _incident() -> Incident:
    return Incident(
        kind="delivered_late",
        client_id="acme",
        client_name="Acme",
        day=DAY,
        timezone="Europe/London",
        files=(FeedFile("completion", f"Completion{FILE_DATE}.csv"),),
        server="acme@sftp.example.org:22, folder /outbound",
        what_happened="it came late",
        what_to_do=("nothing",),
        where_to_look=("the UI",),
    )


def test_no_channel_configured_is_an_error_not_silence():
    with pytest.raises(AlertNotSent, match="no alert channel is configured: set ODS_SMTP_HOST"):
        Channels(smtp=None, operators=[]).send(_incident(), [])


def test_the_local_default_sends_to_the_mail_sink_that_ods_up_starts(tmp_path):
    home = tmp_path / "ods"
    services.start_mail_sink(home)
    try:
        channels = AlertChannels(local_sink_home=str(home)).channels()
        assert channels.send(_incident(), []) == ["e-mail to operators@localhost"]
    finally:
        services.stop_mail_sink(home)
    (message,) = saved_messages(home / "mail")
    assert message["Subject"].startswith(f"[ODS] acme {DAY}: delivered after 05:00")
    assert services.status(home)["mail"] == "stopped"
