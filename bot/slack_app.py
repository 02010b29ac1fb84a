"""The Slack app: Bolt wiring for `/watch`, request verification, Socket Mode.

Handlers are thin: they acknowledge at once, then hand the command to a plain
function (`bot.commands.dispatch` behind `CommandHandler`) and send its reply
as an ephemeral response. Nothing here touches the database directly.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.reply import Reply, render, reply
from bot.slack_text import unescape_command_text

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_SKEW = 300  # seconds: Slack's replay window for signed requests

# (channel, user, text) -> reply. Runs after the ack, off the request thread.
CommandHandler = Callable[[str, str | None, str], Reply]

INVITE_HINT = (
    "I can't post in this channel, so alerts for it would never arrive. "
    "Invite me first (`/invite @newshound`), then run the command again."
)
FAILURE_REPLY = "Sorry, something went wrong on our side and nothing was changed. Please try again."


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Slack's v0 HMAC request signature, with a 5-minute replay window.

    `headers` keys are lower-case. A missing, malformed or stale signature or
    timestamp is simply invalid (never an exception).
    """
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not secret or not timestamp or not signature:
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > MAX_SKEW:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


DIRECT_MESSAGE_REPLY = (
    "Alerts can't be posted in direct or group messages. "
    "Run `/watch add` in a channel instead, and invite me there (`/invite @newshound`)."
)
MISSING_SCOPE_REPLY = (
    "I can't see this conversation (Slack answered `missing_scope`), so alerts for it "
    "might never arrive. If it is a direct or group message, use a channel instead; "
    "otherwise whoever runs newshound needs to add the `channels:read` and `groups:read` "
    "scopes to the Slack app."
)
CHANNEL_CHECK_TTL = 600.0  # seconds a "bot can post here" answer is trusted


class ChannelCheck:
    """Can the bot post alerts in a channel? Asks `conversations.info`.

    Direct messages (IDs starting with D) and group DMs (`is_mpim`) are
    refused: the app has no `im:*`/`mpim:*` scopes, so every alert there would
    die `channel_not_found`. `missing_scope` is never taken as "allowed" (it
    is what Slack answers for a DM the app cannot read). A positive answer is
    cached for CHANNEL_CHECK_TTL, since the bot may be removed later; other
    failures (rate limits, outages) allow the command, and delivery reports
    any problem."""

    def __init__(
        self,
        client: WebClient,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = CHANNEL_CHECK_TTL,
    ) -> None:
        self.client = client
        self.clock = clock
        self.ttl = ttl
        self._ok_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, channel: str) -> str | None:
        if channel.startswith("D"):
            return DIRECT_MESSAGE_REPLY
        with self._lock:
            if self._ok_until.get(channel, 0.0) > self.clock():
                return None
        try:
            info = self.client.conversations_info(channel=channel)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in ("channel_not_found", "not_in_channel"):
                return INVITE_HINT
            if error == "missing_scope":
                return MISSING_SCOPE_REPLY
            log.warning("conversations.info for %s failed: %s", channel, error or "error")
            return None
        except Exception as exc:
            log.warning("conversations.info for %s failed: %s", channel, type(exc).__name__)
            return None
        data = info.get("channel") or {}
        if data.get("is_im") or data.get("is_mpim"):
            return DIRECT_MESSAGE_REPLY
        if data.get("is_member") is False:
            return INVITE_HINT
        with self._lock:
            self._ok_until[channel] = self.clock() + self.ttl
        return None


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    api_url: str
    signing_secret: str | None = None
    app_token: str | None = None

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)


