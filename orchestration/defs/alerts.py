"""Alerts that reach a person: Dagster sensors that turn a failed delivery or a missed 05:00 into
one message (orchestration/alerts/) to the operators and the client's contacts.

- `delivery_failure_alerts` (`run_failure_sensor` on the files and deadline jobs): a files run
  that failed after its step retries. A run that Dagster will retry as a whole (run retries on,
  tag `dagster/will_retry=true`, set when the failure is stored) is left to its last retry.
- `deadline_alerts` (`run_status_sensor` on successful deadline and files runs): the run's failed
  `delivered_by_0500` evaluations, one message per client-day listing every feed missing (at
  05:00) or late. A failed check does not fail its run, so the run succeeded; reading its
  evaluations after it ended sees all of them at once.

One message per incident: a run status sensor keeps a cursor over run status events, so each run
is acted on once (a run is one client-day). A failed send is logged and raised: the tick shows as
failed in the UI with the reason, and Dagster still moves the cursor on (a status sensor's
side effects are not repeated), so one bad webhook never replays every alert nor stalls the next.

Both start RUNNING: a production deployment alerts without anyone clicking. Runs made in-process
(`make demo`, the tests) have no code location origin, so the daemon's sensors never see them.

Why not `make_email_on_run_failure_sensor`: it takes the password as a string at definition,
always logs in over SSL or STARTTLS (the local sink has neither), has fixed recipients (no
client contact) and no webhook.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG, WILL_RETRY_TAG

from orchestration import warehouse
from orchestration.alerts.channels import Channels
from orchestration.alerts.message import FeedFile, Incident, Kind, command, text
from orchestration.alerts.smtp import AlertNotSent, SmtpSettings
from orchestration.clients import ClientConfig, ClientsConfig
from orchestration.days import file_name
from orchestration.defs.client_files import file_key
from orchestration.defs.deadline import DEADLINE_CHECK
from orchestration.defs.jobs import CLIENT_FILES_JOB, DEADLINE_JOB
from orchestration.defs.partitions import client_and_day, client_day_key, zone_slug
from orchestration.defs.reruns import STARTED_BY_TAG
from orchestration.feeds import FEEDS
from orchestration.paths import ods_home

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

DELIVERY_FAILURE_SENSOR = "delivery_failure_alerts"
DEADLINE_SENSOR = "deadline_alerts"
LOCAL_OPERATORS = "operators@localhost"
DEFAULT_SENDER = "outbound-data-sync@localhost"


class AlertChannels(dg.ConfigurableResource):
    """Where alerts go: SMTP and/or a webhook, set by ODS_* environment variables. Locally (PG*
    unset, or naming the embedded server) with no SMTP server set, the local mail sink that
    `ods up` starts."""

    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: str | None = None
    sender: str | None = None
    operator_emails: str | None = None
    webhook_url: str | None = None
    dagster_url: str | None = None
    local_sink_home: str | None = None

    def channels(self) -> Channels:
        operators = [a.strip() for a in (self.operator_emails or "").split(",") if a.strip()]
        smtp = None
        if self.smtp_host:
            port = self.smtp_port or (587 if self.starttls() else 25)
            smtp = SmtpSettings(
                host=self.smtp_host,
                port=port,
                sender=self.sender or DEFAULT_SENDER,
                user=self.smtp_user,
                password=self.smtp_password,
                starttls=self.starttls(),
            )
        elif self.local_sink_home and not self.webhook_url:
            from ods_local.services import running_mail_sink

            sink = running_mail_sink(Path(self.local_sink_home))
            if sink is not None:
                smtp = SmtpSettings("127.0.0.1", sink[1], sender=self.sender or DEFAULT_SENDER)
                operators = operators or [LOCAL_OPERATORS]
        return Channels(smtp=smtp, operators=operators, webhook_url=self.webhook_url)

    def starttls(self) -> bool:
        value = (self.smtp_starttls or "false").strip().lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise AlertNotSent(f"ODS_SMTP_STARTTLS={value!r}: use true or false")
        return value in ("true", "1", "yes")


def alert_channels_from_env() -> AlertChannels:
    """The resource as the code location builds it. Each setting is a `dg.EnvVar`, so the UI shows
    the variable's name, never its value; only variables that are set are passed (an EnvVar of an
    unset variable is an error when the resource is built, and every one of these is optional)."""

    def env(name: str) -> str | None:
        return dg.EnvVar(name) if os.environ.get(name) else None

    return AlertChannels(
        smtp_host=env("ODS_SMTP_HOST"),
        smtp_port=dg.EnvVar.int("ODS_SMTP_PORT") if os.environ.get("ODS_SMTP_PORT") else None,
        smtp_user=env("ODS_SMTP_USER"),
        smtp_password=env("ODS_SMTP_PASSWORD"),
        smtp_starttls=env("ODS_SMTP_STARTTLS"),
        sender=env("ODS_ALERT_FROM"),
        operator_emails=env("ODS_ALERT_EMAIL"),
        webhook_url=env("ODS_ALERT_WEBHOOK_URL"),
        dagster_url=env("ODS_DAGSTER_URL"),
        # The local default: the warehouse is the embedded server (PGHOST unset, or exported by
        # `use_local_default_if_unset` once this process connected to it).
        local_sink_home=str(ods_home()) if warehouse.is_embedded() else None,
    )


def alert_destination() -> str:
    """One line for `ods demo`: where this environment's alerts go (never a secret)."""
    resource = alert_channels_from_env().process_config_and_initialize()
    channels = resource.channels()
    where = channels.describe()
    if channels.smtp is not None and not resource.smtp_host and resource.local_sink_home:
        folder = Path(resource.local_sink_home) / "mail"
        where += f" (the local mail sink: each message saved as .eml in {folder})"
    return (
        "alerts (a failed delivery, a file missing at 05:00; sent by the daemon's sensors, as "
        f"under `make ui`, not for the demo's in-process runs): {where}"
    )


