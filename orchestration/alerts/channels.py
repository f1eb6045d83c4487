"""Where an alert goes: one e-mail (operators, plus the client's contacts in Cc) and/or one webhook
call, each tried whatever happened to the other."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestration.alerts.message import Incident, subject, text, webhook_payload
from orchestration.alerts.smtp import AlertNotSent, SmtpSettings, build_email, send_email
from orchestration.alerts.webhook import post_webhook


@dataclass(frozen=True)
class Channels:
    smtp: SmtpSettings | None
    operators: list[str]
    webhook_url: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """For logs: which channels, never the webhook's URL or a password."""
        parts = []
        if self.smtp:
            parts.append(f"e-mail via SMTP {self.smtp.server} to {', '.join(self.operators)}")
        if self.webhook_url:
            parts.append("the webhook (ODS_ALERT_WEBHOOK_URL)")
        return " and ".join(parts) or "nothing: no channel configured"

    def send(self, incident: Incident, contacts: list[str]) -> list[str]:
        """Send `incident` on every channel; returns what was sent. If any channel failed (or
        none is configured), AlertNotSent lists every failure after the others were tried."""
        sent: list[str] = []
        problems: list[str] = []
        if self.smtp is None and self.webhook_url is None:
            problems.append(
                "no alert channel is configured: set ODS_SMTP_HOST and ODS_ALERT_EMAIL (e-mail) "
                "and/or ODS_ALERT_WEBHOOK_URL"
            )
        if self.smtp is not None:
            if not self.operators:
                problems.append(
                    "ODS_ALERT_EMAIL (the operators' addresses, comma-separated) is not set"
                )
            recipients = [*self.operators, *[c for c in contacts if c not in self.operators]]
            if recipients:
                to = self.operators or recipients
                cc = [c for c in recipients if c not in to]
                message = build_email(
                    self.smtp, to, cc, subject(incident), text(incident), incident.key
                )
                try:
                    send_email(self.smtp, message, recipients)
                    sent.append(f"e-mail to {', '.join(recipients)}")
                except AlertNotSent as error:
                    problems.append(str(error))
        elif contacts:
            problems.append(
                f"client {incident.client_id} has alerts.email ({', '.join(contacts)}) but no SMTP "
                "server is set (ODS_SMTP_HOST)"
            )
        if self.webhook_url is not None:
            try:
                post_webhook(self.webhook_url, webhook_payload(incident))
                sent.append("webhook")
            except AlertNotSent as error:
                problems.append(str(error))
        if problems:
            done = f" (sent: {', '.join(sent)})" if sent else " (nothing was sent)"
            raise AlertNotSent(f"alert {subject(incident)!r}: " + "; ".join(problems) + done)
        return sent
