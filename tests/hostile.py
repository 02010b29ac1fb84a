"""Hostile feed servers and generated hostile documents for tests.

`HostileServer` maps paths to behaviours (serve, drip, hang, reset, stream a
huge body, redirect); `CanaryServer` listens on a second loopback address and
counts every TCP connection it gets, so a test can prove that nothing ever
reached it. Documents are generated in code, never committed.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler, ThreadingTCPServer
from types import TracebackType
from typing import Any

from feedgen import FeedEntry, rss

Behaviour = Callable[["_Handler"], None]

CANARY_HOST = "127.0.0.2"


def loopback_alias_available(host: str = CANARY_HOST) -> bool:
    try:
        with socket.socket() as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        owner.record(path)
        behaviour = owner.routes.get(path)
        try:
            if behaviour is None:
                self.reply(404, b"not found", "text/plain")
            else:
                behaviour(self)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/rss+xml",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: HostileServer, host: str) -> None:
        self.owner = owner
        super().__init__((host, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class HostileServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Behaviour] = {}
        self.hits: dict[str, int] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(self, host)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def record(self, path: str) -> None:
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    # -- behaviours ------------------------------------------------------

    def serve(self, path: str, body: bytes, content_type: str = "application/rss+xml", **kw: Any):
        headers = kw.pop("headers", None)
        status = kw.pop("status", 200)
        self.routes[path] = lambda h: h.reply(status, body, content_type, headers)

    def redirect(self, path: str, to: str, status: int = 302) -> None:
        self.routes[path] = lambda h: h.reply(status, b"", "text/plain", {"Location": to})

    def drip(self, path: str, body: bytes, interval: float) -> None:
        def behaviour(h: _Handler) -> None:
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                if self.stopping.wait(interval):
                    return

        self.routes[path] = behaviour

    def hang(self, path: str) -> None:
        """Accept the request, then say nothing at all."""

        def behaviour(h: _Handler) -> None:
            self.stopping.wait(60)
            h.close_connection = True

        self.routes[path] = behaviour

    def reset(self, path: str) -> None:
        """Answer the request with a TCP reset."""

        def behaviour(h: _Handler) -> None:
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True

        self.routes[path] = behaviour

    def stream(self, path: str, size: int, *, declare_length: bool) -> None:
        """`size` bytes of a feed-looking body, generated while sending."""
        chunk = b"<item><title>filler</title></item>" * 2000

        def behaviour(h: _Handler) -> None:
            h.send_response(200)
            h.send_header("Content-Type", "application/rss+xml")
            if declare_length:
                h.send_header("Content-Length", str(size))
            else:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            sent = 0
            while sent < size and not self.stopping.is_set():
                piece = chunk[: size - sent]
                h.wfile.write(piece)
                sent += len(piece)

        self.routes[path] = behaviour


class _CanaryHandler(BaseRequestHandler):
    def handle(self) -> None:
        owner: CanaryServer = self.server.owner  # type: ignore[attr-defined]
        owner.connections += 1
        body = rss([FeedEntry(title="canary reached", link="https://canary.example/")])
        self.request.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


class CanaryServer:
    """Counts TCP connections on a second loopback address; must stay at 0."""

    def __init__(self, host: str = CANARY_HOST) -> None:
        self.connections = 0
        self._server = ThreadingTCPServer((host, 0), _CanaryHandler, bind_and_activate=True)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self.host = host
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> CanaryServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/feed.xml") -> str:
        return f"http://{self.host}:{self.port}{path}"


# --- generated documents --------------------------------------------------------

NOW = datetime.now(UTC)


def healthy_feed() -> bytes:
    return rss(
        [
            FeedEntry(
                title="US and India sign trade deal",
                link="https://news.example/trade-deal",
                guid="healthy-1",
                summary="The trade deal cuts tariffs.",
                published=NOW - timedelta(hours=1),
            )
        ],
        title="Healthy",
    )


def gzip_bomb(megabytes: int = 200) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(megabytes)]
    parts.append(packer.flush())
    return b"".join(parts)


def billion_laughs() -> bytes:
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE rss [", ' <!ENTITY lol0 "lol">']
    for i in range(1, 10):
        refs = f"&lol{i - 1};" * 10
        lines.append(f' <!ENTITY lol{i} "{refs}">')
    lines.append("]>")
    lines.append('<rss version="2.0"><channel><title>&lol9;</title></channel></rss>')
    return "\n".join(lines).encode()


def quadratic_entities() -> bytes:
    big = "A" * 50_000
    refs = "&big;" * 50_000
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "{big}">]>'
        f'<rss version="2.0"><channel><title>q</title><item><title>{refs}</title></item>'
        "</channel></rss>"
    ).encode()


def many_items(count: int = 100_000) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>https://many.example/{i}</link></item>"
        for i in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Many</title>{items}'
        "</channel></rss>"
    ).encode()


def huge_title(size: int = 1024 * 1024) -> bytes:
    title = ("trade deal " * (size // 11 + 1))[:size]
    return rss([FeedEntry(title=title, link="https://huge.example/1", published=NOW)], title="Huge")


def quadratic_author(size: int = 200_000) -> bytes:
    """feedparser's author-email regex backtracks quadratically on this."""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Slow</title>'
        f"<item><title>x</title><author>{'a' * size}</author></item></channel></rss>"
    ).encode()


def invalid_utf8() -> bytes:
    return (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bad</title>'
        b"<item><title>caf\xe9 \xff\xfe broken</title><link>https://bad.example/1</link></item>"
        b"</channel></rss>"
    )


def mismatched_encoding() -> bytes:
    """Declares UTF-16 but is Latin-1 (and the HTTP header will say UTF-8)."""
    return (
        '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>Mis</title>'
        "<item><title>Caf\xe9 cr\xe8me</title><link>https://mis.example/1</link></item>"
        "</channel></rss>"
    ).encode("latin-1")


def html_page() -> bytes:
    return b"<!DOCTYPE html><html><head><title>Not a feed</title></head><body>Hi</body></html>"


def json_wrong_types() -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": ["not", "a", "string"],
            "items": [
                {"id": {"x": 1}, "title": 42, "url": ["x"], "tags": "notalist"},
                "not an object",
                None,
                {"id": "ok", "title": "Fine item", "date_published": 123, "authors": "x"},
            ],
        }
    ).encode()


def empty_body() -> bytes:
    return b""
