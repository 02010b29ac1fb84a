"""A fake Discord REST API (v10) over real HTTP on 127.0.0.1, for the bot.

Webhooks have their own fake (tests/fakediscord.py); this one serves what a
bot token and an interactions endpoint use, modelled on discord-api-docs
(github.com/discord/discord-api-docs, developers/…):

* `POST /channels/{id}/messages` (resources/message.mdx, Create Message):
  `Authorization: Bot TOKEN` else 401 {"code": 0}; unknown channel 404
  {"code": 10003, "message": "Unknown Channel"}; a channel the bot may not
  post in 403 {"code": 50013, "message": "Missing Permissions"}. `nonce` is
  "integer or string … up to 25 characters"; with `enforce_nonce: true`
  "it will be checked for uniqueness in the past few minutes. If another
  message was created by the same author with the same nonce, that message
  will be returned and no new message will be created" (`nonce_window`).
  `message_reference: {"message_id"}` makes the post a reply (type 19,
  "Include to make your message a reply"); a message id the channel does
  not hold is refused with 400 {"code": 50035} unless `fail_if_not_exists`
  is false (message.mdx, Message Reference Structure: "when sending, whether
  to error if the referenced message doesn't exist instead of sending as a
  normal (non-reply) message, default true").
* `GET /channels/{id}/messages?after=&limit=` (Get Channel Messages): newest
  first, at most `limit` (≤ 100); message objects carry `author` (with
  `bot: true`) and `embeds`, and no `nonce` (it only "will appear in the
  Message Create event").
* `GET /channels/{id}` (resources/channel.mdx, Get Channel): the channel or
  403/404. `GET /users/@me` (resources/user.mdx, Get Current User): the bot.
  `other_bot_post(channel, embed)` adds a message by another bot.
* Rate limits (topics/rate-limits.mdx): a per-channel bucket for message
  posts (`bucket(limit, reset_after)`) answered with `X-RateLimit-Limit`,
  `-Remaining`, `-Reset-After`, `-Bucket`; over the limit a 429 with JSON
  `retry_after` (seconds, float), `global` and `X-RateLimit-Scope`.
  `global_limit(seconds)` answers the next post with a global 429.
* `PUT /applications/{app}/commands` and
  `PUT /applications/{app}/guilds/{guild}/commands` (interactions/
  application-commands.mdx, Bulk Overwrite …): replaces the list, answers
  it with ids.
* `PATCH /webhooks/{app}/{interaction token}/messages/@original`
  (interactions/receiving-and-responding.mdx): edits the deferred answer; a
  token Discord has not yet received an initial response for is unknown
  (404 {"code": 10015}), as is one older than 15 minutes.

`fail_next(status, count)` makes the next message posts answer `status`;
`crash_after_accept` makes the next accepted post drop the connection
after storing the message (the answer is lost, the message exists).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer, QuietHandler

BOT_TOKEN = "bot-token-SECRET"
APPLICATION_ID = "1100000000000000001"
BOT_USER_ID = "1100000000000000001"
INTERACTION_TTL = 15 * 60


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float


@dataclass
class Channel:
    id: str
    guild_id: str = "1000000000000000001"
    type: int = 0
    forbidden: bool = False  # the bot was removed / lacks the permission
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Bucket:
    limit: int
    reset_after: float
    window_start: float = 0.0
    used: int = 0


class FakeDiscordApi(LoopbackServer):
    def __init__(self, token: str = BOT_TOKEN, nonce_window: float = 300.0) -> None:
        self.lock = threading.Lock()
        self.token = token
        self.nonce_window = nonce_window
        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.nonces: dict[str, tuple[float, dict[str, Any]]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id
        self.interactions: dict[str, float] = {}  # token -> when acknowledged
        self.edits: dict[str, list[dict[str, Any]]] = {}
        self.bucket_limit: tuple[int, float] | None = None
        self.buckets: dict[str, _Bucket] = {}
        self.violations = 0  # posts that arrived while their bucket was exhausted
        self.global_until = 0.0
        self.pending_global: float | None = None
        self.faults: deque[int] = deque()
        self.drop_after_accept = 0
        self.post_delay = 0.0  # seconds every accepted post takes
        self.in_flight: dict[str, threading.Event] = {}
        self._ids = itertools.count()
        owner = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                raw = self.read_body()
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                owner._dispatch(self, parts.path, query, body)

            do_GET = do_POST = do_PUT = do_PATCH = _serve

        super().__init__(Handler, ignore_client_errors=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    # setup
    def channel(self, channel_id: str, *, type: int = 0) -> Channel:
        with self.lock:
            return self.channels.setdefault(channel_id, Channel(channel_id, type=type))

    def other_bot_post(self, channel_id: str, embeds: list[dict[str, Any]]) -> None:
        """A message by another bot (say a second newshound) in the channel."""
        with self.lock:
            self.channels[channel_id].messages.append(
                {
                    "id": self._snowflake(),
                    "channel_id": channel_id,
                    "author": {"id": "1100000000000000777", "bot": True},
                    "embeds": embeds,
                }
            )

    def forbid(self, channel_id: str) -> None:
        with self.lock:
            self.channels[channel_id].forbidden = True

    def bucket(self, limit: int, reset_after: float) -> None:
        with self.lock:
            self.bucket_limit = (limit, reset_after)

    def global_limit(self, retry_after: float) -> None:
        """The next post gets a global 429 and every post is refused for that long."""
        with self.lock:
            self.pending_global = retry_after

    def fail_next(self, status: int, count: int = 1) -> None:
        with self.lock:
            self.faults.extend([status] * count)

    def interact(self, url: str, body: bytes, headers: dict[str, str]) -> Any:
        """Send an interaction to our endpoint as Discord does; the token is
        acknowledged once our initial response has arrived (an edit that
        comes earlier waits for it, as Discord processes the callback first)."""
        from service_helpers import request

        try:
            data = json.loads(body)
        except ValueError:
            data = None
        token = str(data.get("token", "")) if isinstance(data, dict) else ""
        received = threading.Event()
        with self.lock:
            self.in_flight[token] = received
        try:
            result = request(url, data=body, headers=headers)
            if result.status == 200:
                with self.lock:
                    self.interactions[token] = time.monotonic()
        finally:
            received.set()
        return result

    # observations
    def posts(self, channel_id: str) -> list[dict[str, Any]]:
        with self.lock:
            channel = self.channels.get(channel_id)
            return list(channel.messages) if channel else []

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and fragment in c.path]

    # the API
    def _dispatch(self, handler: QuietHandler, path: str, query: dict[str, str], body: Any) -> None:
        now = time.monotonic()
        method = handler.command
        segments = [s for s in path.split("/") if s]
        with self.lock:
            self.calls.append(Call(method, path, query, body, now))
        if segments[:2] != ["api", "v10"]:
            return self._answer(handler, 404, {"message": "404: Not Found", "code": 0})
        route = segments[2:]
        if route[:1] == ["webhooks"] and method == "PATCH":
            return self._edit_original(handler, route, body, now)
        if handler.headers.get("Authorization") != f"Bot {self.token}":
            return self._answer(handler, 401, {"message": "401: Unauthorized", "code": 0})
        if route == ["users", "@me"] and method == "GET":
            return self._answer(
                handler, 200, {"id": BOT_USER_ID, "username": "newshound", "bot": True}
            )
        if route[:1] == ["applications"] and method == "PUT":
            return self._put_commands(handler, route, body)
        if route[:1] == ["channels"] and len(route) >= 2:
            with self.lock:
                channel = self.channels.get(route[1])
            if channel is None:
                return self._answer(handler, 404, {"message": "Unknown Channel", "code": 10003})
            if channel.forbidden:
                return self._answer(handler, 403, {"message": "Missing Permissions", "code": 50013})
            if len(route) == 2 and method == "GET":
                return self._answer(
                    handler,
                    200,
                    {"id": channel.id, "type": channel.type, "guild_id": channel.guild_id},
                )
            if route[2:] == ["messages"] and method == "POST":
                return self._post_message(handler, channel, body, now)
            if route[2:] == ["messages"] and method == "GET":
                return self._history(handler, channel, query)
        return self._answer(handler, 404, {"message": "404: Not Found", "code": 0})

    def _post_message(self, handler: QuietHandler, channel: Channel, body: Any, now: float) -> None:
        headers: dict[str, str] = {}
        drop = False
        with self.lock:
            if self.pending_global is not None:
                self.global_until = now + self.pending_global
                retry, self.pending_global = self.pending_global, None
                return self._answer(
                    handler,
                    429,
                    {
                        "message": "You are being rate limited.",
                        "retry_after": retry,
                        "global": True,
                    },
                    {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
                )
            if now < self.global_until:
                self.violations += 1
                return self._answer(
                    handler,
                    429,
                    {
                        "message": "You are being rate limited.",
                        "retry_after": self.global_until - now,
                        "global": True,
                    },
                    {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
                )
            if self.faults:
                status = self.faults.popleft()
                return self._answer(handler, status, {"message": f"HTTP {status}", "code": 0})
            if self.bucket_limit is not None:
                limit, reset_after = self.bucket_limit
                bucket = self.buckets.setdefault(channel.id, _Bucket(limit, reset_after, now))
                if now - bucket.window_start >= bucket.reset_after:
                    bucket.window_start, bucket.used = now, 0
                left = bucket.reset_after - (now - bucket.window_start)
                common = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Bucket": "msgbucket"}
                if bucket.used >= bucket.limit:
                    self.violations += 1
                    return self._answer(
                        handler,
                        429,
                        {
                            "message": "You are being rate limited.",
                            "retry_after": left,
                            "global": False,
                        },
                        {
                            **common,
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset-After": f"{left:.3f}",
                            "X-RateLimit-Scope": "user",
                            "Retry-After": str(max(1, round(left))),
                        },
                    )
                bucket.used += 1
                headers = {
                    **common,
                    "X-RateLimit-Remaining": str(limit - bucket.used),
                    "X-RateLimit-Reset-After": f"{left:.3f}",
                }
            if not isinstance(body, dict):
                return self._answer(
                    handler, 400, {"message": "Cannot send an empty message", "code": 50006}
                )
            nonce = body.get("nonce")
            if nonce is not None and len(str(nonce)) > 25:
                return self._answer(handler, 400, {"message": "Invalid Form Body", "code": 50035})
            reference = body.get("message_reference")
            if isinstance(reference, dict):
                known = any(m["id"] == str(reference.get("message_id")) for m in channel.messages)
                if not known and reference.get("fail_if_not_exists", True):
                    return self._answer(
                        handler,
                        400,
                        {
                            "message": "Invalid Form Body",
                            "code": 50035,
                            "errors": {
                                "message_reference": {
                                    "_errors": [
                                        {
                                            "code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                            "message": "Unknown message",
                                        }
                                    ]
                                }
                            },
                        },
                    )
                if not known:
                    reference = None
            key = f"{channel.id}:{nonce}"
            seen = self.nonces.get(key)
            if body.get("enforce_nonce") and seen is not None and now - seen[0] < self.nonce_window:
                message = seen[1]
            else:
                message = {
                    "id": self._snowflake(),
                    "channel_id": channel.id,
                    "author": {"id": BOT_USER_ID, "bot": True},
                    "content": body.get("content", ""),
                    "embeds": body.get("embeds", []),
                    "allowed_mentions": body.get("allowed_mentions"),
                    "flags": body.get("flags", 0),
                }
                if isinstance(reference, dict):
                    message["type"] = 19  # REPLY
                    message["message_reference"] = {
                        "message_id": str(reference["message_id"]),
                        "channel_id": channel.id,
                    }
                channel.messages.append(message)
                if nonce is not None:
                    self.nonces[key] = (now, message)
            if self.drop_after_accept:
                self.drop_after_accept -= 1
                drop = True
        if self.post_delay:
            time.sleep(self.post_delay)
        if drop:
            handler.close_connection = True
            handler.connection.shutdown(2)
            return None
        answer = dict(message, nonce=nonce) if nonce is not None else message
        return self._answer(handler, 200, answer, headers)

    def _history(self, handler: QuietHandler, channel: Channel, query: dict[str, str]) -> None:
        after = int(query.get("after") or 0)
        limit = min(100, int(query.get("limit") or 50))
        with self.lock:
            newer = [m for m in channel.messages if int(m["id"]) > after]
        # `after` pages start right after the given id; newest first in the page.
        page = sorted(newer, key=lambda m: int(m["id"]))[:limit]
        return self._answer(handler, 200, list(reversed(page)))

    def _put_commands(self, handler: QuietHandler, route: list[str], body: Any) -> None:
        if route[1] != APPLICATION_ID:
            return self._answer(handler, 403, {"message": "Missing Access", "code": 50001})
        scope = route[3] if len(route) == 5 and route[2] == "guilds" else "global"
        if not isinstance(body, list):
            return self._answer(handler, 400, {"message": "Invalid Form Body", "code": 50035})
        with self.lock:
            saved = [
                dict(command, id=f"12{i:017d}", application_id=APPLICATION_ID)
                for i, command in enumerate(body)
            ]
            self.commands[scope] = saved
        return self._answer(handler, 200, saved)

    def _edit_original(
        self, handler: QuietHandler, route: list[str], body: Any, now: float
    ) -> None:
        # webhooks/{application id}/{token}/messages/@original
        if len(route) != 5 or route[1] != APPLICATION_ID or route[3:] != ["messages", "@original"]:
            return self._answer(handler, 404, {"message": "Unknown Webhook", "code": 10015})
        token = route[2]
        with self.lock:
            waiting = self.in_flight.get(token)
        if waiting is not None:
            waiting.wait(3.0)
        with self.lock:
            acked = self.interactions.get(token)
            if acked is None or now - acked > INTERACTION_TTL:
                return self._answer(handler, 404, {"message": "Unknown Webhook", "code": 10015})
            self.edits.setdefault(token, []).append(body)
        return self._answer(handler, 200, {"id": "1", "content": (body or {}).get("content", "")})

    @staticmethod
    def _answer(
        handler: QuietHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            handler.close_connection = True

    def _snowflake(self) -> str:
        """A message id as Discord makes them: milliseconds since 2015 in the
        high bits (developers/reference.mdx, Snowflakes), a counter below."""
        millis = int(time.time() * 1000) - 1_420_070_400_000
        return str((millis << 22) | (next(self._ids) & 0xFFF))

    def wait_for_edit(self, token: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                edits = self.edits.get(token)
                if edits:
                    return edits[-1]
            time.sleep(0.01)
        raise AssertionError(f"no edit of the answer to interaction {token} within {timeout}s")
