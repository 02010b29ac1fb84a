"""bot/slack_app.py: signature verification (pure) and Socket Mode against a
local fake (a websocket server handed out by the fake `apps.connections.open`)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli, write_config
from fakeslack import FakeSlack, escape_like_slack
from feedserver import FeedServer
from service_helpers import Service, free_port, sign, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from bot.slack_app import verify_signature

SECRET = "s3cr3t"
BODY = b"command=%2Fwatch&text=list"
NOW = 1_750_000_000.0
TS = str(int(NOW))


def headers(timestamp: str, signature: str) -> dict[str, str]:
    return {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}


@pytest.mark.parametrize(
    ("hdrs", "now", "ok"),
    [
        (headers(TS, sign(SECRET, TS, BODY)), NOW, True),
        (headers(TS, sign(SECRET, TS, BODY)), NOW + 299, True),
        (headers(TS, sign(SECRET, TS, BODY)), NOW + 301, False),  # stale
        (headers(TS, sign(SECRET, TS, BODY)), NOW - 301, False),  # from the future
        (headers(TS, sign("other", TS, BODY)), NOW, False),
        (headers(TS, sign(SECRET, TS, BODY + b"x")), NOW, False),
        (headers("abc", sign(SECRET, "abc", BODY)), NOW, False),  # non-numeric
        (headers("-1", sign(SECRET, "-1", BODY)), NOW, False),
        (headers("1" * 40, sign(SECRET, "1" * 40, BODY)), NOW, False),
        (headers("١٧٥٠٠٠٠٠٠٠", "v0=00"), NOW, False),  # non-ASCII digits
        ({"x-slack-signature": sign(SECRET, TS, BODY)}, NOW, False),
        ({"x-slack-request-timestamp": TS}, NOW, False),
        ({}, NOW, False),
    ],
)
def test_verify_signature(hdrs: dict[str, str], now: float, ok: bool) -> None:
    assert verify_signature(SECRET, hdrs, BODY, now) is ok


def test_verify_signature_needs_a_secret() -> None:
    assert not verify_signature("", headers(TS, sign("", TS, BODY)), BODY, NOW)


# -- Socket Mode ---------------------------------------------------------------


class FakeSocketModeServer:
    """Sends `hello`, then each queued envelope; records what the client sends."""

    def __init__(self) -> None:
        self.outgoing: queue.Queue[dict[str, Any]] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/link/?ticket=t1"

    def _handle(self, ws: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
        ws.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {}}))
        while True:
            try:
                envelope = self.outgoing.get_nowait()
                ws.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            with self._lock:
                self.received.append(json.loads(message))

    def acks(self, envelope_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.received if m.get("envelope_id") == envelope_id]

    def __enter__(self) -> FakeSocketModeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


@pytest.fixture
def socket_server() -> Iterator[FakeSocketModeServer]:
    with FakeSocketModeServer() as server:
        yield server


def slash_envelope(envelope_id: str, text: str, channel: str, response_url: str) -> dict:
    return {
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "token": "legacy",
            "team_id": "T1",
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "news",
            "user_id": "U0ALICE0001",
            "user_name": "alice",
            "command": "/watch",
            "text": escape_like_slack(text),
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        },
    }


@pytest.mark.slow
def test_socket_mode_logs_connected_only_once_really_connected(
    socket_server: FakeSocketModeServer, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.reply import reply
    from bot.slack_app import SlackSettings, SocketModeRunner, build_app

    caplog.set_level(logging.INFO, logger="bot.slack_app")
    with FakeSlack() as slack:
        slack.state.socket_url = f"ws://127.0.0.1:{free_port()}/link/?ticket=refused"
        settings = SlackSettings("xoxb-test", slack.api_url, app_token="xapp-1-test")
        app = build_app(settings, lambda channel, user, text: reply("ok"))
        runner = SocketModeRunner(app, "xapp-1-test", retry_every=0.2)
        runner.start()
        try:
            wait_for(lambda: "not connected yet" in caplog.text)
            assert runner.connected is False
            assert "Socket Mode connected" not in caplog.text
            # The websocket server comes up: the SDK reconnects on its own
            # (its monitor runs every few seconds), then it is reported.
            slack.state.socket_url = socket_server.url
            wait_for(lambda: "Socket Mode connected" in caplog.text, timeout=20)
            assert runner.connected is True and socket_server.connections >= 1
        finally:
            runner.close()


@pytest.mark.slow
def test_socket_mode_acks_slash_commands_and_replies_ephemerally(
    db_url: str, tmp_path: Path, feed_server: FeedServer, socket_server: FakeSocketModeServer
) -> None:
    channel = "C0SOCKET001"
    feed_server.set("/feed.xml", b"<rss version='2.0'><channel><title>F</title></channel></rss>")
    config = write_config(tmp_path / "feeds.yaml", [feed_server.url("/feed.xml")], [])
    db = db_url
    with FakeSlack() as slack:
        slack.state.socket_url = socket_server.url
        service = Service(
            config, db, slack, SLACK_APP_TOKEN="xapp-1-test", SLACK_SIGNING_SECRET=""
        ).start()
        try:
            wait_for(lambda: socket_server.connections >= 1)
            opened = slack.calls("apps.connections.open")
            assert opened and opened[0].headers.get("Authorization") == "Bearer xapp-1-test"

            socket_server.outgoing.put(
                slash_envelope("env-1", "add pax silica", channel, slack.response_url("k1"))
            )
            started = time.monotonic()
            wait_for(lambda: socket_server.acks("env-1"), timeout=3)
            assert time.monotonic() - started < 3
            reply = wait_for(lambda: slack.responses("k1"))[0].args
            assert reply["response_type"] == "ephemeral"
            assert "Now watching" in reply["text"] and "pax silica" in reply["text"]

            health = service.get("/healthz").json()
            assert health["slack"] == "socket" and health["socket_mode_connected"] is True
            # HTTP mode's endpoint is not served in Socket Mode.
            assert service.post_raw(b"x", {}).status == 404
        finally:
            code, _ = service.stop()
    assert code == 0, service.log()
    listing = run_cli(
        "--config", str(config), "--db", str(db), "watch", "list", "--channel", channel
    )
    assert "pax silica" in listing.out


def test_slow_commands_never_hold_up_the_acknowledgement_of_others() -> None:
    """Bolt runs listeners in a few threads; a /watch that blocks (slow Slack
    API, locked database) must not keep later commands from their ack."""
    from urllib.parse import urlencode

    from bot.reply import Reply, reply
    from bot.slack_app import SlackHttpEndpoint, SlackSettings, build_app

    release = threading.Event()
    handled: list[str] = []

    def slow_handle(channel: str, user: str | None, text: str) -> Reply:
        release.wait(10)
        handled.append(text)
        return reply("done")

    with FakeSlack() as slack:
        app = build_app(SlackSettings("xoxb-test", slack.api_url, SECRET), slow_handle)
        endpoint = SlackHttpEndpoint(app, SECRET)

        def command(n: int) -> tuple[int, float]:
            body = urlencode(
                {
                    "command": "/watch",
                    "text": f"add term{n}",
                    "channel_id": "C0ACKACK001",
                    "user_id": "U1",
                    "response_url": slack.response_url(f"k{n}"),
                }
            ).encode()
            ts = str(int(time.time()))
            started = time.monotonic()
            status, _, _ = endpoint.handle(headers(ts, sign(SECRET, ts, body)), body, "")
            return status, time.monotonic() - started

        try:
            with ThreadPoolExecutor(12) as pool:
                acks = list(pool.map(command, range(12)))
        finally:
            release.set()
        assert [status for status, _ in acks] == [200] * 12
        assert max(elapsed for _, elapsed in acks) < 2.0
        wait_for(lambda: len(handled) == 12 and len(slack.responses()) == 12)