def alert_sensors(
    config: ClientsConfig,
    files_job: UnresolvedAssetJobDefinition,
    deadline_job: UnresolvedAssetJobDefinition,
) -> list[dg.SensorDefinition]:
    @dg.run_failure_sensor(
        name=DELIVERY_FAILURE_SENSOR,
        monitored_jobs=[files_job, deadline_job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "When a files run fails after its retries (or a 05:00 check cannot run), send one "
            "message (e-mail and/or webhook) to the operators and the client's contacts: client, "
            "feeds, day, files, server, what happened and the ods command to run."
        ),
    )
    def delivery_failure_alerts(
        context: dg.RunFailureSensorContext, alert_channels: AlertChannels
    ) -> None:
        run = context.dagster_run
        if run.tags.get(WILL_RETRY_TAG) == "true":
            context.log.info(f"run {run.run_id} will be retried: no alert unless its retry fails")
            return
        incident = failed_run_incident(config, context, alert_channels.dagster_url)
        if incident is None:
            context.log.warning(f"run {run.run_id} failed but names no client-day: no alert")
            return
        _send(context.log, alert_channels, config, [incident])

    @dg.run_status_sensor(
        name=DEADLINE_SENSOR,
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[deadline_job, files_job],
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "When a 05:00 check finds a client's file missing, or a files run delivers one after "
            "05:00, send one message per client-day (e-mail and/or webhook) listing the feeds and "
            "files, the server and what to do."
        ),
    )
    def deadline_alerts(context: dg.RunStatusSensorContext, alert_channels: AlertChannels) -> None:
        incidents = deadline_incidents(
            config, context.instance, context.dagster_run, alert_channels.dagster_url
        )
        _send(context.log, alert_channels, config, incidents)

    return [delivery_failure_alerts, deadline_alerts]


