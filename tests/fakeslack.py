"""A fake Slack Web API over real HTTP on 127.0.0.1.

Records every call, answers like Slack, and can inject failures: queue
`fail_next(...)` responses (HTTP status, Slack error, Retry-After, delay,
dropped connection) for a method. Point `SLACK_API_URL` at `api_url`.
chat.postMessage answers `invalid_blocks` like Slack when a message has more
than 50 blocks or a section/context text longer than 3000 characters.

Threads: a chat.postMessage with `thread_ts` is a reply in that message's
thread. Like Slack, such a reply is left out of conversations.history
("conversations.history method returns only parent messages", unless
`reply_broadcast`; https://docs.slack.dev/reference/methods/conversations.replies)
and a `thread_ts` that names no message of the channel is refused with
`thread_not_found` (https://api.slack.com/methods/chat.postMessage: thread_ts
"Provide another message's ts value to make this message a reply").
`replies(channel, ts)` returns a thread's replies.

Slash-command replies: hand out `response_url()` addresses; what the app
posts there is recorded as calls with method "response_url". Socket Mode:
set `socket_url` and `apps.connections.open` hands it out.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from loopback import LoopbackServer, QuietHandler


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() when received
    path: str = ""
    status: int = 200  # the HTTP status answered (0: connection dropped)


@dataclass
class Fault:
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drop: bool = False  # close the connection without answering
    # Accept the message first, then misbehave (delay/drop/error): the
    # client cannot tell whether it arrived.
    accept: bool = False


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    posted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail_every: dict[str, tuple[int, Fault]] = field(default_factory=dict)
    counter: int = 0
    not_member: set[str] = field(default_factory=set)  # conversations.info is_member false
    missing: set[str] = field(default_factory=set)  # conversations.info channel_not_found
    group_dms: set[str] = field(default_factory=set)  # multi-person DMs (G...)
    socket_url: str | None = None
    # conversations.history at Slack's tier for non-Marketplace apps:
    # (messages per page at most, seconds between requests); None: unlimited.
    history_tier: tuple[int, float] | None = None
    history_last: float = 0.0
    last_ts: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeSlack(LoopbackServer):
    def __init__(self) -> None:
        self.state = _State()
        state = self.state

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                query = self.path.split("?", 1)[1] if "?" in self.path else ""
                self._handle({k: v[0] for k, v in parse_qs(query).items()})

            def do_POST(self) -> None:
                raw = self.read_body()
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    args = json.loads(raw or b"{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                self._handle(args)

            def _handle(self, args: dict[str, Any]) -> None:
                method = self.path.rsplit("/", 1)[-1].split("?")[0]
                if self.path.startswith("/commands/"):
                    method = "response_url"
                call = Call(method, args, dict(self.headers), time.monotonic(), self.path)
                with state.lock:
                    state.calls.append(call)
                    fault = _next_fault(state, method) or _history_throttle(state, method)
                    answer = None
                    if fault is None or fault.accept or _benign(fault):
                        answer = _respond(state, method, args)
                    if fault is not None and not _benign(fault):
                        call.status = 0 if fault.drop else fault.status
                try:
                    if fault is not None:
                        if fault.delay:
                            time.sleep(fault.delay)
                        if fault.drop:
                            self.close_connection = True
                            self.connection.shutdown(2)
                            return
                        if fault.status != 200 or fault.error:
                            body = {"ok": False, "error": fault.error or "internal_error"}
                            headers = {}
                            if fault.retry_after is not None:
                                headers["Retry-After"] = _seconds(fault.retry_after)
                            self._answer(fault.status, body, headers)
                            return
                    assert answer is not None
                    self._answer(200, answer)
                except OSError:  # the client gave up (timeout) and went away
                    self.close_connection = True

            def _answer(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        super().__init__(Handler)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, key: str) -> str:
        """A slash command's response_url; replies to it are found by `key`."""
        return f"http://127.0.0.1:{self.port}/commands/T1/{key}"

    def responses(self, key: str | None = None) -> list[Call]:
        return [
            c for c in self.calls("response_url") if key is None or c.path.rsplit("/", 1)[-1] == key
        ]

    def fail_next(self, method: str, *faults: Fault) -> None:
        with self.state.lock:
            self.state.faults.setdefault(method, deque()).extend(faults)

    def fail_every(self, method: str, n: int, fault: Fault) -> None:
        with self.state.lock:
            self.state.fail_every[method] = (n, fault)

    def calls(self, method: str | None = None) -> list[Call]:
        with self.state.lock:
            return [c for c in self.state.calls if method is None or c.method == method]

    def inject(self, channel: str, message: dict[str, Any]) -> str:
        """Put a message into a channel's history as if someone posted it; returns its ts."""
        with self.state.lock:
            stored = dict(message, ts=_next_ts(self.state))
            self.state.posted.setdefault(channel, []).append(stored)
            return str(stored["ts"])

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The replies in the thread of message `ts`, oldest first."""
        with self.state.lock:
            return [m for m in self.state.posted.get(channel, []) if m.get("thread_ts") == ts]

    def posted_outbox_ids(self) -> list[int]:
        """Outbox ids (from message metadata) of every accepted message, in order."""
        return [i for i in (outbox_id_of(m) for m in self.posts()) if i is not None]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages Slack accepted (not the failed attempts)."""
        with self.state.lock:
            found = []
            for ch, messages in self.state.posted.items():
                if channel is None or ch == channel:
                    found.extend(messages)
            return found


def escape_like_slack(text: str) -> str:
    """Slash-command text as Slack sends it: `&`, `<` and `>` as `&amp;`,
    `&lt;` and `&gt;`, the same escaping as message text
    (https://api.slack.com/reference/surfaces/formatting#escaping; Bolt hands
    `command["text"]` over undecoded)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def outbox_id_of(message: dict[str, Any]) -> int | None:
    """The newshound outbox id in a posted message's metadata."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != "newshound_alert":
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    return None if value is None else int(value)


