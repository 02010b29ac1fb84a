"""A tiny programmable HTTP server on 127.0.0.1 for fetch/pipeline tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    drip_interval: float | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections die on their own

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.owner._lock:
            self.server.owner.connections += 1

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        owner = self.server.owner
        owner._enter()
        try:
            self._respond(owner, send_body=send_body)
        finally:
            owner._leave()

    def _respond(self, owner: FeedServer, *, send_body: bool) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record(RecordedRequest(self.command, self.path, headers))
        route = owner._route(self.path)
        try:
            if route is None:
                self._plain(404, b"not found\n", send_body)
                return
            if route.delay and owner._stopping.wait(route.delay):
                return
            if (route.etag is not None and headers.get("if-none-match") == route.etag) or (
                route.last_modified is not None
                and headers.get("if-modified-since") == route.last_modified
            ):
                self.send_response(304)
                if route.etag is not None:
                    self.send_header("ETag", route.etag)
                if route.last_modified is not None:
                    self.send_header("Last-Modified", route.last_modified)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.etag is not None:
                self.send_header("ETag", route.etag)
            if route.last_modified is not None:
                self.send_header("Last-Modified", route.last_modified)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not send_body:
                return
            if route.drip_interval is None:
                self.wfile.write(route.body)
                return
            for i in range(len(route.body)):
                self.wfile.write(route.body[i : i + 1])
                self.wfile.flush()
                if owner._stopping.wait(route.drip_interval):
                    return
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _plain(self, status: int, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: FeedServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client went away mid-response: expected in timeout tests


class FeedServer:
    """`with FeedServer() as srv: srv.set("/feed.xml", rss_bytes); srv.url("/feed.xml")`"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._active = 0
        self.peak_active = 0  # most requests in progress at once
        self.connections = 0  # TCP connections accepted
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FeedServer:
        if self._server is None:
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="feedserver",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # routes
    def set(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        route = _Route(data, content_type, status, dict(headers or {}), etag, last_modified, delay)
        with self._lock:
            self._routes[path] = route

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.set(path, b"", content_type="text/plain", status=status, headers={"Location": to})

    def drip(self, path: str, body: bytes, interval: float) -> None:
        """Serve `body` one byte per `interval` seconds."""
        with self._lock:
            self._routes[path] = _Route(body, drip_interval=interval)

    def remove(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    # observations
    def hits(self, path: str) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if r.path == path or r.path.split("?", 1)[0] == path
            )

    def clear(self) -> None:
        """Forget recorded requests (routes stay)."""
        with self._lock:
            self.requests.clear()

    def _enter(self) -> None:
        with self._lock:
            self._active += 1
            self.peak_active = max(self.peak_active, self._active)

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _route(self, path: str) -> _Route | None:
        with self._lock:
            route = self._routes.get(path)
            if route is None:
                route = self._routes.get(path.split("?", 1)[0])
            return route
