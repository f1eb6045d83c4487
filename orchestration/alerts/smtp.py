"""Sending an alert by e-mail over SMTP (the standard library's smtplib)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

# An SMTP server that does not answer within this is down for this tick; the sensor reports it.
TIMEOUT_SECONDS = 15


class AlertNotSent(RuntimeError):
    """An alert could not be sent on one channel; the message says which and why, never a
    secret."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def build_email(
    settings: SmtpSettings, to: list[str], cc: list[str], subject: str, body: str, incident: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message["X-ODS-Incident"] = incident
    # Plain 7-bit text when it fits (readable as it is in the .eml and in any client), else
    # quoted-printable.
    plain = body.isascii() and all(len(line) < 990 for line in body.splitlines())
    message.set_content(body, cte="7bit" if plain else "quoted-printable")
    return message


def send_email(settings: SmtpSettings, message: EmailMessage, recipients: list[str]) -> None:
    """Hand `message` to the SMTP server for `recipients`; AlertNotSent naming the server and
    the reason otherwise. Port 465 is TLS from the start; STARTTLS when asked; a login when a
    user is set."""
    try:
        if settings.port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
        with client:
            if settings.starttls:
                client.starttls(context=ssl.create_default_context())
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.send_message(message, to_addrs=recipients)
    except (OSError, smtplib.SMTPException) as error:
        raise AlertNotSent(
            f"e-mail to {', '.join(recipients)} via SMTP {settings.server} failed: "
            f"{_redacted(error, settings.password)}"
        ) from None
    if refused:
        raise AlertNotSent(
            f"the SMTP server {settings.server} refused recipient(s) {', '.join(sorted(refused))}"
        )


def _redacted(error: BaseException, secret: str | None) -> str:
    reason = f"{type(error).__name__}: {error}"
    return reason.replace(secret, "<password>") if secret else reason
