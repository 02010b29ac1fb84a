"""bot/web.py: the route table's body handling over a real loopback socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from bot.web import HttpRequest, HttpResponse, Route, WebApp, WebServer


@pytest.fixture
def server() -> Iterator[tuple[WebServer, list[bytes]]]:
    seen: list[bytes] = []

    def echo(request: HttpRequest) -> HttpResponse:
        seen.append(request.body)
        return HttpResponse(200, {"content-type": "text/plain"}, b"ok")

    web = WebServer(WebApp({"/echo": Route(("POST",), echo, reads_body=True)}), "127.0.0.1", 0)
    web.start()
    try:
        yield web, seen
    finally:
        web.stop()


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # the client sends nothing more
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_body_shorter_than_its_content_length_is_a_400(
    server: tuple[WebServer, list[bytes]],
) -> None:
    web, seen = server
    answer = _exchange(
        web.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort"
    )
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer
    assert seen == []  # the handler never saw half a request


def test_a_whole_body_reaches_the_route(server: tuple[WebServer, list[bytes]]) -> None:
    web, seen = server
    answer = _exchange(
        web.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    )
    assert b" 200 " in answer.split(b"\r\n", 1)[0]
    assert seen == [b"hello"]
