"""The SSH connection to a client's server: who it is (the pinned host key), how we log in, and the
SFTP session over it.

Only a server holding the pinned host key may receive a file: paramiko's RejectPolicy with the
pinned key as the only known host, no known_hosts file, no agent, no key looked for on disk. Keys
and passwords are parsed here and never reach a message or a log.
"""

from __future__ import annotations

import io
import posixpath
from dataclasses import dataclass, field
from typing import Any

import paramiko
from paramiko.sftp import CMD_INIT, CMD_VERSION
from paramiko.ssh_exception import IncompatiblePeer

from orchestration.delivery.keys import parse_public_key_line
from orchestration.delivery.sftp_errors import failure, host_key_mismatch, login_refused

CONNECT_TIMEOUT_SECONDS = 30.0
IO_TIMEOUT_SECONDS = 120.0

# Measured uploading 149 MB over 127.0.0.1 (stack-notes.md §5): paramiko's defaults (aes128-ctr,
# 2 MiB window) gave 62-84 MB/s, a 64 MiB window with aes128-gcm 81-102 MB/s. GCM is only moved to
# the front, so servers without it still negotiate the ctr ciphers.
WINDOW_BYTES = 64 << 20
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class SftpTarget:
    """Where one client's files go, and how to log in. Secrets are key text, never shown in repr."""

    client_id: str
    host: str
    port: int
    username: str
    directory: str
    host_key: str
    private_key: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    def remote_path(self, name: str) -> str:
        return posixpath.join(self.directory, name)


class SftpClient(paramiko.SFTPClient):
    """paramiko's SFTP client, keeping the extensions the server announces (paramiko drops them),
    so that POSIX rename is used only where it is offered, as OpenSSH's own client does."""

    server_extensions: dict[str, bytes]

    def _send_version(self) -> int:
        init = paramiko.Message()
        init.add_int(3)
        self._send_packet(CMD_INIT, init)  # type: ignore[attr-defined]
        packet_type, data = self._read_packet()  # type: ignore[attr-defined]
        if packet_type != CMD_VERSION:
            raise paramiko.SSHException("Incompatible sftp protocol")
        version = paramiko.Message(data)
        number = version.get_int()
        self.server_extensions = {}
        while version.get_remainder():
            name = version.get_text()
            self.server_extensions[name] = version.get_binary()
        return number


def open_sftp_session(ssh: paramiko.SSHClient) -> SftpClient:
    transport = ssh.get_transport()
    if transport is None:
        raise paramiko.SSHException("no transport")
    sftp = SftpClient.from_transport(transport)
    if sftp is None:
        raise paramiko.SSHException("the server refused the SFTP channel")
    channel = sftp.get_channel()
    if channel is not None:
        channel.settimeout(IO_TIMEOUT_SECONDS)
    return sftp


def is_alive(ssh: paramiko.SSHClient | None) -> bool:
    transport = ssh.get_transport() if ssh is not None else None
    return transport is not None and transport.is_active()


def connection_lost(ssh: paramiko.SSHClient | None, sftp: SftpClient, error: Exception) -> bool:
    """Whether `error` came from the connection going away rather than from the server refusing.

    The transport may still look active for a moment after the server dropped the connection
    (paramiko's reader thread has not seen the end yet), so the error itself and the SFTP
    channel are asked first: paramiko raises EOFError when the channel closes under a request.
    """
    if isinstance(error, EOFError | ConnectionError):
        return True
    channel = sftp.get_channel()
    if channel is not None and channel.closed:
        return True
    return not is_alive(ssh)


def _fast_transport(sock: Any, /, **kwargs: Any) -> paramiko.Transport:
    transport = paramiko.Transport(sock, default_window_size=WINDOW_BYTES, **kwargs)
    options = transport.get_security_options()
    preferred = [c for c in PREFERRED_CIPHERS if c in options.ciphers]
    options.ciphers = (*preferred, *(c for c in options.ciphers if c not in preferred))
    return transport


def connect(target: SftpTarget, remote_name: str) -> paramiko.SSHClient:
    """Log in, trusting only the pinned host key: RejectPolicy, no known_hosts, no agent."""
    pinned = _pinned_host_key(target, remote_name)
    login_key = _login_key(target, remote_name)
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    ssh.get_host_keys().add(_known_hosts_name(target), pinned.get_name(), pinned)
    try:
        ssh.connect(
            target.host,
            port=target.port,
            username=target.username,
            pkey=login_key,
            password=target.password,
            look_for_keys=False,
            allow_agent=False,
            timeout=CONNECT_TIMEOUT_SECONDS,
            banner_timeout=CONNECT_TIMEOUT_SECONDS,
            auth_timeout=CONNECT_TIMEOUT_SECONDS,
            channel_timeout=CONNECT_TIMEOUT_SECONDS,
            transport_factory=_fast_transport,
        )
    except paramiko.BadHostKeyException as error:
        ssh.close()
        raise host_key_mismatch(target, remote_name, error) from error
    except paramiko.AuthenticationException as error:
        ssh.close()
        raise failure(target, remote_name, *login_refused(target, login_key)) from error
    except (OSError, EOFError, paramiko.SSHException) as error:
        ssh.close()
        raise failure(
            target,
            remote_name,
            f"cannot reach the server ({error or type(error).__name__})",
            "Check the host and port, and that the server is up; delivery is retried.",
            retryable=not isinstance(error, IncompatiblePeer),
        ) from error
    return ssh


def _known_hosts_name(target: SftpTarget) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def _pinned_host_key(target: SftpTarget, remote_name: str) -> paramiko.PKey:
    try:
        key_type, blob = parse_public_key_line(target.host_key)
        return paramiko.PKey.from_type_string(key_type, blob)
    except (ValueError, paramiko.SSHException) as error:
        raise failure(
            target,
            remote_name,
            f"the pinned sftp.host_key is not a usable public key ({error})",
            "Copy the server's key line, e.g. from `ssh-keyscan -p PORT HOST`, and check "
            "its fingerprint with the server's administrator.",
        ) from error


def _login_key(target: SftpTarget, remote_name: str) -> paramiko.PKey | None:
    """Parse the private key text; its content never reaches a message or a log."""
    if target.private_key is None:
        if target.password is None:
            raise failure(target, remote_name, "no private key and no password", "Configure one.")
        return None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(target.private_key))
        except paramiko.PasswordRequiredException as error:
            raise failure(
                target,
                remote_name,
                "the private key is protected by a passphrase",
                "Provide an unencrypted key through the environment variable.",
            ) from error
        except (paramiko.SSHException, ValueError):
            continue
    raise failure(
        target,
        remote_name,
        "the private key is not an OpenSSH or PEM ed25519, ECDSA or RSA private key",
        "Check the environment variable holds the whole private key file.",
    )
