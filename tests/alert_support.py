"""Helpers for the alert tests: a local webhook receiver, and a sensor tick as the daemon makes it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
from dagster._core.definitions.sensor_definition import SensorExecutionData


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 recording each POST's path, headers and JSON body; it
    answers `status` (set it to 500 to play a broken webhook)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.calls.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 300 else b"broken")

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T000/B000/secret-token"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def sensor_tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None
) -> SensorExecutionData:
    """One evaluation of a sensor, as the daemon makes it: the instance, the stored cursor and the
    code location's resources. The result carries the next cursor and the tick's errors."""
    sensor = defs.resolve_sensor_def(name)
    resources = defs.get_repository_def().get_top_level_resources()
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={key: resources[key] for key in sensor.required_resource_keys},
    ) as context:
        return sensor.evaluate_tick(context)
