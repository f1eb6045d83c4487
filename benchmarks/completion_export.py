"""Benchmark: the Completion file of a day with one million rows — export, checks, SFTP upload.

Prints, for the busiest day's file, next to a bare `COPY … TO STDOUT` of the same query:
- the export alone (stream, CRLF, sha256, archive): wall time, peak memory, throughput ratio;
- the whole file step, export and its blocking checks (the file read back by the strict reader,
  `COUNT(*)` of the mart's partition), as the client_files step runs it: ratio target ≥ 0.75
  (issue 15);
and the SFTP upload time next to OpenSSH's `sftp` client on the same file (where `sftp` is
installed; `--no-upload` skips it).

    .venv/bin/python benchmarks/completion_export.py [--rows 1000000] [--runs 3] [--keep]

Each measurement runs in its own subprocess so that its peak RSS is its own, and the three kinds
take turns (bare, export, step, bare, …) so that a busy machine slows them alike; each reports
its wall time and its own CPU time. Everything is made under a temporary folder (or .ods/bench
with --keep, or --work DIR) and an embedded PostgreSQL of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ods_local.postgres import LocalPostgres

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = dt.date(2026, 11, 27)
SFTP_PORT = 2299
SERVER_START_SECONDS = 30.0

MEASURE = r"""
import json, os, resource, sys, time, datetime as dt
from pathlib import Path
import dagster as dg
import psycopg
from orchestration.clients.config import ClientConfig
from orchestration.defs.file_checks import evaluate_file_checks
from orchestration.export.feed_file import export_feed_file, export_query
from orchestration.feeds import COMPLETION
mode, conninfo, out, client_json, day = sys.argv[1:6]
client = ClientConfig.model_validate(json.loads(client_json))
day = dt.date.fromisoformat(day)
with psycopg.connect(conninfo) as conn:
    started, cpu = time.perf_counter(), time.process_time()
    if mode in ("export", "step"):
        made = export_feed_file(conn, feed=COMPLETION, client_id="bench", client=client, day=day,
                                archive_root=Path(out))
        size, path = made.bytes, str(made.path)
        if mode == "step":
            results = list(evaluate_file_checks(conn, COMPLETION, "bench", client, day, made,
                                                asset_key=dg.AssetKey("completion_file")))
            failed = [r.description for r in results if not r.passed]
            assert not failed, failed
    else:
        query, _ = export_query(COMPLETION, "bench", client, day)
        copy_sql = psycopg.sql.SQL("copy ({}) to stdout with (format csv, force_quote *)").format(query)
        with open(out, "wb") as handle, conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for chunk in copy:
                handle.write(chunk)
        size, path = Path(out).stat().st_size, out
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "bytes": size, "rss_mb": rss_mb, "path": path}))
"""

MODES = {
    "bare": "bare COPY TO STDOUT",
    "export": "export (ours)",
    "step": "export + checks",
}


def _client_settings(server_port: int, key: Path, host_key: str) -> dict:
    return {
        "name": "Benchmark",
        "moodle_schema": "moodle_bench",
        "feeds": {"completion": {}},
        "sftp": {
            "host": "127.0.0.1",
            "port": server_port,
            "username": "bench",
            "directory": "/",
            "private_key_path": str(key),
            "host_key": host_key,
        },
    }


def _measure(mode: str, conninfo: str, out: Path, client: dict, clients_file: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            mode,
            conninfo,
            str(out),
            json.dumps(client),
            DAY.isoformat(),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ODS_CLIENTS_FILE": str(clients_file)},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _compare(conninfo: str, work: Path, client: dict, runs: int, rows: int) -> Path:
    """Bare COPY, export, and export + checks, taking turns; prints the table, returns the file."""
    import yaml

    clients_file = work / "clients.yaml"
    clients_file.write_text(yaml.safe_dump({"clients": {"bench": client}}, sort_keys=False))
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(runs):
        for mode in MODES:
            out = work / "bare.csv" if mode == "bare" else work / f"archive-{mode}"
            results[mode].append(_measure(mode, conninfo, out, client, clients_file))
    best = {mode: min(done, key=lambda r: r["seconds"]) for mode, done in results.items()}
    size = best["export"]["bytes"]
    print(f"\nCompletion file of {DAY}: {rows:,} rows, {size / 1e6:.1f} MB")
    print(f"{'':22}{'best wall':>11}{'CPU':>8}{'peak RSS':>10}   (runs: wall / CPU s)")
    for mode, name in MODES.items():
        runs_text = ", ".join(f"{r['seconds']:.2f}/{r['cpu']:.2f}" for r in results[mode])
        peak = max(r["rss_mb"] for r in results[mode])
        print(
            f"{name:22}{best[mode]['seconds']:>9.2f} s{best[mode]['cpu']:>6.2f} s"
            f"{peak:>7.0f} MB   ({runs_text})"
        )
    for mode, target in (("export", 0.8), ("step", 0.75)):
        ratio = (best[mode]["bytes"] / best[mode]["seconds"]) / (
            best["bare"]["bytes"] / best["bare"]["seconds"]
        )
        print(f"throughput ratio {MODES[mode]} / bare COPY: {ratio:.2f}  (target >= {target})")
    return Path(best["export"]["path"])


def _build_site(pg: LocalPostgres, work: Path, rows: int) -> None:
    """A site whose busiest day has `rows` completions, and the mart built for that day."""
    import psycopg

    from orchestration.moodle.union_views import MoodleSource, create_union_views
    from synthetic_moodle import SiteSpec, generate_site

    started = time.perf_counter()
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        spec = SiteSpec(
            schema="moodle_bench",
            release="4.5",
            seed=7,
            learners=200,
            courses=10,
            start=DAY - dt.timedelta(days=1),
            days=2,
            peak_day=DAY,
            peak_completions=rows,
        )
        generate_site(conn, spec)
        create_union_views(conn, [MoodleSource(client_id="bench", moodle_schema="moodle_bench")])
    print(f"generated the site: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    env = {**os.environ, **pg.libpq_env()}
    dbt = Path(sys.executable).with_name("dbt")
    window = json.dumps(
        {"min_date": DAY.isoformat(), "max_date": (DAY + dt.timedelta(days=1)).isoformat()}
    )
    subprocess.run(
        [
            str(dbt),
            "build",
            "--quiet",
            "--select",
            "+course_completions",
            "--project-dir",
            "dbt_project",
            "--profiles-dir",
            "dbt_project",
            "--target-path",
            str(work / "dbt-target"),
            "--vars",
            window,
        ],
        check=True,
        cwd=ROOT,
        env=env,
    )
    print(f"dbt build of the day: {time.perf_counter() - started:.1f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="completions on the busiest day"
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument("--keep", action="store_true", help="work in .ods/bench and keep it")
    parser.add_argument(
        "--work", type=Path, help="work (and keep everything) in this folder instead of .ods/bench"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: reuse the site and mart of a kept run"
    )
    parser.add_argument(
        "--no-upload", dest="upload", action="store_false", help="skip the SFTP upload timing"
    )
    args = parser.parse_args(argv)
    if args.work is not None:
        args.keep = True
    return args


def work_folder(args: argparse.Namespace) -> Path:
    """--work, else .ods/bench with --keep, else a new temporary folder."""
    work: Path = args.work or (
        ROOT / ".ods" / "bench" if args.keep else Path(tempfile.mkdtemp(prefix="ods-bench-"))
    )
    work.mkdir(parents=True, exist_ok=True)
    return work


def prepare_warehouse(args: argparse.Namespace, work: Path) -> LocalPostgres:
    """The benchmark's own embedded PostgreSQL, with the site and the day's mart (built, or kept
    from an earlier run with --reuse)."""
    import psycopg

    from ods_local.postgres import start_postgres

    pg = start_postgres(work / "pgdata", cleanup_mode=None if args.keep else "stop")
    print(f"embedded PostgreSQL in {work / 'pgdata'}")
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        kept = conn.execute("select to_regclass('marts.course_completions')").fetchone()
    if args.reuse and kept != (None,):
        print("reusing the kept site and mart")
    else:
        _build_site(pg, work, args.rows)
    return pg


@dataclass(frozen=True)
class SftpAccount:
    """The local SFTP server's folders and keys, and the one account uploaded to."""

    folder: Path
    key: Path
    host_key: str

    @property
    def root(self) -> Path:
        return self.folder / "root"