def _send(
    log: Any, alert_channels: AlertChannels, config: ClientsConfig, incidents: list[Incident]
) -> None:
    """Send each incident; log what went where; raise (failing the tick) if any send failed."""
    problems = []
    channels = alert_channels.channels()
    for incident in incidents:
        log.info(f"alert {incident.key} to {channels.describe()}:\n{text(incident)}")
        client = config.clients[incident.client_id]
        contacts = list(client.alerts.email) if client.alerts else []
        try:
            sent = channels.send(incident, contacts)
        except AlertNotSent as error:
            log.error(f"ALERT NOT SENT: {error}")
            problems.append(str(error))
            continue
        log.info(f"alert {incident.key} sent: {', '.join(sent)}")
    if problems:
        raise AlertNotSent("; ".join(problems))


def _server(client: ClientConfig) -> str:
    sftp = client.sftp
    return f"{sftp.username}@{sftp.host}:{sftp.port}, folder {sftp.directory}"


def _run_place(run: dg.DagsterRun, dagster_url: str | None) -> str:
    partition = run.tags.get(PARTITION_NAME_TAG, "no partition")
    link = f": {dagster_url.rstrip('/')}/runs/{run.run_id}" if dagster_url else ""
    return f"Dagster UI, Runs: run {run.run_id} ({run.job_name}, partition {partition}){link}"


def _feed_files(client: ClientConfig, day: dt.date, feeds: Sequence[str]) -> tuple[FeedFile, ...]:
    return tuple(
        FeedFile(name, file_name(FEEDS[name].prefix, day, client.file_date))
        for name in FEEDS
        if name in feeds
    )


def _failure_descriptions(
    instance: dg.DagsterInstance, run_id: str
) -> tuple[list[str], list[str], dict[str, Any]]:
    """(what each failed step said, the feeds its failure names, its metadata)."""
    said: list[str] = []
    feeds: list[str] = []
    metadata: dict[str, Any] = {}
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.STEP_FAILURE
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        failure = event.step_failure_data
        if failure.user_failure_data is not None:
            said.append(failure.user_failure_data.description or "")
            metadata |= {k: v.value for k, v in failure.user_failure_data.metadata.items()}
            feeds += list(metadata.get("failed_feeds") or [])
        elif failure.error is not None:
            said.append(failure.error.message.strip())
    return [s for s in said if s], feeds, metadata


def _sound_in_archive(
    instance: dg.DagsterInstance, feed: str, partition: str, failed_checks: set[str]
) -> bool:
    """Whether the feed's file for the partition was made and no check of it failed: then a
    re-send (byte for byte) is the fix, else a rebuild."""
    if feed in failed_checks:
        return False
    made = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=file_key(FEEDS[feed]), asset_partitions=[partition]),
        limit=1,
    ).records
    return bool(made)


