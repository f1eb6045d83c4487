"""A throwaway OpenSSH sshd on 127.0.0.1 for interoperability tests: chrooted, SFTP only, key only.

sshd is strict about where its files live (stack-notes.md §3(b)): the chroot and the authorized
keys must sit on paths whose every component is root-owned and not group- or world-writable, which
rules out pytest's `tmp_path` under /tmp. So each server gets a fresh root-owned folder under /srv
(or /var/lib), removed again by `stop()`. The system's own sshd, its config and port 22 are never
touched: the server reads only its own config (`-f`), host key and port.

What stays behind on purpose: the locked-down system user `ods-sftp-test` (no home, no shell, no
password) and `/run/sshd`, sshd's standard privilege separation folder, which a concurrently
running test session may be using.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestration.delivery.keys import generate_key_pair

SSHD = Path("/usr/sbin/sshd")
SFTP_USER = "ods-sftp-test"
PARENT_CANDIDATES = (Path("/srv"), Path("/var/lib"))
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0


def skip_reason() -> str | None:
    """Why the sshd tests cannot run here, or None when they can."""
    if not SSHD.exists():
        return f"OpenSSH's sshd is not installed ({SSHD}); .ci/run installs openssh-server"
    if os.geteuid() != 0:
        return "sshd must run as root to chroot the SFTP user and to create that user"
    if shutil.which("useradd") is None or shutil.which("usermod") is None:
        return "useradd/usermod are needed to create the SFTP test user"
    if _parent_folder() is None:
        return f"none of {', '.join(map(str, PARENT_CANDIDATES))} is a root-owned, closed folder"
    return None


@dataclass
class OpenSshServer:
    """A running sshd; `upload` is the SFTP user's writable folder, `/upload` as the user sees it."""

    base: Path
    port: int
    host_key_line: str
    username: str
    uid: int
    upload: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def log(self) -> str:
        """sshd's own log (`-e`): the only place that says why a session was refused."""
        return self.log_path.read_text(errors="replace")

    def user_folder(self, name: str) -> Path:
        """A new folder `/upload/<name>` owned by the SFTP user."""
        folder = self.upload / name
        folder.mkdir(mode=0o755)
        os.chown(folder, self.uid, -1)
        return folder

    def stop(self) -> None:
        """Stop the listener and any session process it started, then remove its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_SECONDS)
        # Each connection runs in a child that calls setsid() and re-executes sshd with our
        # config path, so it is not in our process group; find those by that unique path.
        for pid in _pids_running_with(str(self.config_path)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        shutil.rmtree(self.base, ignore_errors=True)


def start_sshd(client_public_key: str, log_dir: Path) -> OpenSshServer:
    """Start sshd on a free port, letting only `SFTP_USER` in, with `client_public_key` only."""
    parent = _parent_folder()
    if parent is None:
        raise RuntimeError("no root-owned, closed folder to put the sshd test folder in")
    uid = _ensure_sftp_user()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # "Missing privilege separation directory"
    base = _root_folder(parent / f"ods-sshd-test-{secrets.token_hex(4)}")
    try:
        etc = _root_folder(base / "etc", mode=0o700)
        keys = _root_folder(base / "keys")
        (keys / SFTP_USER).write_text(client_public_key.strip() + "\n")
        (keys / SFTP_USER).chmod(0o644)
        chroot = _root_folder(base / "chroot")
        upload = _root_folder(chroot / SFTP_USER) / "upload"
        upload.mkdir(mode=0o755)
        os.chown(upload, uid, -1)
        host_key = etc / "ssh_host_ed25519_key"
        host_key_line = generate_key_pair(host_key, comment="ods-sshd-test")
        return _listen(base, etc, keys, chroot, host_key, host_key_line, uid, upload, log_dir)
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _listen(
    base: Path,
    etc: Path,
    keys: Path,
    chroot: Path,
    host_key: Path,
    host_key_line: str,
    uid: int,
    upload: Path,
    log_dir: Path,
) -> OpenSshServer:
    """Start sshd, retrying on another port if the free one was taken in the meantime."""
    for attempt in range(3):
        port = _free_port()
        config = etc / "sshd_config"
        config.write_text(_config(port, host_key, etc / "sshd.pid", keys, chroot))
        checked = subprocess.run(
            [str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise RuntimeError(f"sshd -t rejected the test config: {checked.stderr.strip()}")
        log_path = log_dir / f"sshd-{port}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        server = OpenSshServer(
            base, port, host_key_line, SFTP_USER, uid, upload, config, log_path, process
        )
        if _wait_until_listening(server):
            return server
        server.process.kill()
        server.process.wait()
        if "Address already in use" not in server.log() or attempt == 2:
            raise RuntimeError(f"sshd did not start; its log:\n{server.log()}")
    raise AssertionError("unreachable")


def _config(port: int, host_key: Path, pid_file: Path, keys: Path, chroot: Path) -> str:
    # UsePAM no keeps PAM (and whatever it logs or mounts) out of a test server; the user's
    # password field is therefore "*", not useradd's "!" (stack-notes §3(b), pitfall 2).
    return f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {keys}/%u
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
AllowUsers {SFTP_USER}
LogLevel VERBOSE
UseDNS no
LoginGraceTime 15
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTTY no
Subsystem sftp internal-sftp
Match User {SFTP_USER}
    ChrootDirectory {chroot}/%u
    ForceCommand internal-sftp
"""


def _ensure_sftp_user() -> int:
    try:
        pwd.getpwnam(SFTP_USER)
    except KeyError:
        created = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SFTP_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode not in (0, 9):  # 9: created meanwhile by another test session
            raise RuntimeError(f"useradd {SFTP_USER} failed: {created.stderr.strip()}") from None
    # useradd leaves the password field "!" (locked), which sshd with UsePAM no refuses even for
    # key logins; "*" means "no password can match" without locking the account.
    subprocess.run(["usermod", "-p", "*", SFTP_USER], check=True, capture_output=True)
    return pwd.getpwnam(SFTP_USER).pw_uid


def _parent_folder() -> Path | None:
    """The first candidate whose every component is root-owned and closed to group and others,
    as sshd's StrictModes and ChrootDirectory demand."""
    for candidate in PARENT_CANDIDATES:
        if candidate.is_dir() and all(_closed(path) for path in (candidate, *candidate.parents)):
            return candidate
    return None


def _closed(path: Path) -> bool:
    info = path.stat()
    return info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _root_folder(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(mode=mode)
    path.chmod(mode)  # mkdir's mode is filtered by the umask
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(server: OpenSshServer) -> bool:
    """Wait for sshd's own "Server listening" line; a probe connection would itself be logged
    as a failed session."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if f"Server listening on 127.0.0.1 port {server.port}" in server.log():
            return True
        if server.process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def _pids_running_with(argument: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argument.encode() in arguments:
            pids.append(int(entry.name))
    return pids
