"""The one small base every test server stands on: a threaded HTTP server on
127.0.0.1 (a free port), served by a daemon thread, started and stopped the
same way (`with Fake() as fake:` or `start()`/`stop()`).

Fakes subclass LoopbackServer and pass it their request handler; handlers
subclass QuietHandler (HTTP/1.1 keep-alive like the real services, no
request log on stderr, `read_body()` for the Content-Length body).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class LoopbackServer:
    def __init__(
        self, handler: type[BaseHTTPRequestHandler], *, ignore_client_errors: bool = False
    ) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if ignore_client_errors:
            # A client killed mid-request (the crash tests) is no error of ours.
            self.server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
