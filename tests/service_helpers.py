"""Drive `newshound run` as a real subprocess over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cli_helpers import REPO
from fakeslack import FakeSlack, escape_like_slack

from bot.store import Store

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def sql(db: str | Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on a (running service's) database, either backend: the
    rows it returns, if any."""
    with Store(db) as store:
        return store.db.rows(statement, params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str]
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> HttpResult:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
            return HttpResult(
                resp.status, body, dict(resp.headers.items()), time.monotonic() - started
            )
    except urllib.error.HTTPError as exc:
        return HttpResult(
            exc.code, exc.read(), dict(exc.headers.items()), time.monotonic() - started
        )


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


class Service:
    """`python -m bot run` in a subprocess; stderr goes to a log file."""

    def __init__(self, config: Path, db: str | Path, slack: FakeSlack, **env: str) -> None:
        self.config = config
        self.db = db
        self.slack = slack
        self.port = free_port()
        self.log_path = config.parent / f"service-{self.port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
        self.env.update(
            {
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.api_url,
                "NEWSHOUND_TICK": "0.2",
                "NEWSHOUND_BIND": "127.0.0.1",
            }
        )
        self.env.update(env)
        self.env = {k: v for k, v in self.env.items() if v != ""}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        self._log = self.log_path.open("wb")
        args = ["--config", str(self.config), "--db", str(self.db), "run", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            cwd=str(REPO),
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._up, timeout=20)
        return self

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited {self.proc.returncode}:\n{self.log()}")
        try:
            return request(self.base + "/healthz").status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"service did not exit within {timeout}s:\n{self.log()}") from None
        finally:
            self._log.close()
        return code, time.monotonic() - started

    # -- HTTP ------------------------------------------------------------

    def get(self, path: str) -> HttpResult:
        return request(self.base + path)

    def post_raw(self, body: bytes, headers: dict[str, str]) -> HttpResult:
        return request(self.base + "/slack/events", data=body, headers=headers)

    def command_body(
        self, text: str, channel: str, user: str = "U0ALICE0001", key: str | None = None
    ) -> tuple[bytes, str]:
        key = key or uuid.uuid4().hex
        form = {
            "token": "legacy-verification-token",
            "team_id": "T1",
            "team_domain": "example",
            "channel_id": channel,
            "channel_name": "news",
            "user_id": user,
            "user_name": "alice",
            "command": "/watch",
            "text": escape_like_slack(text),
            "api_app_id": "A1",
            "response_url": self.slack.response_url(key),
            "trigger_id": "1.2.3",
        }
        return urlencode(form).encode(), key

    def post_command(
        self, text: str, channel: str, user: str = "U0ALICE0001"
    ) -> tuple[HttpResult, str]:
        body, key = self.command_body(text, channel, user)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(SECRET, timestamp, body),
        }
        return self.post_raw(body, headers), key

    def watch(self, text: str, channel: str, user: str = "U0ALICE0001") -> dict[str, Any]:
        """Signed `/watch TEXT`; returns the ephemeral reply sent to response_url."""
        result, key = self.post_command(text, channel, user)
        assert result.status == 200, (result.status, result.body)
        calls = wait_for(lambda: self.slack.responses(key), timeout=10)
        reply: dict[str, Any] = calls[0].args
        assert reply.get("response_type") == "ephemeral", reply
        return reply