def _files_with_failed_checks(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    failed = set()
    for evaluation in _check_evaluations(instance, run_id):
        name = evaluation.asset_key.path[-1]
        if not evaluation.passed and name.endswith("_file"):
            failed.add(name.removesuffix("_file"))
    return failed


def _check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return [
        r.event_log_entry.dagster_event.asset_check_evaluation_data
        for r in records
        if r.event_log_entry.dagster_event is not None
    ]


def _fix_command(
    instance: dg.DagsterInstance,
    config: ClientsConfig,
    client_id: str,
    day: dt.date,
    feeds: list[str],
    failed_checks: set[str],
) -> str:
    """`ods resend` when every file is in the archive and sound, else `ods rebuild`; `--feed`
    only when one feed of several failed."""
    partition = str(client_day_key(client_id, day))
    named = None if set(feeds) == set(config.clients[client_id].feeds) else feeds
    if all(_sound_in_archive(instance, f, partition, failed_checks) for f in feeds):
        return (
            "Then re-send the archived file(s), byte for byte: "
            f"{command('resend', client_id, day, named)}"
        )
    return (
        "Then rebuild the day from current data and deliver it: "
        f"{command('rebuild', client_id, day, named)}"
    )


def failed_run_incident(
    config: ClientsConfig, context: dg.RunFailureSensorContext, dagster_url: str | None
) -> Incident | None:
    """The incident of a failed files run (one client-day), or of a deadline run that failed."""
    run = context.dagster_run
    partition = run.tags.get(PARTITION_NAME_TAG)
    if not partition:
        return None
    client_id, day = client_and_day(partition)
    client = config.clients.get(client_id)
    if client is None:
        return None
    said, failed_feeds, metadata = _failure_descriptions(context.instance, run.run_id)
    happened = "\n".join(said) or (context.failure_event.message or "the run failed")
    feeds = [f for f in failed_feeds if f in client.feeds] or list(client.feeds)
    where = [_run_place(run, dagster_url)]
    if run.job_name == DEADLINE_JOB:
        return _client_day_incident(
            config,
            "check_not_run",
            client_id,
            day,
            feeds,
            what_happened=f"The delivered_by_0500 check could not run: {happened}",
            what_to_do=(
                "Read the run's error in the Dagster UI and fix it; the files may well be in "
                "the client's folder.",
                "Re-execute the run from the UI to check again.",
            ),
            where_to_look=where,
            run_id=run.run_id,
        )
    if "deleted_before_stopping" in metadata:  # delivered; retention failed after
        steps: tuple[str, ...] = (
            "The files are in the client's folder: nothing to re-send.",
            "Fix the retention problem named above; retention runs again with the next delivery.",
        )
    else:
        failed_checks = _files_with_failed_checks(context.instance, run.run_id)
        steps = (
            "Remove the cause named above (its last sentence says what to check).",
            _fix_command(context.instance, config, client_id, day, feeds, failed_checks),
        )
    where.append(f"the {feeds[0]}_delivery asset, partition {partition}, for its history")
    return _client_day_incident(
        config,
        "delivery_failed",
        client_id,
        day,
        feeds,
        what_happened=happened,
        what_to_do=steps,
        where_to_look=where,
        run_id=run.run_id,
    )


def _client_day_incident(
    config: ClientsConfig,
    kind: Kind,
    client_id: str,
    day: dt.date,
    feeds: Sequence[str],
    *,
    what_happened: str,
    what_to_do: Sequence[str],
    where_to_look: Sequence[str],
    run_id: str,
    deadline: str | None = None,
) -> Incident:
    """An incident about one client-day's files, with what the clients file says of them: the
    client's name and time zone, the feeds' file names, the server they go to."""
    client = config.clients[client_id]
    return Incident(
        kind=kind,
        client_id=client_id,
        client_name=client.name,
        day=day,
        timezone=config.timezone_of(client_id),
        files=_feed_files(client, day, feeds),
        server=_server(client),
        what_happened=what_happened,
        what_to_do=tuple(what_to_do),
        where_to_look=tuple(where_to_look),
        run_id=run_id,
        deadline=deadline,
    )


def deadline_incidents(
    config: ClientsConfig, instance: dg.DagsterInstance, run: dg.DagsterRun, dagster_url: str | None
) -> list[Incident]:
    """One incident per client-day whose delivered_by_0500 failed in `run`: missing (at 05:00)
    or late. A late delivery by an operator's re-run or a backfill is not an incident: the
    person who started it knows the day is old."""
    failed: dict[tuple[str, dt.date], list[dict[str, Any]]] = {}
    for evaluation in _check_evaluations(instance, run.run_id):
        if evaluation.check_name != DEADLINE_CHECK or evaluation.passed:
            continue
        fact = {k: v.value for k, v in evaluation.metadata.items()}
        client_id, day = str(fact["client"]), dt.date.fromisoformat(str(fact["day"]))
        if client_id in config.clients:
            failed.setdefault((client_id, day), []).append(fact)
    operator_run = STARTED_BY_TAG in run.tags or BACKFILL_ID_TAG in run.tags
    incidents = []
    for (client_id, day), facts in sorted(failed.items()):
        missing = [f for f in facts if f["state"] == "missing"]
        if not missing and operator_run:
            continue
        incidents.append(
            _deadline_incident(config, instance, run, client_id, day, facts, dagster_url)
        )
    return incidents


def _deadline_incident(
    config: ClientsConfig,
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    client_id: str,
    day: dt.date,
    facts: list[dict[str, Any]],
    dagster_url: str | None,
) -> Incident:
    client = config.clients[client_id]
    timezone = config.timezone_of(client_id)
    deadline = dt.datetime.fromisoformat(str(facts[0]["deadline"]))
    due = f"{deadline:%Y-%m-%d %H:%M %Z}"
    missing = [str(f["feed"]) for f in facts if f["state"] == "missing"]
    late = [f for f in facts if f["state"] == "late"]
    lines = []
    if missing:
        names = ", ".join(f"{f.file_name} ({f.feed})" for f in _feed_files(client, day, missing))
        lines.append(f"At the 05:00 check ({due}) the client's folder had no {names}.")
    for fact in late:
        arrived = dt.datetime.fromisoformat(str(fact["delivered_at"]))
        lines.append(
            f"{fact['expected_file']} ({fact['feed']}) arrived at {arrived:%Y-%m-%d %H:%M %Z}, "
            f"after the deadline ({due})."
        )
    where = [_run_place(run, dagster_url)]
    partition = str(client_day_key(client_id, day))
    if missing:
        last = _last_files_run(instance, partition)
        steps = [*_why_missing(config, instance, client_id, last, lines, where, dagster_url)]
        steps.append(_fix_command(instance, config, client_id, day, missing, set()))
        kind: Kind = "deadline_missed"
    else:
        steps = [
            "Nothing to re-send: the file is in the client's folder.",
            "Tell the client if it matters to them; then see why the night was late: the "
            f"03:00 marts run ({_marts_schedule(timezone)}) and this files run's start and "
            "duration in the Dagster UI.",
        ]
        kind = "delivered_late"
    return _client_day_incident(
        config,
        kind,
        client_id,
        day,
        [str(f["feed"]) for f in facts],
        what_happened="\n".join(lines),
        what_to_do=steps,
        where_to_look=where,
        run_id=run.run_id,
        deadline=due,
    )


def _marts_schedule(timezone: str) -> str:
    return f"schedule daily_marts_{zone_slug(timezone)}"


def _last_files_run(instance: dg.DagsterInstance, partition: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=CLIENT_FILES_JOB, tags={PARTITION_NAME_TAG: partition}),
        limit=1,
    )
    return runs[0] if runs else None