def _next_fault(state: _State, method: str) -> Fault | None:
    queue = state.faults.get(method)
    if queue:
        return queue.popleft()
    every = state.fail_every.get(method)
    if every:
        n, fault = every
        count = sum(1 for c in state.calls if c.method == method)
        if count % n == 0:
            return fault
    return None


# The scopes slack-manifest.yaml requests.
BOT_SCOPES = "chat:write,commands,channels:read,groups:read,channels:history,groups:history"


def _dm_scope(state: _State, channel: str) -> str | None:
    """The scope conversations.info needs for a DM or group DM, which the
    app lacks: Slack answers `missing_scope` with `needed` and `provided`
    (https://api.slack.com/methods/conversations.info: "missing_scope: The
    token used is not granted the specific scope permissions required";
    reading an IM takes im:read, a multi-person IM mpim:read)."""
    if channel.startswith("D"):
        return "im:read"
    if channel in state.group_dms:
        return "mpim:read"
    return None


def _history_throttle(state: _State, method: str) -> Fault | None:
    """Since 2025, apps distributed outside the Marketplace may call
    conversations.history once a minute and get at most 15 messages a page
    (https://api.slack.com/changelog/2025-05-terms-rate-limit-update-and-faq:
    "rate limit of 1 request per minute" and "maximum and default limit
    value of 15"); a faster call is answered 429 with Retry-After."""
    if method != "conversations.history" or state.history_tier is None:
        return None
    _page, interval = state.history_tier
    now = time.monotonic()
    wait = state.history_last + interval - now
    if wait > 0:
        return Fault(status=429, error="ratelimited", retry_after=round(wait, 3) or 0.001)
    state.history_last = now
    return None


def _benign(fault: Fault) -> bool:
    """Only slow: the call succeeds after the delay."""
    return fault.status == 200 and not fault.error and not fault.drop


def _seconds(value: float) -> str:
    """Retry-After as Slack writes it (whole seconds); fractions pass through
    so tests and benchmarks need not wait whole seconds."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _next_ts(state: _State) -> str:
    """Message timestamps like Slack's: wall-clock seconds, unique, increasing."""
    state.counter += 1
    state.last_ts = max(time.time(), state.last_ts + 0.000001)
    return f"{state.last_ts:.6f}"


def _history(state: _State, args: dict[str, Any]) -> dict[str, Any]:
    """conversations.history: newest first, `oldest`/`latest` bounds, cursor pages."""
    oldest = float(args.get("oldest") or 0)
    latest = float(args.get("latest") or "inf")
    limit = int(args.get("limit") or 100)
    if state.history_tier is not None:
        limit = min(limit, state.history_tier[0])
    start = int(args.get("cursor") or 0)
    inclusive = str(args.get("inclusive")).lower() in ("1", "true")

    def within(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return oldest < ts < latest

    messages = [
        m
        for m in reversed(state.posted.get(str(args.get("channel")), []))
        if within(float(m["ts"])) and not _is_reply(m)
    ]
    page = messages[start : start + limit]
    has_more = start + limit < len(messages)
    return {
        "ok": True,
        "messages": page,
        "has_more": has_more,
        "response_metadata": {"next_cursor": str(start + limit) if has_more else ""},
    }


def _is_reply(message: dict[str, Any]) -> bool:
    """A thread reply that was not broadcast to the channel."""
    thread_ts = message.get("thread_ts")
    broadcast = str(message.get("reply_broadcast")).lower() in ("1", "true")
    return bool(thread_ts) and thread_ts != message.get("ts") and not broadcast


def _invalid_blocks(blocks: Any) -> bool:
    """Like Slack: more than 50 blocks, or a section/context text over 3000 chars."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if not blocks:
        return False
    if len(blocks) > 50:
        return True
    for block in blocks:
        texts = [block.get("text") or {}, *(block.get("elements") or [])]
        if any(len(str(t.get("text", ""))) > 3000 for t in texts if isinstance(t, dict)):
            return True
    return False


def _respond(state: _State, method: str, args: dict[str, Any]) -> dict[str, Any]:
    if method == "chat.postMessage":
        if _invalid_blocks(args.get("blocks")):
            return {"ok": False, "error": "invalid_blocks"}
        thread_ts = args.get("thread_ts")
        channel_messages = state.posted.get(str(args.get("channel")), [])
        if thread_ts and not any(m["ts"] == thread_ts for m in channel_messages):
            return {"ok": False, "error": "thread_not_found"}
        ts = _next_ts(state)
        message = dict(args)
        message["ts"] = ts
        if isinstance(message.get("metadata"), str):
            message["metadata"] = json.loads(message["metadata"])
        state.posted.setdefault(str(args.get("channel")), []).append(message)
        return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": message}
    if method == "conversations.history":
        return _history(state, args)
    if method == "auth.test":
        return {"ok": True, "user_id": "UBOT", "team_id": "T1", "bot_id": "B1"}
    if method == "conversations.info":
        channel = str(args.get("channel"))
        if channel in state.missing:
            return {"ok": False, "error": "channel_not_found"}
        needed = _dm_scope(state, channel)
        if needed:
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": BOT_SCOPES}
        member = channel not in state.not_member
        return {"ok": True, "channel": {"id": channel, "is_channel": True, "is_member": member}}
    if method == "apps.connections.open":
        if state.socket_url is None:
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True, "url": state.socket_url}
    if method == "response_url":
        return {"ok": True}
    if method == "chat.postEphemeral":
        return {"ok": True, "message_ts": "1.1"}
    return {"ok": True}
