"""The service's HTTP front: `/healthz`, `/metrics` and `/slack/events` on one port.

A small threaded WSGI server from the standard library (one thread per
request), so a slow handler never blocks an ack. Request bodies are never
logged; access lines carry only method, path and status.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.slack_app import EVENTS_PATH, MAX_BODY, SlackHttpEndpoint

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class WebApp:
    """WSGI application routing the service's three endpoints."""

    def __init__(
        self,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], tuple[bytes, str]],
        slack: SlackHttpEndpoint | None,
    ) -> None:
        self.health = health
        self.metrics = metrics
        self.slack = slack

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, headers, body = self.route(environ)
        except Exception:
            log.exception("error handling %s", environ.get("PATH_INFO"))
            status, headers, body = 500, {"content-type": "text/plain"}, b"internal error\n"
        headers = {**headers, "content-length": str(len(body))}
        start_response(
            f"{status} {_REASONS.get(status, 'Status')}",
            [(name.title(), value) for name, value in headers.items()],
        )
        return [body]

    def route(self, environ: Environ) -> tuple[int, dict[str, str], bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz" and method in ("GET", "HEAD"):
            healthy, data = self.health()
            body = json.dumps(data, sort_keys=True).encode() + b"\n"
            return (200 if healthy else 503), {"content-type": "application/json"}, body
        if path == "/metrics" and method in ("GET", "HEAD"):
            text, content_type = self.metrics()
            return 200, {"content-type": content_type}, text
        if path == EVENTS_PATH and self.slack is not None:
            if method != "POST":
                return 405, {"content-type": "text/plain", "allow": "POST"}, b"POST only\n"
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return 400, {"content-type": "text/plain"}, b"bad content-length\n"
            if length < 0 or length > MAX_BODY:
                return 413, {"content-type": "text/plain"}, b"too large\n"
            body = environ["wsgi.input"].read(length) if length else b""
            headers = {
                key[5:].replace("_", "-").lower(): str(value)
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = str(environ["CONTENT_TYPE"])
            return self.slack.handle(headers, body, str(environ.get("QUERY_STRING") or ""))
        return 404, {"content-type": "text/plain"}, b"not found\n"


READ_TIMEOUT = 10.0


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    # A client that connects and then sends nothing (or half a request) is
    # dropped after this many seconds instead of holding a thread forever.
    timeout = READ_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class WebServer:
    def __init__(self, app: WebApp, host: str, port: int) -> None:
        self.server = make_server(
            host, port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="http"
        )
        self._thread.daemon = True

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests (in-flight ones finish on their own threads)."""
        self.server.shutdown()
        self.server.server_close()