def _why_missing(
    config: ClientsConfig,
    instance: dg.DagsterInstance,
    client_id: str,
    last: dg.DagsterRun | None,
    lines: list[str],
    where: list[str],
    dagster_url: str | None,
) -> list[str]:
    """What the last files run of the client-day says (appended to `lines` and `where`), and
    the first step to take."""
    if last is None:
        lines.append("No files run was made for this client-day.")
        return [
            "See whether the zone's 03:00 marts run succeeded "
            f"({_marts_schedule(config.timezone_of(client_id))}) and whether "
            "files_after_marts_sensor is running (Dagster UI, Automation)."
        ]
    where.append(_run_place(last, dagster_url))
    if last.status == dg.DagsterRunStatus.FAILURE:
        said, _, _ = _failure_descriptions(instance, last.run_id)
        lines.append(f"The last files run, {last.run_id}, failed: " + ("\n".join(said) or "?"))
        return ["Remove the cause named above (its last sentence says what to check)."]
    if last.status == dg.DagsterRunStatus.SUCCESS:
        return ["The last files run succeeded but delivered nothing: read its log."]
    lines.append(f"The last files run, {last.run_id}, is {last.status.value.lower()}.")
    return ["Wait for it (its files will be late), or cancel it in the UI if it is stuck."]
