"""dbt started from a process that has already imported it: `ods-dbt`, the `dbt` dagster-dbt runs.

Why: every dbt step starts a `dbt` process, and before dbt reads a file it spends about 3 of its
4-5 CPU-seconds (2-core machine of the README) importing itself (click, mashumaro's serialisers,
the adapters, Jinja). A marts run has two dbt steps, a test suite dozens. Here a server process
imports dbt once and forks a child per invocation; the child starts at dbt's command line with
the imports done (about 2 CPU-seconds for a build's parse instead of 5).

How a step runs dbt through it:
- The process that runs dbt steps (a run worker, `ods demo`, a test) starts the server on its first
  dbt step (`server_address()`): `python -m orchestration.dbt_server`, listening on a unix socket
  in a private temporary folder (mode 0700). The server ends with that process: it holds one end
  of a pipe whose other end only the starting process (and its forks) hold, and exits, killing any
  dbt still running, when that pipe closes. Nothing is left behind after the process ends.
- dagster-dbt starts `ods-dbt <args>` (the resource's `dbt_executable`) with the server's address
  in `ODS_DBT_SERVER`. `ods-dbt` imports nothing but the standard library; it passes its argv,
  environment, working folder, umask and its stdin/stdout/stderr (the descriptors themselves) to
  the server, which forks a child that becomes `dbt <args>` on them. dagster-dbt reads dbt's
  events from the same pipe as before.
- `ods-dbt` ends as dbt ends: with its exit code, or killed by the same signal. SIGINT, SIGTERM
  and SIGHUP sent to it are passed on to dbt (dagster-dbt stops dbt with SIGINT). If `ods-dbt`
  itself is killed (SIGKILL, its process group killed with a run worker), the server kills its dbt.
- Without `ODS_DBT_SERVER`, or when the server cannot be reached, `ods-dbt` runs the venv's `dbt`
  itself (exec): the same result at the old cost. Setting `ODS_DBT_FORKED=0` makes the resource
  start no server, for whoever wants each dbt step in a fresh interpreter.

What a forked dbt does not get that a fresh one would: interpreter settings read at start-up
(PYTHONHASHSEED, PYTHONIOENCODING, `-X` options) are the server's, and modules dbt imports at
start-up are not re-read from disk (an upgrade of dbt in the venv takes effect with the next
process that starts a server: the next run).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from orchestration.paths import venv_bin  # the standard library only: ods-dbt starts fast

SERVER_ENV = "ODS_DBT_SERVER"
FORKED_ENV = "ODS_DBT_FORKED"
_REQUEST_LIMIT = 4 << 20  # argv + environment, as JSON
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What the server imports before it serves: dbt's command line and the modules every build
# imports later (adapter, parser, tasks); the rest is imported by each child as dbt needs it.
PRELOAD = (
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "dbt.parser.manifest",
    "dbt.task.build",
    "dbt.task.runnable",
)


# --- the client: ods-dbt ---------------------------------------------------------------------


def client_main() -> None:
    """`ods-dbt <dbt args>`: dbt through the server in `ODS_DBT_SERVER`, else the venv's dbt."""
    address = os.environ.get(SERVER_ENV)
    if address:
        try:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(address)
        except OSError:
            connection.close()  # the server is gone: run dbt here
        else:
            _exit_as(_run_through(connection, sys.argv[1:]))
    dbt = str(venv_bin("dbt"))
    os.execv(dbt, [dbt, *sys.argv[1:]])


def _run_through(connection: socket.socket, argv: list[str]) -> str:
    """Ask the server for `dbt <argv>` on this process's descriptors; its status line."""
    umask = os.umask(0)
    os.umask(umask)
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask}
    payload = json.dumps(request).encode() + b"\n"
    socket.send_fds(connection, [payload], [0, 1, 2])
    reader = connection.makefile("rb")
    started = reader.readline().split()  # b"pid <n>"
    if len(started) != 2 or started[0] != b"pid":
        return "exit 70 the dbt server did not start dbt"
    child = int(started[1])
    for number in _FORWARDED:
        signal.signal(number, lambda received, _frame: _pass_on(child, received))
    status = reader.readline().decode().strip()
    return status or "exit 70 the dbt server went away while dbt ran"


