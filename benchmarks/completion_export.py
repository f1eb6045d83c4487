"""Benchmark: the Completion file of a day with one million rows — export and SFTP upload.

Prints, for the busiest day's file: the export's wall time and peak memory next to a bare
`COPY … TO STDOUT` of the same query, their throughput ratio (target ≥ 0.8), and the SFTP upload
time next to OpenSSH's `sftp` client on the same file (where `sftp` is installed).

    .venv/bin/python benchmarks/completion_export.py [--rows 1000000] [--keep]

Each measurement runs in its own subprocess so that its peak RSS is its own. Everything is made
under a temporary folder (or .ods/bench with --keep) and an embedded PostgreSQL of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = dt.date(2026, 11, 27)

MEASURE = r"""
import json, resource, sys, time, datetime as dt
from pathlib import Path
import psycopg
from orchestration.clients.config import ClientConfig
from orchestration.export.feed_file import export_feed_file, export_query
from orchestration.feeds import COMPLETION
mode, conninfo, out, client_json, day = sys.argv[1:6]
client = ClientConfig.model_validate(json.loads(client_json))
day = dt.date.fromisoformat(day)
with psycopg.connect(conninfo) as conn:
    started = time.perf_counter()
    if mode == "export":
        made = export_feed_file(conn, feed=COMPLETION, client_id="bench", client=client, day=day,
                                archive_root=Path(out))
        size, path = made.bytes, str(made.path)
    else:
        query, _ = export_query(COMPLETION, "bench", client, day)
        copy_sql = psycopg.sql.SQL("copy ({}) to stdout with (format csv, force_quote *)").format(query)
        with open(out, "wb") as handle, conn.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for chunk in copy:
                handle.write(chunk)
        size, path = Path(out).stat().st_size, out
    seconds = time.perf_counter() - started
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "bytes": size, "rss_mb": rss_mb, "path": path}))
"""


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


def _measure(mode: str, conninfo: str, out: Path, client: dict) -> dict:
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
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _build_site(pg, work: Path, rows: int) -> None:
    """A site whose busiest day has `rows` completions, and the mart built for that day."""
    import psycopg

    from orchestration.moodle.synthetic import SiteSpec, generate_site
    from orchestration.moodle.union_views import MoodleSource, create_union_views

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="completions on the busiest day"
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument("--keep", action="store_true", help="work in .ods/bench and keep it")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: reuse the site and mart of a kept run"
    )
    args = parser.parse_args()

    import psycopg

    from orchestration.delivery.keys import generate_key_pair
    from orchestration.delivery.sftp import SftpTarget, deliver_file
    from orchestration.local.postgres import start_postgres, stop_postgres

    work = ROOT / ".ods" / "bench" if args.keep else Path(tempfile.mkdtemp(prefix="ods-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pg = start_postgres(work / "pgdata", cleanup_mode=None if args.keep else "stop")
    print(f"embedded PostgreSQL in {work / 'pgdata'}")

    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        kept = conn.execute("select to_regclass('marts.course_completions')").fetchone()
    if args.reuse and kept != (None,):
        print("reusing the kept site and mart")
    else:
        _build_site(pg, work, args.rows)

    server_dir = work / "sftp"
    key = server_dir / "bench_key"
    public = generate_key_pair(key, "bench")
    (server_dir / "users").mkdir(parents=True, exist_ok=True)
    (server_dir / "users" / "bench.pub").write_text(public + "\n")
    host_pub = generate_key_pair(server_dir / "host_key", "bench-host")
    client = _client_settings(2299, key, host_pub)

    exports = [
        _measure("export", pg.conninfo(), work / "archive", client) for _ in range(args.runs)
    ]
    bares = [_measure("bare", pg.conninfo(), work / "bare.csv", client) for _ in range(args.runs)]
    export, bare = min(exports, key=lambda r: r["seconds"]), min(bares, key=lambda r: r["seconds"])
    ratio = (export["bytes"] / export["seconds"]) / (bare["bytes"] / bare["seconds"])
    print(f"\nCompletion file of {DAY}: {args.rows:,} rows, {export['bytes'] / 1e6:.1f} MB")
    print(f"{'':24}{'best wall':>12}{'peak RSS':>12}   (runs: wall)")
    for name, best, runs in (
        ("export (ours)", export, exports),
        ("bare COPY TO STDOUT", bare, bares),
    ):
        walls = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(
            f"{name:24}{best['seconds']:>10.2f} s{max(r['rss_mb'] for r in runs):>9.0f} MB   ({walls})"
        )
    print(f"throughput ratio export / bare COPY: {ratio:.2f}  (target >= 0.8)")

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestration.local.sftp_server",
            "--root",
            str(server_dir / "root"),
            "--users-dir",
            str(server_dir / "users"),
            "--host-key",
            str(server_dir / "host_key"),
            "--port",
            "2299",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        target = SftpTarget(
            client_id="bench",
            host="127.0.0.1",
            port=2299,
            username="bench",
            directory="/",
            host_key=host_pub,
            private_key=key.read_text(),
        )
        path = Path(export["path"])
        uploads = [deliver_file(target, path, path.name).seconds for _ in range(args.runs)]
        mb = path.stat().st_size / 1e6
        print(f"\nSFTP upload of {mb:.1f} MB to the local asyncssh server:")
        print(
            f"  paramiko (ours, temp + rename): best {min(uploads):.2f} s = {mb / min(uploads):.0f} MB/s"
        )
        if shutil.which("sftp"):
            batch = work / "sftp.batch"
            batch.write_text(f"put {path} .openssh.part\nrename .openssh.part openssh.csv\n")
            known = work / "known_hosts"
            known.write_text(f"[127.0.0.1]:2299 {host_pub}\n")
            sftp_walls: list[float] = []
            for _ in range(args.runs):
                subprocess.run(
                    ["rm", "-f", str(server_dir / "root" / "bench" / "openssh.csv")], check=True
                )
                started = time.perf_counter()
                subprocess.run(
                    [
                        "sftp",
                        "-q",
                        "-b",
                        str(batch),
                        "-P",
                        "2299",
                        "-i",
                        str(key),
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
                sftp_walls.append(time.perf_counter() - started)
            print(
                f"  OpenSSH sftp -b (put + rename):  best {min(sftp_walls):.2f} s = {mb / min(sftp_walls):.0f} MB/s"
            )
        else:
            print("  OpenSSH sftp: not installed here, no comparison")
    finally:
        server.terminate()
        server.wait()
    if not args.keep:
        stop_postgres(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
