"""Operating the pipeline for real: a three-day backfill of the marts, the files sensor's runs for
every client, retention, the 05:00 check, broken clients, and `ods resend`/`ods rebuild` (real runs
launched on the module's instance, whose coordinator starts them at once), over PostgreSQL and
SFTP.

One module fixture plays a night: the deadline check before anything ran, one marts run over three
days (as a UI backfill makes it), the sensor's requests, each files run, the deadline check again.
Of five clients two are healthy (acme: own columns, retention to do; globex: defaults), umbrella
pins a host key the server does not have, initech's key variable is not set, and hooli's server is
down throughout (nothing listens on its port), so its deliveries are retried, then fail. The
clients file shortens the retry waits (`delivery_retry_delay_seconds`) so that the night takes
seconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ods_local.sftp_server import LocalSftpServer
from orchestration import cli
from orchestration.defs.code_location import build_definitions
from orchestration.defs.jobs import CLIENTS_TAG, DAILY_MARTS_JOB, FILES_FOLLOW_TAG, SFTP_HOST_TAG
from orchestration.defs.partitions import client_day_key
from orchestration.defs.reruns import STARTED_BY_TAG
from orchestration.delivery import ledger
from orchestration.delivery.client_day_lock import one_delivery_at_a_time
from orchestration.delivery.keys import generate_key_pair
from tests.e2e_support import (
    add_sftp_account,
    client_sites,
    dagster_home_with_shipped_launcher,
    expected_completions,
    generate_sites,
    ods_environment,
    parse_csv,
    run_requested,
    sensor_requests,
    site_clients,
    write_clients_file,
)

# Three days around the 25-hour day on which Europe/London leaves summer time.
DAYS = [dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 26)]
LAST = DAYS[-1]
CLIENTS = ("acme", "globex", "umbrella", "initech", "hooli")
HEALTHY = ("acme", "globex")
SITES = client_sites(
    {
        "acme": {"release": "4.2", "prefix": "mdl_", "seed": 31, "learners": 30},
        "globex": {"release": "4.5", "prefix": "m_", "seed": 32, "learners": 30},
        "umbrella": {"release": "5.0", "prefix": "mdl_", "seed": 33, "learners": 12},
        "initech": {"release": "4.3", "prefix": "mdl_", "seed": 34, "learners": 12},
        "hooli": {"release": "4.1", "prefix": "mdl_", "seed": 35, "learners": 12},
    },
    courses=4,
    start=DAYS[0] - dt.timedelta(days=2),
    days=5,
)
ACME_COLUMNS = {
    "username": "Employee ID",
    "course_shortname": "Course Code",
    "completion_date": "Completed On",
}
DEFAULT_COLUMNS = [
    "username",
    "idnumber",
    "firstname",
    "lastname",
    "email",
    "course_name",
    "completion_date",
]


def file_name(day: dt.date) -> str:
    return f"Completion{day + dt.timedelta(days=1):%Y%m%d}.csv"


# acme's folder before the night: feed files we delivered 29 and 28 days before the first file
# (the second is exactly at the limit for the first night, one day past it for the second), an
# expired file of the feed's name that we never delivered there (the client's own copy), a file
# dated in the future, another feed's old file, and the client's notes: only the first two may go.
FIRST_FILE_DATE = DAYS[0] + dt.timedelta(days=1)
EXPIRED = f"Completion{FIRST_FILE_DATE - dt.timedelta(days=29):%Y%m%d}.csv"
AT_THE_LIMIT = f"Completion{FIRST_FILE_DATE - dt.timedelta(days=28):%Y%m%d}.csv"
NOT_OURS = f"Completion{FIRST_FILE_DATE - dt.timedelta(days=40):%Y%m%d}.csv"
KEPT_FOREIGN = [NOT_OURS, "Completion20991231.csv", "Quiz20250101.csv", "notes.txt"]
RETRIES = 2


@pytest.fixture(scope="module")
def night(module_pg, tmp_path_factory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("operations")
    generate_sites(module_pg, SITES.values())
    server = LocalSftpServer(tmp / "sftp", host_key_path=tmp / "host_key")
    keys = {name: add_sftp_account(server, tmp / "keys", name) for name in CLIENTS}
    folders = {name: server.root / name / "outbound" for name in CLIENTS}
    for name in [EXPIRED, AT_THE_LIMIT, *KEPT_FOREIGN]:
        (folders["acme"] / name).write_text("old\r\n")
    server.start()
    for name in [EXPIRED, AT_THE_LIMIT]:
        _record_as_ours(tmp / "archive", "acme", server.port, name)
    wrong_host_key = generate_key_pair(tmp / "keys" / "not_the_server", "not the server")
    clients = site_clients(SITES, server, keys)
    clients["acme"]["feeds"] = {"completion": {"columns": ACME_COLUMNS}}
    clients["umbrella"]["sftp"]["host_key"] = wrong_host_key
    del clients["initech"]["sftp"]["private_key_path"]
    clients["initech"]["sftp"]["private_key_env"] = "ODS_TEST_INITECH_UNSET_KEY"
    clients["hooli"]["sftp"]["port"] = _closed_port()
    clients_file = write_clients_file(
        tmp / "clients.yaml",
        clients,
        archive_dir=str(tmp / "archive"),
        delivery_retries=RETRIES,
        delivery_retry_delay_seconds=0.2,
    )
    dagster_home_with_shipped_launcher(tmp / "dagster")
    # ODS_HOME: the ods commands' logs.
    with ods_environment(
        module_pg, clients_file, DAGSTER_HOME=str(tmp / "dagster"), ODS_HOME=str(tmp / "ods")
    ) as env:
        env.delenv("ODS_TEST_INITECH_UNSET_KEY", raising=False)
        defs = build_definitions()
        with dg.DagsterInstance.get() as instance:
            state: dict[str, Any] = {
                "defs": defs,
                "instance": instance,
                "server": server,
                "folders": folders,
                "pg": module_pg,
                "tmp": tmp,
                "hooli_port": clients["hooli"]["sftp"]["port"],
            }
            state["deadline_before"] = _deadline(state, "acme", LAST)
            marts = defs.resolve_job_def(DAILY_MARTS_JOB).execute_in_process(
                instance=instance,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: DAYS[0].isoformat(),
                    ASSET_PARTITION_RANGE_END_TAG: LAST.isoformat(),
                },
            )
            state["requests"] = sensor_requests(defs, instance, marts)
            state["files_runs"] = {
                (
                    r.partition_key.keys_by_dimension["client"],
                    r.partition_key.keys_by_dimension["date"],
                ): run_requested(defs, instance, r)
                for r in state["requests"]
            }
            state["delivered"] = {
                (client_id, day): (folders[client_id] / file_name(day)).read_bytes()
                for client_id in HEALTHY
                for day in DAYS
            }
            state["deadline_after"] = {c: _deadline(state, c, LAST) for c in ("acme", "umbrella")}
            state["missing_at_0500"] = _missing_at_0500(state, LAST)
            yield state
    server.stop()


def _record_as_ours(archive_root: Path, client_id: str, port: int, name: str) -> None:
    """Enter a file placed in a client's folder by the test in the ledger of deliveries, as an
    earlier night's delivery of ours would have."""
    ledger.record(
        archive_root,
        ledger.Delivery(
            client_id=client_id,
            feed="completion",
            activity_day="2026-01-01",
            file_name=name,
            host="127.0.0.1",
            port=port,
            username=client_id,
            directory="/outbound",
            bytes=len(b"old\r\n"),
            sha256=hashlib.sha256(b"old\r\n").hexdigest(),
            delivered_at="2026-01-02T05:00:00.000000Z",
        ),
    )