def _pass_on(child: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile
        os.kill(child, number)


def _exit_as(status: str) -> None:
    """Leave as dbt left: `exit <code>`, or `signal <n>` (killed by it)."""
    kind, value, *reason = status.split(" ", 2)
    if reason:
        print(f"ods-dbt: {reason[0]}", file=sys.stderr)
    if kind == "signal":
        number = int(value)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(int(value))


# --- the server --------------------------------------------------------------------------------


def serve(address: str, alive_fd: int) -> None:
    """Preload dbt, listen on `address`, fork a dbt per request; exit when `alive_fd` closes."""
    for module in PRELOAD:
        __import__(module)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C in a terminal is for the dbt children
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nobody reads the starting process's pipe after this line
    os.close(devnull)
    clients: dict[int, socket.socket] = {}  # dbt child pid -> its ods-dbt's connection
    killed: set[int] = set()  # children killed because their ods-dbt died, not yet reaped
    try:
        while True:
            waiting = [c for child, c in clients.items() if child not in killed]
            readable, _, _ = select.select([listener, alive_fd, wake_read, *waiting], [], [])
            if alive_fd in readable:
                return  # the process that started the server has ended
            if wake_read in readable:
                os.read(wake_read, 512)
            _reap(clients)
            killed &= clients.keys()
            for child, connection in list(clients.items()):
                if connection in readable and not connection.recv(1):
                    _pass_on(child, signal.SIGKILL)  # ods-dbt is gone (killed): so is its dbt
                    killed.add(child)
            if listener in readable:
                connection, _ = listener.accept()
                child = _start(connection, [listener, *clients.values()], alive_fd)
                if child:
                    clients[child] = connection
    finally:
        for child, connection in clients.items():
            _pass_on(child, signal.SIGKILL)
            connection.close()


def _reap(clients: dict[int, socket.socket]) -> None:
    """Tell each ods-dbt whose dbt has ended how it ended."""
    while clients:
        try:
            child, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if child == 0:
            return
        connection = clients.pop(child, None)
        if connection is None:
            continue
        if os.WIFSIGNALED(status):
            line = f"signal {os.WTERMSIG(status)}\n"
        else:
            line = f"exit {os.waitstatus_to_exitcode(status)}\n"
        with contextlib.suppress(OSError):  # ods-dbt is gone
            connection.sendall(line.encode())
        connection.close()


def _start(connection: socket.socket, others: Iterable[socket.socket], alive_fd: int) -> int:
    """Fork the dbt a request asks for; its pid, or 0 for a request that could not be read.
    `others`: the server's sockets (listener, other callers' connections), none of the child's."""
    try:
        payload, fds, _, _ = socket.recv_fds(connection, _REQUEST_LIMIT, 3)
        while not payload.endswith(b"\n"):
            more = connection.recv(_REQUEST_LIMIT)
            if not more:
                raise ValueError("the request ended early")
            payload += more
        request = json.loads(payload)
        if len(fds) != 3:
            raise ValueError(f"3 descriptors expected, {len(fds)} received")
    except (OSError, ValueError) as error:
        connection.close()
        print(f"dbt server: a request was refused: {error}", file=sys.stderr, flush=True)
        return 0
    child = os.fork()
    if child == 0:  # the dbt: never returns
        for held in (*others, connection):
            held.close()
        os.close(alive_fd)
        _become_dbt(request, fds)
    for fd in fds:
        os.close(fd)
    connection.sendall(f"pid {child}\n".encode())
    return child


def _become_dbt(request: dict, fds: list[int]) -> None:
    """In the forked child: take the client's descriptors, folder and environment, run dbt's
    command line as the `dbt` script does, and exit with its code."""
    import atexit

    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # The process's own stdio, as a fresh interpreter opens it on these descriptors.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["dbt", *request["argv"]]
        from dbt.cli.main import cli

        try:
            code = cli.main(args=request["argv"], prog_name="dbt")
        except SystemExit as leaving:
            code = leaving.code if isinstance(leaving.code, int) else (0 if not leaving.code else 1)
        except KeyboardInterrupt:  # as Python leaves on an uncaught ^C: killed by SIGINT
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        # What leaving the interpreter would run (multiprocessing's finalisers, logging's flush):
        # the handlers of the modules dbt imported, here or preloaded by the server.
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: nothing more to say
                stream.flush()
        os._exit(code if isinstance(code, int) else 1)


# --- starting the server from the process that runs dbt steps ----------------------------------

_lock = threading.Lock()
# pid of the process that started it -> (address, server process, write end of the alive pipe)
_server: dict[int, tuple[str, subprocess.Popen[bytes], int]] = {}


def forked_dbt_enabled() -> bool:
    return os.environ.get(FORKED_ENV, "1") != "0"


def running_server() -> subprocess.Popen[bytes] | None:
    """The dbt server this process started, while it runs (None before the first dbt step)."""
    started = _server.get(os.getpid())
    return started[1] if started and started[1].poll() is None else None


def server_address() -> str:
    """The address of this process's dbt server, started on first use (the preload takes about
    3 s, once); the server ends with this process."""
    with _lock:
        if running_server():
            return _server[os.getpid()][0]
        folder = tempfile.mkdtemp(prefix="ods-dbt-")  # mode 0700: this user's only
        address = os.path.join(folder, "server.sock")
        alive_read, alive_write = os.pipe()
        server = subprocess.Popen(
            [sys.executable, "-m", "orchestration.dbt_server", address, str(alive_read)],
            pass_fds=[alive_read],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,  # a ^C to this process's group is not the server's
        )
        os.close(alive_read)  # alive_write stays open for as long as this process (and its forks)
        ready = server.stdout.readline() if server.stdout else b""
        if ready.strip() != b"ready":
            server.kill()
            raise RuntimeError(
                f"the dbt server did not start (exit {server.wait()}); "
                f"set {FORKED_ENV}=0 to run each dbt step in a fresh process"
            )
        _server[os.getpid()] = (address, server, alive_write)
        return address


if __name__ == "__main__":
    socket_address, alive = sys.argv[1], int(sys.argv[2])
    try:
        serve(socket_address, alive)
    finally:
        Path(socket_address).unlink(missing_ok=True)
        Path(socket_address).parent.rmdir()
