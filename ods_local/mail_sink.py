"""A local SMTP sink (aiosmtpd): every message it receives is written to a folder as an `.eml` file.

The local default's alerts go here (`ods up` starts it beside the SFTP server; `ods status` shows
it): nothing leaves the machine, and `<ODS_HOME>/mail/` shows what the operators would have been
sent. Each file is the message as received, with one header added at the top,
`X-ODS-Sink-Rcpt-To`, naming the envelope's recipients (who the message was really sent to,
Bcc included). Tests run the same sink in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import email.message
import email.policy
import itertools
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("ods.mail_sink")
RECIPIENTS_HEADER = "X-ODS-Sink-Rcpt-To"
START_TIMEOUT_SECONDS = 10


class _WriteToFolder:
    """aiosmtpd handler: one `.eml` per message, written whole (temporary name, then rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        recipients = ", ".join(str(r) for r in envelope.rcpt_tos)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{os.getpid()}-{next(self._numbers)}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(f"{RECIPIENTS_HEADER}: {recipients}\r\n".encode() + content)
        partial.rename(self.folder / name)
        log.info("message from %s to %s saved as %s", envelope.mail_from, recipients, name)
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on `host:port` (0: any free port) on its own event loop in a thread."""

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        handler = _WriteToFolder(self.folder)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="local-mail-sink", daemon=True)
        thread.start()
        # hostname given: aiosmtpd would otherwise look up this machine's FQDN (a DNS query).
        listening = loop.create_server(
            lambda: SMTP(handler, hostname="localhost", ident="ods-mail-sink"),
            host=self.host,
            port=self.port,
        )
        try:
            self._server = asyncio.run_coroutine_threadsafe(listening, loop).result(
                START_TIMEOUT_SECONDS
            )
        except OSError:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            raise
        self._loop, self._thread = loop, thread
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._server is None:
            return
        server, loop = self._server, self._loop

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(START_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join()
        loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def saved_messages(folder: Path) -> list[email.message.EmailMessage]:
    """The messages in `folder`, oldest first."""
    messages = []
    for path in sorted(folder.glob("*.eml")):
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        messages.append(parsed)
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ods_local.mail_sink",
        description="Receive SMTP on 127.0.0.1 and write each message to a folder as .eml.",
    )
    parser.add_argument("--folder", type=Path, required=True, help="where the .eml files go")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument(
        "--pid-file", type=Path, required=True, help="written once listening: pid, then port"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    sink = MailSink(arguments.folder, port=arguments.port)
    try:
        sink.start()
    except OSError as error:
        log.error("cannot listen on 127.0.0.1:%s: %s", arguments.port, error)
        return 1
    arguments.pid_file.write_text(f"{os.getpid()}\n{sink.port}\n")
    log.info("SMTP sink listening on 127.0.0.1:%d, messages in %s", sink.port, sink.folder)
    stopping = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopping.set())
    stopping.wait()
    sink.stop()
    arguments.pid_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