def make_sftp_account(folder: Path) -> SftpAccount:
    from orchestration.delivery.keys import generate_key_pair

    key = folder / "bench_key"
    public = generate_key_pair(key, "bench")
    (folder / "users").mkdir(parents=True, exist_ok=True)
    (folder / "users" / "bench.pub").write_text(public + "\n")
    host_public = generate_key_pair(folder / "host_key", "bench-host")
    return SftpAccount(folder=folder, key=key, host_key=host_public)


@contextmanager
def local_sftp_server(account: SftpAccount) -> Iterator[None]:
    """The local asyncssh server in a process of its own (so that it does not share the GIL with
    the paramiko client being timed), from when it greets on SFTP_PORT until the block ends."""
    log_path = account.folder / "server.log"
    with log_path.open("wb") as server_log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ods_local.sftp_server",
                "--root",
                str(account.root),
                "--users-dir",
                str(account.folder / "users"),
                "--host-key",
                str(account.folder / "host_key"),
                "--port",
                str(SFTP_PORT),
            ],
            cwd=ROOT,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_ssh_greeting(server, log_path)
            yield
        finally:
            server.terminate()
            server.wait()


def _wait_for_ssh_greeting(server: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the server sends its SSH version line on SFTP_PORT: it listens and is ready for a
    login. Fails at once if it exits (e.g. the port is taken), with its log."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        if server.poll() is not None:
            raise RuntimeError(
                f"the SFTP server exited (status {server.returncode}) before it listened on "
                f"127.0.0.1:{SFTP_PORT}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with socket.create_connection(("127.0.0.1", SFTP_PORT), timeout=1.0) as sock:
                if sock.recv(4) == b"SSH-":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the SFTP server did not greet on 127.0.0.1:{SFTP_PORT} within "
                f"{SERVER_START_SECONDS:.0f} s; its log: {log_path}"
            )
        time.sleep(0.05)  # between two connection attempts, not a wait for readiness


def time_paramiko_uploads(account: SftpAccount, path: Path, runs: int) -> list[float]:
    """Our delivery (temporary name, read back, rename), `runs` times: seconds of each; to the
    target the files step would make of the benchmark's client entry."""
    from orchestration.clients.config import ClientConfig
    from orchestration.defs.feed_delivery import sftp_target
    from orchestration.delivery.sftp import deliver_file

    client = ClientConfig.model_validate(_client_settings(SFTP_PORT, account.key, account.host_key))
    target = sftp_target("bench", client)
    return [deliver_file(target, path, path.name).seconds for _ in range(runs)]


def time_openssh_uploads(account: SftpAccount, work: Path, path: Path, runs: int) -> list[float]:
    """OpenSSH's `sftp -b` doing the same put + rename, `runs` times: seconds of each."""
    batch = work / "sftp.batch"
    batch.write_text(f"put {path} .openssh.part\nrename .openssh.part openssh.csv\n")
    known = work / "known_hosts"
    known.write_text(f"[127.0.0.1]:{SFTP_PORT} {account.host_key}\n")
    walls: list[float] = []
    for _ in range(runs):
        (account.root / "bench" / "openssh.csv").unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run(
            [
                "sftp",
                "-q",
                "-b",
                str(batch),
                "-P",
                str(SFTP_PORT),
                "-i",
                str(account.key),
                "-o",
                f"UserKnownHostsFile={known}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "bench@127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        walls.append(time.perf_counter() - started)
    return walls


def report_uploads(account: SftpAccount, work: Path, path: Path, runs: int) -> None:
    mb = path.stat().st_size / 1e6
    with local_sftp_server(account):
        uploads = time_paramiko_uploads(account, path, runs)
        print(f"\nSFTP upload of {mb:.1f} MB to the local asyncssh server:")
        print(
            f"  paramiko (ours, temp + rename): best {min(uploads):.2f} s = "
            f"{mb / min(uploads):.0f} MB/s"
        )
        if not shutil.which("sftp"):
            print("  OpenSSH sftp: not installed here, no comparison")
            return
        walls = time_openssh_uploads(account, work, path, runs)
        print(
            f"  OpenSSH sftp -b (put + rename):  best {min(walls):.2f} s = "
            f"{mb / min(walls):.0f} MB/s"
        )


def main(argv: list[str] | None = None) -> int:
    from ods_local.postgres import stop_postgres

    args = parse_args(argv)
    work = work_folder(args)
    try:
        pg = prepare_warehouse(args, work)
        account = make_sftp_account(work / "sftp")
        client = _client_settings(SFTP_PORT, account.key, account.host_key)
        path = _compare(pg.conninfo(), work, client, args.runs, args.rows)
        if args.upload:
            report_uploads(account, work, path, args.runs)
    finally:
        if not args.keep:
            stop_postgres(work / "pgdata")
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
