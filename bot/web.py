"""The service's HTTP front: one route table on one port.

`/healthz`, `/metrics`, `/slack/events` (when Slack's HTTP mode is on) and
`/discord/interactions` (when DISCORD_PUBLIC_KEY is set). A small threaded
WSGI server from the standard library (one thread per request), so a slow
handler never blocks an ack. Request bodies are capped at 1 MB and never
logged; access lines carry only method, path and status.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
MAX_BODY = 1024 * 1024

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


@dataclass(frozen=True)
class HttpRequest:
    method: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    query: str


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    # Runs once the response has been written (e.g. Discord's deferred work,
    # which may only edit the answer after Discord has received it).
    after: Callable[[], None] | None = None


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    handle: Callable[[HttpRequest], HttpResponse]
    reads_body: bool = False


def text(status: int, message: str, **headers: str) -> HttpResponse:
    return HttpResponse(status, {"content-type": "text/plain", **headers}, message.encode())


@dataclass
class _Body(Iterable[bytes]):
    """The WSGI response body; `close()` (called by the server after the
    response was sent) starts the route's follow-up work."""

    data: bytes
    after: Callable[[], None] | None = field(default=None)

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    def close(self) -> None:
        if self.after is not None:
            try:
                self.after()
            except Exception:
                log.exception("error after answering a request")


class WebApp:
    """WSGI application: path -> Route."""

    def __init__(self, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.route(environ)
        except Exception:
            log.exception("error handling %s", environ.get("PATH_INFO"))
            response = text(500, "internal error\n")
        headers = {**response.headers, "content-length": str(len(response.body))}
        start_response(
            f"{response.status} {_REASONS.get(response.status, 'Status')}",
            [(name.title(), value) for name, value in headers.items()],
        )
        return _Body(response.body, response.after)

    def route(self, environ: Environ) -> HttpResponse:
        method = environ.get("REQUEST_METHOD", "GET")
        route = self.routes.get(environ.get("PATH_INFO", "/"))
        if route is None:
            return text(404, "not found\n")
        if method not in route.methods:
            return text(405, f"{' or '.join(route.methods)} only\n", allow=", ".join(route.methods))
        body = b""
        if route.reads_body:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return text(400, "bad content-length\n")
            if length < 0 or length > MAX_BODY:
                return text(413, "too large\n")
            try:
                body = environ["wsgi.input"].read(length) if length else b""
            except OSError:  # the client stopped sending (read timeout, reset)
                return text(400, "incomplete body\n")
            if len(body) != length:
                return text(400, "incomplete body\n")
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        request = HttpRequest(method, headers, body, str(environ.get("QUERY_STRING") or ""))
        return route.handle(request)


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
