"""A fake Discord webhook endpoint over real HTTP on 127.0.0.1.

`webhook()` registers a webhook and returns its URL; posts to unknown
webhooks get 404 "Unknown Webhook" like Discord. Records every request with
its receive time, answers `?wait=true` posts with a message object, sends the
X-RateLimit-* headers of a per-webhook bucket (`bucket(limit, reset_after)`)
and can inject faults: `fail_next(Fault(...))` (status, JSON `retry_after`,
delay, dropped connection, accept-then-misbehave).

Like Discord, it serves both `/api/webhooks/…` (the unversioned URL Discord's
UI hands out, which means the old default version v6) and `/api/v10/webhooks/…`,
and answers a 429's JSON `retry_after` in milliseconds on the unversioned path
and in seconds (a float) on v8 and later
(https://discord.com/developers/docs/reference#api-versioning: requests without
a version use the default, deprecated v6; discord-api-docs
docs/topics/Rate_Limits.md: "retry_after: The number of seconds to wait";
API v8 changelog: rate-limit values moved from milliseconds to seconds).

Edits: `PATCH /webhooks/{id}/{token}/messages/{message_id}` replaces the
fields it is given of a message that webhook posted and answers the edited
message; an unknown message id gets 404 "Unknown Message" (code 10008)
(discord.com/developers/docs/resources/webhook#edit-webhook-message: "Edits a
previously-sent webhook message from the same token. Returns a message
object on success"). The message id comes from posting with `?wait=true`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer, QuietHandler


@dataclass
class Request:
    webhook: str  # webhook id
    query: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when received
    version: int | None = None  # the API version in the path (None: unversioned)
    method: str = "POST"
    message_id: str | None = None  # PATCH …/messages/{message_id}


@dataclass
class Fault:
    status: int = 200
    retry_after: float | None = None  # JSON body field on 429
    delay: float = 0.0
    drop: bool = False
    accept: bool = False  # store the message, then misbehave
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Bucket:
    limit: int
    reset_after: float
    window_start: float = 0.0
    used: int = 0


class FakeDiscord(LoopbackServer):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.faults: deque[Fault] = deque()
        self.tokens: dict[str, str] = {}
        self.buckets: dict[str, _Bucket] = {}
        self.bucket_limit: tuple[int, float] | None = None
        self.violations = 0  # requests that arrived while their bucket was exhausted
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self._webhook_ids = itertools.count(100_000_000_000_000_001)
        owner = self

        class Handler(QuietHandler):
            def _request(self) -> tuple[list[str], dict[str, str], Any, int | None]:
                """Path segments (the /vN part taken out), query, JSON body, N."""
                raw = self.read_body()
                parts = urlsplit(self.path)
                segments = [s for s in parts.path.split("/") if s]
                version = None
                if len(segments) > 1 and re.fullmatch(r"v\d+", segments[1]):
                    version = int(segments.pop(1)[1:])
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                return segments, query, body, version

            def do_POST(self) -> None:
                owner._handle(self, *self._request())

            def do_PATCH(self) -> None:
                owner._edit(self, *self._request())

        super().__init__(Handler)

    # setup
    def webhook(self, name: str = "w") -> str:
        """Register a webhook; its URL (with a secret-looking token)."""
        webhook_id = str(next(self._webhook_ids))
        token = f"tok-{name}-SECRET"
        with self.lock:
            self.tokens[webhook_id] = token
        port = self.port
        return f"http://127.0.0.1:{port}/api/webhooks/{webhook_id}/{token}"

    def delete(self, url: str) -> None:
        with self.lock:
            self.tokens.pop(_webhook_id(url), None)

    def bucket(self, limit: int, reset_after: float) -> None:
        """Every webhook allows `limit` posts per `reset_after` seconds."""
        with self.lock:
            self.bucket_limit = (limit, reset_after)

    def fail_next(self, *faults: Fault) -> None:
        with self.lock:
            self.faults.extend(faults)

    # observations
    def posts(self, url: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            if url is not None:
                return list(self.messages.get(_webhook_id(url), []))
            return [m for ms in self.messages.values() for m in ms]

    def received(self, url: str | None = None) -> list[Request]:
        with self.lock:
            wanted = None if url is None else _webhook_id(url)
            return [r for r in self.requests if wanted is None or r.webhook == wanted]

    def edits(self, url: str | None = None) -> list[Request]:
        """PATCH requests (edits) received."""
        return [r for r in self.received(url) if r.method == "PATCH"]

    # the endpoint
    def _edit(
        self,
        handler: QuietHandler,
        segments: list[str],
        query: dict[str, str],
        body: dict[str, Any],
        version: int | None,
    ) -> None:
        ok_path = len(segments) == 6 and segments[:2] == ["api", "webhooks"]
        webhook_id = segments[2] if ok_path else ""
        message_id = segments[5] if ok_path and segments[4] == "messages" else None
        with self.lock:
            self.requests.append(
                Request(webhook_id, query, body, time.monotonic(), version, "PATCH", message_id)
            )
            fault = self.faults.popleft() if self.faults else None
            if fault is not None and not _benign(fault):
                error: dict[str, Any] = {"message": f"HTTP {fault.status}", "code": 0}
                if fault.retry_after is not None:
                    error = {
                        "message": "You are being rate limited.",
                        "retry_after": _retry_after(fault.retry_after, version),
                        "global": False,
                    }
                answer: tuple[int, dict[str, Any]] = (fault.status, error)
            elif not ok_path or self.tokens.get(webhook_id) != segments[3]:
                answer = (404, {"message": "Unknown Webhook", "code": 10015})
            else:
                found = next(
                    (m for m in self.messages.get(webhook_id, []) if m["id"] == message_id), None
                )
                if found is None:
                    answer = (404, {"message": "Unknown Message", "code": 10008})
                else:
                    found.update(body, edited=True)
                    answer = (200, dict(found))
        try:
            self._answer(handler, *answer)
        except OSError:
            handler.close_connection = True

    def _handle(
        self,
        handler: QuietHandler,
        segments: list[str],
        query: dict[str, str],
        body: dict[str, Any],
        version: int | None = None,
    ) -> None:
        now = time.monotonic()
        webhook_id = (
            segments[2] if len(segments) >= 4 and segments[:2] == ["api", "webhooks"] else ""
        )
        token = segments[3] if len(segments) >= 4 else ""
        with self.lock:
            self.requests.append(Request(webhook_id, query, body, now, version))
            if self.tokens.get(webhook_id) != token:
                answer: tuple[int, dict[str, Any], dict[str, str]] | None = (
                    404,
                    {"message": "Unknown Webhook", "code": 10015},
                    {},
                )
                fault = None
            else:
                fault = self.faults.popleft() if self.faults else None
                answer = None
                if fault is None or fault.accept or _benign(fault):
                    answer = self._accept(webhook_id, query, body, now, version)
        try:
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop:
                    handler.close_connection = True
                    handler.connection.shutdown(2)
                    return
                if not _benign(fault):
                    error: dict[str, Any] = {"message": f"HTTP {fault.status}", "code": 0}
                    if fault.retry_after is not None:
                        error = {
                            "message": "You are being rate limited.",
                            "retry_after": _retry_after(fault.retry_after, version),
                            "global": False,
                        }
                    self._answer(handler, fault.status, error, fault.headers)
                    return
            assert answer is not None
            self._answer(handler, *answer)
        except OSError:
            handler.close_connection = True

    def _accept(
        self,
        webhook_id: str,
        query: dict[str, str],
        body: dict[str, Any],
        now: float,
        version: int | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers: dict[str, str] = {}
        if self.bucket_limit is not None:
            limit, reset_after = self.bucket_limit
            bucket = self.buckets.setdefault(webhook_id, _Bucket(limit, reset_after, now))
            if now - bucket.window_start >= bucket.reset_after:
                bucket.window_start, bucket.used = now, 0
            left = bucket.reset_after - (now - bucket.window_start)
            if bucket.used >= bucket.limit:
                self.violations += 1
                return (
                    429,
                    {
                        "message": "You are being rate limited.",
                        "retry_after": _retry_after(left, version),
                        "global": False,
                    },
                    {"Retry-After": str(max(1, round(left)))},
                )
            bucket.used += 1
            headers = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - bucket.used),
                "X-RateLimit-Reset-After": f"{left:.3f}",
            }
        message = dict(body, id=str(next(self._ids)), webhook_id=webhook_id)
        self.messages.setdefault(webhook_id, []).append(message)
        if query.get("wait") == "true":
            return 200, message, headers
        return 204, {}, headers

    @staticmethod
    def _answer(
        handler: QuietHandler,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = b"" if status == 204 else json.dumps(body).encode()
        handler.send_response(status)
        if data:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)


def _retry_after(seconds: float, version: int | None) -> float | int:
    """A 429's `retry_after` as the API version writes it: whole
    milliseconds before v8 (and unversioned), seconds from v8 on."""
    if version is None or version < 8:
        return int(seconds * 1000)
    return seconds


def _benign(fault: Fault) -> bool:
    return fault.status == 200 and not fault.drop


def _webhook_id(url: str) -> str:
    segments = [s for s in urlsplit(url).path.split("/") if s and not re.fullmatch(r"v\d+", s)]
    return segments[2] if len(segments) >= 3 else ""