class _DropTokenNotice(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN from the environment is unused because
    we hand it a client (which carries that same token and our base URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_TOKEN_NOTICE_FILTER = _DropTokenNotice()


def build_app(settings: SlackSettings, handle: CommandHandler) -> App:
    logging.getLogger("slack_bolt.App").addFilter(_TOKEN_NOTICE_FILTER)
    client = WebClient(token=settings.bot_token, base_url=settings.api_url)
    app = App(
        client=client,
        # HTTP requests are verified before they reach Bolt (see
        # `SlackHttpEndpoint`), so a bad request is never logged with its body.
        request_verification_enabled=False,
        signing_secret=settings.signing_secret or "unused-in-socket-mode",
        token_verification_enabled=False,
        ssl_check_enabled=False,
        url_verification_enabled=True,
    )

    @app.command("/watch")
    def on_watch(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()  # first: Slack wants an answer within 3 s
        # The work (database, Slack API, response_url) runs in a thread of its
        # own: it can block for seconds, and while it holds one of Bolt's few
        # listener threads, later commands could not even be acknowledged.
        threading.Thread(
            target=run_watch, args=(command, respond), name="watch-command", daemon=True
        ).start()

    def run_watch(command: dict[str, Any], respond: Respond) -> None:
        channel = str(command.get("channel_id") or "")
        user = command.get("user_id")
        # Slack sends `&`, `<`, `>` as entities: `/watch add AT&T` arrives as
        # `AT&amp;T`, which would be stored and never match "AT&T".
        text = unescape_command_text(str(command.get("text") or ""))
        try:
            answer = handle(channel, user, text)
        except Exception:
            log.exception("/watch failed in %s", channel)
            answer = reply(FAILURE_REPLY, ok=False)
        try:
            respond(text=render(answer, "slack"), response_type="ephemeral")
        except Exception as exc:
            log.warning("could not send the /watch reply: %s", type(exc).__name__)

    return app


def is_ssl_check(headers: Mapping[str, str], body: bytes) -> bool:
    """Slack's certificate check: a form post with `ssl_check=1` (and a
    token, no signature). Bolt answers it the same way, before verification
    (slack_bolt/middleware/ssl_check/ssl_check.py: `_is_ssl_check_request`)."""
    if "json" in headers.get("content-type", "") or len(body) > 4096:
        return False
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        return False
    return fields.get("ssl_check") == ["1"]


class SlackHttpEndpoint:
    """POST /slack/events: verify the signature, then let Bolt dispatch."""

    def __init__(
        self, app: App, signing_secret: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.signing_secret = signing_secret
        self.clock = clock

    def handle(
        self, headers: Mapping[str, str], body: bytes, query: str
    ) -> tuple[int, dict[str, str], bytes]:
        if is_ssl_check(headers, body):
            # Slack checks the certificate when the app's URL is saved, with an
            # unsigned request; it is answered with an empty 200 and nothing runs.
            return 200, {"content-type": "text/plain"}, b""
        if not verify_signature(self.signing_secret, headers, body, self.clock()):
            log.info("rejected a Slack request with a bad, missing or stale signature")
            return 401, {"content-type": "application/json"}, b'{"error":"invalid request"}'
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, {"content-type": "text/plain"}, b"bad request"
        try:
            request = BoltRequest(
                body=text, query=query, headers={k: [v] for k, v in headers.items()}
            )
        except (ValueError, AttributeError, TypeError, RecursionError):
            # Bolt parses the body here and raises on JSON that is not an
            # object (or a form whose `payload` is not one): a bad request.
            return 400, {"content-type": "text/plain"}, b"bad request"
        response = self.app.dispatch(request)
        return (
            response.status,
            response.first_headers_without_set_cookie(),
            response.body.encode("utf-8"),
        )


CONNECTED_POLL = 0.5  # seconds between checks for a Socket Mode connection


class SocketModeRunner:
    """Keeps a Socket Mode connection up (builtin client, no extra deps).

    The app's WebClient (base URL from SLACK_API_URL) is used for
    `apps.connections.open` too.
    """

    def __init__(self, app: App, app_token: str, retry_every: float = 10.0) -> None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self.handler = SocketModeHandler(app, app_token=app_token, web_client=app.client)
        self.retry_every = retry_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="socket-mode", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.handler.connect()
            except Exception as exc:  # e.g. apps.connections.open failed
                log.warning(
                    "Socket Mode connection failed (%s); retrying in %.0fs",
                    type(exc).__name__,
                    self.retry_every,
                )
                self._stop.wait(self.retry_every)
                continue
            # connect() also returns when the websocket could not be opened (the
            # SDK logs that and its monitor keeps reconnecting): report the
            # connection only once it is really up.
            if not self.connected:
                log.warning("Socket Mode is not connected yet; the Slack client keeps retrying")
            while not self.connected:
                if self._stop.wait(CONNECTED_POLL):
                    return
            log.info("Socket Mode connected")
            return

    @property
    def connected(self) -> bool:
        try:
            return bool(self.handler.client.is_connected())
        except Exception:
            return False

    def close(self) -> None:
        self._stop.set()
        try:
            self.handler.close()
        except Exception as exc:
            log.debug("closing Socket Mode: %s", type(exc).__name__)