def _closed_port() -> int:
    """A local port that nothing listens on: the kernel refuses connections to it at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _deadline(state: dict[str, Any], client_id: str, day: dt.date) -> dg.AssetCheckEvaluation:
    """Evaluate a client-day's delivered_by_0500 check now, as the deadline job does."""
    key = client_day_key(client_id, day)
    result = (
        state["defs"]
        .resolve_job_def("deadline_job")
        .execute_in_process(
            instance=state["instance"],
            tags=dict(
                state["defs"]
                .resolve_job_def("client_files_job")
                .partitions_def.get_tags_for_partition_key(str(key))
            ),
        )
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.partition == str(key)
    return evaluation


def _missing_at_0500(state: dict[str, Any], day: dt.date) -> list[str]:
    """The clients whose check the 05:00 schedule runs: those with no delivery for the day."""
    schedule = state["defs"].resolve_schedule_def("deadline_europe_london")
    with dg.build_schedule_context(
        instance=state["instance"],
        scheduled_execution_time=dt.datetime.combine(
            day + dt.timedelta(days=1), dt.time(5), tzinfo=ZoneInfo("Europe/London")
        ),
        repository_def=state["defs"].get_repository_def(),
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests or []
    return sorted(r.tags["dagster/partition/client"] for r in requests)


def _run(state: dict[str, Any], client_id: str, day: dt.date) -> dg.ExecuteInProcessResult:
    return state["files_runs"][client_id, day.isoformat()]


def _deliver_last_again(
    state: dict[str, Any], client_id: str, **options: Any
) -> dg.ExecuteInProcessResult:
    """A files run of the client's LAST day that only delivers its archived Completion file
    again (the delivery asset alone); `options` go to the run (run_config, raise_on_error)."""
    return (
        state["defs"]
        .resolve_job_def("client_files_job")
        .execute_in_process(
            instance=state["instance"],
            partition_key=client_day_key(client_id, LAST),
            asset_selection=[dg.AssetKey("completion_delivery")],
            **options,
        )
    )


def _delivery_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (materialised,) = [
        m
        for m in result.asset_materializations_for_node("client_files")
        if m.asset_key == dg.AssetKey("completion_delivery")
    ]
    return {key: value.value for key, value in materialised.metadata.items()}


def _failed_beside_the_healthy(
    state: dict[str, Any], client_id: str
) -> Iterator[tuple[dt.date, dg.ExecuteInProcessResult, Any]]:
    """Each day of the night: the HEALTHY clients' files runs succeeded and `client_id`'s
    failed; its day, run and failure (_user_failure)."""
    for day in DAYS:
        for healthy in HEALTHY:
            assert _run(state, healthy, day).success, (healthy, day)
        result = _run(state, client_id, day)
        yield day, result, _user_failure(result)


def _retries(result: dg.ExecuteInProcessResult) -> list[dg.DagsterEvent]:
    """The run's step retries (Dagster's STEP_UP_FOR_RETRY events), in order."""
    return [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def _user_failure(result: dg.ExecuteInProcessResult) -> Any:
    """The failure the failed step raised (its description and metadata), of a failed run."""
    assert not result.success
    (event,) = [e for e in result.all_events if e.is_step_failure]
    failure = event.step_failure_data.user_failure_data
    assert failure is not None
    return failure


def test_the_sensor_requests_one_files_run_per_client_and_day_of_the_backfill(night):
    requests = night["requests"]
    assert sorted(
        (
            r.job_name,
            r.partition_key.keys_by_dimension["client"],
            r.partition_key.keys_by_dimension["date"],
        )
        for r in requests
    ) == sorted(("client_files_job", c, d.isoformat()) for c in CLIENTS for d in DAYS)
    assert len({r.run_key for r in requests}) == len(CLIENTS) * len(DAYS)
    assert {r.tags[SFTP_HOST_TAG] for r in requests} == {"127.0.0.1"}


def test_a_backfill_of_three_days_delivers_three_files_per_client_never_merged(night):
    for client_id in HEALTHY:
        names = sorted(p.name for p in night["folders"][client_id].iterdir())
        ours = [n for n in names if n not in KEPT_FOREIGN]
        assert ours == [file_name(day) for day in DAYS]
    spec = SITES["acme"]
    with psycopg.connect(night["pg"].conninfo()) as conn:
        for day in DAYS:
            expected = expected_completions(conn, spec.schema, spec.prefix, "Europe/London", day)
            rows = parse_csv(night["delivered"]["acme", day])
            assert rows[0] == list(ACME_COLUMNS.values())
            assert rows[1:] == [[row[c] for c in ACME_COLUMNS] for row in expected]
            globex = SITES["globex"]
            expected = expected_completions(
                conn, globex.schema, globex.prefix, "Europe/London", day
            )
            rows = parse_csv(night["delivered"]["globex", day])
            assert rows[1:] == [[row[c] for c in DEFAULT_COLUMNS] for row in expected]
    assert any(len(parse_csv(night["delivered"]["acme", d])) > 1 for d in DAYS)


def test_rows_and_header_checks_pass_on_every_file(night):
    for (client_id, day), result in night["files_runs"].items():
        checks = {
            e.check_name: e
            for e in result.get_asset_check_evaluations()
            if e.asset_key == dg.AssetKey("completion_file")
        }
        assert set(checks) == {"rows_match_mart", "header_matches_config"}, (client_id, day)
        assert all(check.passed for check in checks.values()), (client_id, day, checks)
        rows = checks["rows_match_mart"].metadata
        assert rows["file_rows"].value == rows["mart_rows"].value
    acme = _run(night, "acme", LAST).get_asset_check_evaluations()
    header = next(e for e in acme if e.check_name == "header_matches_config")
    assert header.metadata["file_header"].value == "Employee ID, Course Code, Completed On"


def test_a_changed_host_key_fails_that_client_at_once_while_the_others_are_delivered(night):
    for day, result, failure in _failed_beside_the_healthy(night, "umbrella"):
        for fact in (
            "client umbrella",
            "feed completion",
            f"day {day}",
            file_name(day),
            f"127.0.0.1:{night['server'].port}",
        ):
            assert fact in failure.description
        assert failure.metadata["pinned_fingerprint"].value.startswith("SHA256:")
        assert failure.metadata["presented_fingerprint"].value.startswith("SHA256:")
        assert failure.metadata["retryable"].value is False
        assert _retries(result) == []
    assert list(night["folders"]["umbrella"].iterdir()) == []


def test_a_server_down_throughout_fails_after_its_retries_while_the_others_are_delivered(night):
    for day, result, failure in _failed_beside_the_healthy(night, "hooli"):
        assert len(_retries(result)) == RETRIES
        for fact in (
            f"client hooli, feed completion, day {day}, file {file_name(day)}",
            f"127.0.0.1:{night['hooli_port']}",
            "cannot reach the server",
        ):
            assert fact in failure.description
        assert failure.metadata["retryable"].value is True
    assert not list(night["folders"]["hooli"].iterdir())
    assert not _deadline(night, "hooli", LAST).passed


def test_a_missing_key_variable_is_a_clear_error_and_not_retried(night):
    result = _run(night, "initech", LAST)
    failure = _user_failure(result)
    assert "client initech, feed completion" in failure.description
    assert "ODS_TEST_INITECH_UNSET_KEY (sftp.private_key_env) is not set" in failure.description
    assert _retries(result) == []
    assert list(night["folders"]["initech"].iterdir()) == []


def test_retention_removes_our_expired_feed_files_and_lists_them(night):
    deleted = [_delivery_metadata(_run(night, "acme", day))["retention_deleted"] for day in DAYS]
    assert deleted == [[EXPIRED], [AT_THE_LIMIT], []]
    remaining = {p.name for p in night["folders"]["acme"].iterdir()}
    assert remaining == {*KEPT_FOREIGN, *(file_name(day) for day in DAYS)}
    # Ours kept: the three files of the night (the future-dated one is not ours).
    assert _delivery_metadata(_run(night, "acme", LAST))["retention_kept"] == 3


def test_retention_leaves_an_expired_file_of_the_feeds_name_that_it_never_delivered(night):
    for day in DAYS:
        assert _delivery_metadata(_run(night, "acme", day))["retention_foreign"] == [NOT_OURS]
    assert (night["folders"]["acme"] / NOT_OURS).read_bytes() == b"old\r\n"


def test_a_retention_dry_run_lists_expired_files_without_removing_them(night):
    old = "Completion20260101.csv"
    (night["folders"]["globex"] / old).write_text("old\r\n")
    _record_as_ours(night["tmp"] / "archive", "globex", night["server"].port, old)
    result = _deliver_last_again(
        night,
        "globex",
        run_config={"ops": {"client_files": {"config": {"retention_dry_run": True}}}},
    )
    metadata = _delivery_metadata(result)
    assert metadata["retention_would_delete"] == [old]
    assert metadata["retention_dry_run"] is True
    assert "retention_deleted" not in metadata
    assert (night["folders"]["globex"] / old).exists()


def test_a_retention_failure_after_the_upload_fails_the_step_but_the_file_stays_delivered(
    night,
):
    folder = night["folders"]["acme"]
    expired = "Completion20250601.csv"
    (folder / expired).write_text("old\r\n")
    _record_as_ours(night["tmp"] / "archive", "acme", night["server"].port, expired)
    sent = (folder / file_name(LAST)).read_bytes()
    night["server"].faults.deny_removes = True
    try:
        result = _deliver_last_again(night, "acme", raise_on_error=False)
    finally:
        night["server"].faults.deny_removes = False
    try:
        failure = _user_failure(result)
        for fact in (
            f"client acme, day {LAST}: delivered {file_name(LAST)}, but",
            f"acme@127.0.0.1:{night['server'].port}:/outbound",
            f"permission denied removing the expired file {expired}",
        ):
            assert fact in failure.description
        assert _retries(result) == []
        # The upload itself went through, and is recorded, so the 05:00 check counts the file
        # (late, as everything delivered in this test of October's days is).
        assert (
            f"permission denied removing the expired file {expired}"
            in _delivery_metadata(result)["retention_error"]
        )
        assert (folder / file_name(LAST)).read_bytes() == sent
        assert (folder / expired).exists()
        assert _deadline(night, "acme", LAST).metadata["state"].value == "late"
    finally:
        (folder / expired).unlink()


def test_the_deadline_check_fails_for_a_missing_file_and_for_a_late_one(night):
    before = night["deadline_before"]
    assert not before.passed
    assert before.severity == dg.AssetCheckSeverity.ERROR
    for fact in ("client acme", "Completion", file_name(LAST), str(LAST), "not delivered"):
        assert fact in before.description
    after = night["deadline_after"]
    # The night's files of 26 October were delivered today, weeks after 05:00 on the 27th.
    late = after["acme"]
    assert not late.passed
    assert late.severity == dg.AssetCheckSeverity.ERROR
    assert late.metadata["state"].value == "late"
    assert late.metadata["expected_file"].value == file_name(LAST)
    delivered_at = dt.datetime.fromisoformat(late.metadata["delivered_at"].value)
    assert delivered_at.date() > LAST
    for fact in ("client acme", file_name(LAST), "late (due 2026-10-27 05:00 GMT)"):
        assert fact in late.description
    assert not after["umbrella"].passed
    assert after["umbrella"].metadata["state"].value == "missing"
    assert "client umbrella" in after["umbrella"].description


def test_the_files_run_checks_the_deadline_of_what_it_delivered(night):
    (evaluation,) = [
        e
        for e in _run(night, "acme", LAST).get_asset_check_evaluations()
        if e.check_name == "delivered_by_0500"
    ]
    assert evaluation.metadata["state"].value == "late"


def test_at_0500_only_the_client_days_without_a_file_get_a_check_run(night):
    assert night["missing_at_0500"] == ["hooli", "initech", "umbrella"]


def test_ods_resend_delivers_the_archived_files_byte_for_byte(night, capsys):
    folder = night["folders"]["acme"]
    archive = night["tmp"] / "archive" / "acme" / "completion"
    made_before = {day: (archive / f"{file_name(day)}.json").read_text() for day in DAYS}
    for day in DAYS:
        (folder / file_name(day)).unlink()
    first, last = DAYS[0].isoformat(), LAST.isoformat()
    before = {run.run_id for run in night["instance"].get_runs()}
    assert cli.main(["resend", "--client", "acme", "--from", first, "--to", last]) == 0
    output = capsys.readouterr().out
    # One delivery-only run a day in the instance's history, tagged as the sensor's runs are.
    runs = [r for r in night["instance"].get_runs() if r.run_id not in before]
    assert sorted(r.tags["dagster/partition/date"] for r in runs) == [d.isoformat() for d in DAYS]
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.asset_selection == {dg.AssetKey("completion_delivery")}
        assert run.tags[SFTP_HOST_TAG] == "127.0.0.1"
        assert run.tags[STARTED_BY_TAG] == "ods resend"
        assert run.tags["dagster/partition/client"] == "acme"
    for day in DAYS:
        again = (folder / file_name(day)).read_bytes()
        assert again == night["delivered"]["acme", day]
        assert again == (archive / file_name(day)).read_bytes()
        sha256 = hashlib.sha256(again).hexdigest()
        assert f"sent {file_name(day)} (completion, day {day})" in output
        assert sha256 in output
        # Not rebuilt: the archive's manifest (made_at, sha256) is untouched.
        assert (archive / f"{file_name(day)}.json").read_text() == made_before[day]
    assert "3 sent, 0 failed" in output


def test_a_damaged_archive_file_is_refused_and_nothing_is_sent(night, capsys):
    archived = night["tmp"] / "archive" / "acme" / "completion" / file_name(LAST)
    delivered = night["folders"]["acme"] / file_name(LAST)
    good, sent_before = archived.read_bytes(), delivered.read_bytes()
    damaged = bytearray(good)
    damaged[-3] ^= 0x20  # one letter's case in the last row: same size, other bytes
    archived.write_bytes(bytes(damaged))
    try:
        assert cli.main(["resend", "--client", "acme", "--from", LAST.isoformat()]) == 1
    finally:
        archived.write_bytes(good)
    output = capsys.readouterr().out
    assert f"FAILED {file_name(LAST)} (completion, day {LAST})" in output
    assert f"the archived file {archived} is not the file that was made" in output
    assert hashlib.sha256(bytes(damaged)).hexdigest() in output
    assert hashlib.sha256(good).hexdigest() in output
    assert f"ods rebuild --client acme --feed completion --from {LAST}" in output
    assert delivered.read_bytes() == sent_before


def test_a_second_delivery_of_a_client_day_waits_for_the_first_or_fails_naming_it(night):
    def deliver(wait_seconds: float) -> dg.ExecuteInProcessResult:
        return _deliver_last_again(
            night,
            "acme",
            run_config={"ops": {"client_files": {"config": {"lock_wait_seconds": wait_seconds}}}},
            raise_on_error=False,
        )

    with (
        psycopg.connect(night["pg"].conninfo(), autocommit=True) as holder,
        one_delivery_at_a_time(holder, "acme", LAST, holder="by the test", wait_seconds=5),
    ):
        refused = deliver(wait_seconds=1)
    failure = _user_failure(refused)
    assert f"client acme, day {LAST}: not delivered" in failure.description
    assert f"another delivery of client acme, day {LAST} is in progress" in failure.description
    assert f"held by 'ods delivery acme {LAST} by the test'" in failure.description
    assert not refused.asset_materializations_for_node("client_files")

    released_at: list[float] = []
    with psycopg.connect(night["pg"].conninfo(), autocommit=True) as holder:
        lock = one_delivery_at_a_time(holder, "acme", LAST, holder="by the test", wait_seconds=5)
        lock.__enter__()

        def release() -> None:
            time.sleep(2)
            released_at.append(time.monotonic())
            lock.__exit__(None, None, None)

        releaser = threading.Thread(target=release)
        releaser.start()
        waited = deliver(wait_seconds=60)
        finished_at = time.monotonic()
        releaser.join()
    assert waited.success
    assert finished_at > released_at[0]
    delivered = night["folders"]["acme"] / file_name(LAST)
    assert delivered.read_bytes() == night["delivered"]["acme", LAST]


def test_ods_resend_reports_a_failed_delivery_with_its_reason(night, capsys):
    before = {run.run_id for run in night["instance"].get_runs()}
    assert cli.main(["resend", "--client", "umbrella", "--from", LAST.isoformat()]) == 1
    output = capsys.readouterr().out
    (run,) = [r for r in night["instance"].get_runs() if r.run_id not in before]
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert f"FAILED {file_name(LAST)} (completion, day {LAST}) in run {run.run_id}: " in output
    assert "client umbrella, feed completion" in output
    assert "presented host key" in output


def test_archive_holds_one_file_per_day_for_every_client(night):
    for client_id in CLIENTS:
        folder = night["tmp"] / "archive" / client_id / "completion"
        assert sorted(p.name for p in folder.glob("*.csv")) == [file_name(d) for d in DAYS]


def test_ods_rebuild_rebuilds_the_day_from_current_data_and_delivers_it(night, capsys):
    # Last in this module: it changes globex's Moodle data and its file for the last day.
    globex = SITES["globex"]
    with psycopg.connect(night["pg"].conninfo(), autocommit=True) as conn:
        (learner, *_) = expected_completions(
            conn, globex.schema, globex.prefix, "Europe/London", LAST
        )
        conn.execute(
            f"update {globex.schema}.{globex.prefix}user set firstname = 'Renamed' where id = %s",
            [learner["user_id"]],
        )
        expected = expected_completions(conn, globex.schema, globex.prefix, "Europe/London", LAST)
    assert cli.main(["rebuild", "--client", "globex", "--from", LAST.isoformat()]) == 0
    output = capsys.readouterr().out
    assert f"sent {file_name(LAST)} (completion, day {LAST})" in output
    rows = parse_csv((night["folders"]["globex"] / file_name(LAST)).read_bytes())
    assert rows[1:] == [[row[c] for c in DEFAULT_COLUMNS] for row in expected]
    assert "Renamed" in {row[DEFAULT_COLUMNS.index("firstname")] for row in rows[1:]}
    # Only the rebuilt feed's mart: the others still match the files their clients were sent.
    (marts_run,) = night["instance"].get_runs(
        filters=dg.RunsFilter(job_name=DAILY_MARTS_JOB, tags={STARTED_BY_TAG: "ods rebuild"})
    )
    materialised = [
        entry.asset_materialization.asset_key
        for entry in night["instance"].all_logs(
            marts_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        if entry.asset_materialization is not None
    ]
    built = {key.path[-1] for key in materialised if key.path[0] == "marts"}
    assert built == {"course_completions"}
    assert marts_run.status == dg.DagsterRunStatus.SUCCESS
    assert marts_run.tags[FILES_FOLLOW_TAG] == "false"  # the command runs the files itself
    assert marts_run.tags[CLIENTS_TAG] == "globex"
    (files_run,) = night["instance"].get_runs(
        filters=dg.RunsFilter(job_name="client_files_job", tags={STARTED_BY_TAG: "ods rebuild"})
    )
    assert files_run.status == dg.DagsterRunStatus.SUCCESS
    assert files_run.tags[SFTP_HOST_TAG] == "127.0.0.1"
    assert files_run.tags["dagster/partition/client"] == "globex"
    assert files_run.tags["dagster/partition/date"] == LAST.isoformat()
