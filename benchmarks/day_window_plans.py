"""Benchmark: EXPLAIN ANALYZE of the day-window reads on a large generated site.

Generates one site (default: enough learners for about 5 million SCORM tracking rows), runs the
union-view step (views + the replicas' day-window indexes), builds the marts for the days before
the measured day with dbt, then prints for each feed mart the plan and time of the measured day's
select (the SQL dbt compiled for it), and which indexes the plan used.

    .venv/bin/python benchmarks/day_window_plans.py [--learners 35000] [--release 4.5] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = dt.date(2026, 11, 27)
MARTS = ["scorm_sco_attempts", "quiz_attempts", "f2f_signup_status_changes", "course_completions"]


def _dbt(args: list[str], env: dict[str, str], target: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run(
        [
            str(dbt),
            *args,
            "--quiet",
            "--project-dir",
            "dbt_project",
            "--profiles-dir",
            "dbt_project",
            "--target-path",
            str(target),
        ],
        check=True,
        cwd=ROOT,
        env=env,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=35_000)
    parser.add_argument("--release", default="4.5", help="Moodle release of the site")
    parser.add_argument("--keep", action="store_true", help="work in .ods/plans and keep it")
    parser.add_argument("--verbose", action="store_true", help="print the whole plans")
    args = parser.parse_args()

    import psycopg

    from orchestration.local.postgres import start_postgres, stop_postgres
    from orchestration.moodle.replica_indexes import create_replica_indexes
    from orchestration.moodle.synthetic import SiteSpec, generate_site
    from orchestration.moodle.union_views import MoodleSource, create_union_views

    work = ROOT / ".ods" / "plans" if args.keep else Path(tempfile.mkdtemp(prefix="ods-plans-"))
    work.mkdir(parents=True, exist_ok=True)
    pg = start_postgres(work / "pgdata", cleanup_mode=None if args.keep else "stop")
    try:
        env = {**os.environ, **pg.libpq_env()}
        source = MoodleSource(client_id="big", moodle_schema="moodle_big")
        started = time.perf_counter()
        with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
            spec = SiteSpec(
                schema="moodle_big",
                release=args.release,
                learners=args.learners,
                start=DAY - dt.timedelta(days=6),
                days=7,
            )
            summary = generate_site(conn, spec)
            create_union_views(conn, [source])
            create_replica_indexes(conn, [(source.moodle_schema, source.table_prefix)])
            conn.execute("analyze")
        tracking = sum(
            summary.row_counts.get(t, 0) for t in ("scorm_scoes_track", "scorm_scoes_value")
        )
        print(
            f"site: Moodle {args.release}, {args.learners:,} learners, {tracking:,} SCORM tracking "
            f"rows, {summary.row_counts.get('quiz_attempts', 0):,} quiz attempts, "
            f"{summary.row_counts.get('facetoface_signups_status', 0):,} F2F status rows "
            f"({time.perf_counter() - started:.0f} s)"
        )

        history = {
            "min_date": (DAY - dt.timedelta(days=6)).isoformat(),
            "max_date": DAY.isoformat(),
            "record_days_built": True,
        }
        started = time.perf_counter()
        _dbt(
            ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(history)],
            env,
            work / "target",
        )
        print(f"dbt build of the 6 days before {DAY}: {time.perf_counter() - started:.0f} s")
        day = {
            "min_date": DAY.isoformat(),
            "max_date": (DAY + dt.timedelta(days=1)).isoformat(),
            "record_days_built": True,
        }
        _dbt(["compile", "--select", "marts", "--vars", json.dumps(day)], env, work / "target")

        with psycopg.connect(pg.conninfo()) as conn:
            for mart in MARTS:
                path = next((work / "target" / "compiled").rglob(f"{mart}.sql"))
                with conn.transaction():
                    conn.execute("set local enable_nestloop = off")
                    if mart == "scorm_sco_attempts":
                        conn.execute("set local enable_mergejoin = off")
                    plan = [
                        r[0]
                        for r in conn.execute("explain (analyze, buffers off) " + path.read_text())
                    ]
                indexes = sorted(
                    set(
                        re.findall(
                            r"(?:Index|Bitmap Index) Scan (?:Backward )?(?:using|on) (\S+)",
                            "\n".join(plan),
                        )
                    )
                )
                seq = sorted(set(re.findall(r"Seq Scan on (\S+)", "\n".join(plan))))
                print(f"\n=== {mart}: one day's select, {plan[-1].strip()}")
                print(f"indexes used: {', '.join(indexes) or 'none'}")
                print(f"sequential scans: {', '.join(seq) or 'none'}")
                if args.verbose:
                    print("\n".join(plan))
    finally:
        if not args.keep:
            stop_postgres(work / "pgdata")
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
