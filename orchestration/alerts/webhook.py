"""Sending an alert to a webhook: a JSON POST (Slack's incoming webhooks take its `text`).

The URL is a secret (anyone who has a Slack webhook URL may post to the channel), so it appears in
no message and no log: errors name the variable that holds it.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from orchestration.alerts.smtp import AlertNotSent

TIMEOUT_SECONDS = 15
URL_VARIABLE = "ODS_ALERT_WEBHOOK_URL"


def post_webhook(url: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON; returns the HTTP status (2xx), else AlertNotSent."""
    if not url.lower().startswith(("https://", "http://")):
        raise AlertNotSent(f"the webhook ({URL_VARIABLE}) is not an http:// or https:// URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "outbound-data-sync"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code} {error.reason}"
    except (OSError, http.client.HTTPException, ValueError) as error:
        reason = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
    raise AlertNotSent(f"the webhook ({URL_VARIABLE}) failed: {reason.replace(url, '<URL>')}")
