"""`POST /discord/interactions`: Discord's `/watch` command over HTTP.

Following discord-api-docs developers/interactions/receiving-and-responding.mdx
and overview.mdx ("Setting Up an Endpoint"):

* every request is verified first: Ed25519 signature `X-Signature-Ed25519`
  over `X-Signature-Timestamp` + raw body with the application's public key
  (PyNaCl). Missing, bad or stale (over 5 minutes) → 401 and nothing else
  happens; Discord sends invalid ones on purpose and drops endpoints that
  accept them;
* PING (type 1) → `{"type": 1}`;
* APPLICATION_COMMAND (type 2) for `/watch`: `help` (and anything unknown) is
  answered at once (type 4); everything else touches the database or
  Discord's API, so it answers DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE (type 5)
  within the 3 seconds and, once that answer is out, edits it with
  `PATCH {DISCORD_API_URL}/webhooks/{application_id}/{token}/messages/@original`.
  Every reply is ephemeral (flags 64) and mentions nobody.

The command logic is bot/commands.py, shared with Slack and the CLI; this
module only parses the interaction and renders the reply as Discord markdown.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from bot.commands import help_reply
from bot.reply import Code, Reply, ReplyBuilder, render, reply

log = logging.getLogger(__name__)

INTERACTIONS_PATH = "/discord/interactions"
MAX_SKEW = 300  # seconds a signed timestamp may differ from our clock
EPHEMERAL = 1 << 6
PING, APPLICATION_COMMAND = 1, 2
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE = 1, 4, 5
SUBCOMMAND, STRING = 1, 3
COMMAND_NAME = "watch"
CONTENT_LIMIT = 2000  # characters in a message's content
NO_MENTIONS: dict[str, list[str]] = {"parse": []}

# Permission bits (discord-api-docs developers/topics/permissions.mdx).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
SEND_MESSAGES_IN_THREADS = 1 << 38
THREAD_TYPES = (10, 11, 12)

SUBCOMMANDS = ("add", "remove", "list", "help", "test", "feeds")
WITH_QUERY = ("add", "remove", "test")

FAILURE_REPLY = "Sorry, something went wrong on our side and nothing was changed. Please try again."
DM_REPLY = (
    "Use /watch in a server channel: it watches terms for the channel it is typed in, "
    "and newshound posts alerts only to server channels."
)

# (channel, user, subcommand, query) -> reply. Runs after the deferral is out.
DiscordHandler = Callable[[str, str | None, str, str], Reply]
Response = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class DiscordSettings:
    public_key: str
    application_id: str | None
    api_url: str
    bot_token: str | None


def verify_signature(
    public_key: VerifyKey, headers: Mapping[str, str], body: bytes, now: float
) -> bool:
    """Discord's Ed25519 request signature. Never raises: anything missing,
    malformed or stale is simply invalid. `headers` keys are lower-case."""
    signature = headers.get("x-signature-ed25519", "")
    timestamp = headers.get("x-signature-timestamp", "")
    if not signature or not timestamp or len(signature) != 128:
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > MAX_SKEW:
        return False
    try:
        public_key.verify(timestamp.encode() + body, bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        return False
    return True


class BadPublicKey(ValueError):
    """DISCORD_PUBLIC_KEY is not an Ed25519 public key."""


def load_public_key(hex_key: str) -> VerifyKey:
    """The application's public key from DISCORD_PUBLIC_KEY (64 hex digits).
    Raises BadPublicKey with a message that names the variable."""
    try:
        raw = bytes.fromhex(hex_key.strip())
        if len(raw) != 32:
            raise ValueError
        return VerifyKey(raw)
    except ValueError:
        raise BadPublicKey(
            "DISCORD_PUBLIC_KEY must be the application's public key: 64 hex digits "
            "(Developer Portal → General Information)"
        ) from None


def _json(status: int, data: dict[str, Any]) -> Response:
    return status, {"content-type": "application/json"}, json.dumps(data).encode()


def _message(text: str) -> dict[str, Any]:
    return {
        "content": _within(text, CONTENT_LIMIT),
        "flags": EPHEMERAL,
        "allowed_mentions": NO_MENTIONS,
    }


def _within(text: str, limit: int) -> str:
    """Whole lines up to `limit` characters (Discord refuses longer content)."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    note = "… (more left out)"
    for line in text.splitlines():
        if size + len(line) + 1 > limit - len(note) - 1:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join([*kept, note])[:limit]


@dataclass(frozen=True)
class Invocation:
    """A parsed `/watch` interaction."""

    token: str
    channel: str | None  # "discord:<channel ID>", None outside a server
    user: str | None
    subcommand: str
    query: str
    app_permissions: int | None
    channel_type: int | None
    # The (signed) interaction names its application: its token edits the
    # answer under that ID, so DISCORD_APPLICATION_ID is only a fallback.
    application_id: str | None = None


def parse_invocation(data: dict[str, Any]) -> Invocation | str:
    """The interaction as an Invocation, or why it is not a usable `/watch`."""
    command = data.get("data")
    if not isinstance(command, dict) or command.get("name") != COMMAND_NAME:
        return "unknown command"
    token = data.get("token")
    if not isinstance(token, str) or not token:
        return "interaction without a token"
    # Signed, but still checked shape by shape: a field of an unexpected type
    # is a bad request, never an exception.
    options = command.get("options")
    first: Any = options[0] if isinstance(options, list) and options else None
    if not isinstance(first, dict):
        first = {}
    sub = first.get("name") if isinstance(first.get("name"), str) else ""
    query = ""
    inner = first.get("options") if first.get("type") == SUBCOMMAND else None
    for option in inner if isinstance(inner, list) else []:
        if isinstance(option, dict) and option.get("name") == "query":
            value = option.get("value")
            query = value if isinstance(value, str) else ""
    member = data.get("member") if isinstance(data.get("member"), dict) else None
    user_obj = (member or {}).get("user") or data.get("user") or {}
    user = str(user_obj.get("id")) if isinstance(user_obj, dict) and user_obj.get("id") else None
    channel_id = str(data.get("channel_id") or "")
    in_server = bool(data.get("guild_id")) and channel_id.isascii() and channel_id.isdigit()
    app_id = str(data.get("application_id") or "")
    permissions = data.get("app_permissions")
    channel_info = data.get("channel") if isinstance(data.get("channel"), dict) else {}
    channel_type = channel_info.get("type") if isinstance(channel_info, dict) else None
    return Invocation(
        token=token,
        channel=f"discord:{channel_id}" if in_server else None,
        user=user,
        subcommand=sub.lower(),
        query=query.strip(),
        app_permissions=int(str(permissions)) if str(permissions or "").isdigit() else None,
        channel_type=channel_type if isinstance(channel_type, int) else None,
        application_id=app_id if app_id.isascii() and app_id.isdigit() else None,
    )


def missing_permissions(invocation: Invocation) -> str | None:
    """What the bot lacks to post alerts where the command was typed, from
    the interaction's `app_permissions` (None when it has all it needs)."""
    if invocation.app_permissions is None:
        return None
    send = SEND_MESSAGES_IN_THREADS if invocation.channel_type in THREAD_TYPES else SEND_MESSAGES
    needed = {
        VIEW_CHANNEL: "View Channel",
        send: "Send Messages in Threads" if send == SEND_MESSAGES_IN_THREADS else "Send Messages",
        EMBED_LINKS: "Embed Links",
    }
    lacking = [name for bit, name in needed.items() if not invocation.app_permissions & bit]
    if not lacking:
        return None
    return (
        "I can't post alerts in this channel: I lack the permission"
        + ("s " if len(lacking) > 1 else " ")
        + ", ".join(lacking)
        + ". Ask a server admin to grant it to the newshound role here, then try again."
    )


class DiscordInteractions:
    """The endpoint: verify, parse, answer or defer, then edit the answer."""

    def __init__(
        self,
        settings: DiscordSettings,
        handle: DiscordHandler,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_command = on_command  # metrics: every /watch, answered at once or not
        self.key = load_public_key(settings.public_key)
        self.handle_command = handle
        self.clock = clock
        self.client = httpx.Client(timeout=timeout, trust_env=False)

    def handle(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, Callable[[], None] | None]:
        """(status, headers, body, work to start once the answer is sent)."""
        if not verify_signature(self.key, headers, body, self.clock()):
            log.info("rejected a Discord request with a bad, missing or stale signature")
            return (*_json(401, {"error": "invalid request signature"}), None)
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):  # Recursion: absurd nesting
            return (*_json(400, {"error": "body is not JSON"}), None)
        if not isinstance(data, dict):
            return (*_json(400, {"error": "body is not a JSON object"}), None)
        kind = data.get("type")
        if isinstance(kind, bool) or not isinstance(kind, int):  # `true == 1` is no PING
            return (*_json(400, {"error": f"unsupported interaction type {kind!r}"}), None)
        if kind == PING:
            return (*_json(200, {"type": PONG}), None)
        if kind != APPLICATION_COMMAND:
            return (*_json(400, {"error": f"unsupported interaction type {kind!r}"}), None)
        invocation = parse_invocation(data)
        if isinstance(invocation, str):
            return (*_json(400, {"error": invocation}), None)
        if self.on_command is not None:
            self.on_command(invocation.subcommand or "help")
        immediate = self._immediate(invocation)
        if immediate is not None:
            text = render(immediate, "discord")
            return (*_json(200, {"type": CHANNEL_MESSAGE, "data": _message(text)}), None)
        deferred = {"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": EPHEMERAL}}
        return (*_json(200, deferred), lambda: self._start(invocation))

    def _immediate(self, invocation: Invocation) -> Reply | None:
        """Replies that need neither the database nor Discord's API."""
        if invocation.channel is None:
            return reply(DM_REPLY, ok=False)
        sub = invocation.subcommand
        if sub not in SUBCOMMANDS:
            b = ReplyBuilder().line("Unknown command ", Code(sub), ".")
            return b.extend(help_reply()).build(ok=False)
        if sub == "help":
            return help_reply()
        if sub == "add":
            lacking = missing_permissions(invocation)
            return reply(lacking, ok=False) if lacking else None
        return None

    def _start(self, invocation: Invocation) -> None:
        threading.Thread(
            target=self._run, args=(invocation,), name="discord-command", daemon=True
        ).start()

    def _run(self, invocation: Invocation) -> None:
        assert invocation.channel is not None
        try:
            answer = self.handle_command(
                invocation.channel, invocation.user, invocation.subcommand, invocation.query
            )
        except Exception:
            log.exception("/watch failed in %s", invocation.channel)
            answer = reply(FAILURE_REPLY, ok=False)
        self.edit_original(invocation.token, render(answer, "discord"), invocation.application_id)

    def edit_original(self, token: str, text: str, application_id: str | None = None) -> None:
        app_id = application_id or self.settings.application_id
        if not app_id:
            log.warning("cannot send the /watch reply: DISCORD_APPLICATION_ID is not set")
            return
        url = f"{self.settings.api_url}/webhooks/{app_id}/{token}/messages/@original"
        body = {"content": _within(text, CONTENT_LIMIT), "allowed_mentions": NO_MENTIONS}
        for attempt in range(3):
            try:
                response = self.client.patch(url, json=body)
            except httpx.HTTPError as exc:
                log.warning("could not send the /watch reply: %s", type(exc).__name__)
                return
            if response.status_code == 429 and attempt < 2:
                time.sleep(min(5.0, _retry_after_seconds(response)))
                continue
            if response.status_code == 404 and attempt == 0:
                # Unknown Webhook (10015): Discord may not have registered the
                # deferred answer yet when the edit arrives; try once more.
                time.sleep(1.0)
                continue
            if response.status_code >= 300:
                log.warning("Discord refused the /watch reply (HTTP %d)", response.status_code)
            return

    def close(self) -> None:
        self.client.close()


CHANNEL_CHECK_TTL = 600.0  # seconds a "bot can see this channel" answer is trusted


class DiscordChannelCheck:
    """Can the bot post alerts in a channel? `GET /channels/{id}` with the
    bot token (discord-api-docs developers/resources/channel.mdx, Get
    Channel): 403/404 mean it cannot see the channel. A positive answer is
    cached for CHANNEL_CHECK_TTL (the bot may be removed later, as the Slack
    check assumes too); an unknown one (network trouble, 5xx) lets the
    command through."""

    def __init__(
        self,
        settings: DiscordSettings,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = CHANNEL_CHECK_TTL,
    ) -> None:
        self.settings = settings
        self.client = httpx.Client(timeout=timeout, trust_env=False)
        self.clock = clock
        self.ttl = ttl
        self._ok_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, channel: str) -> str | None:
        channel_id = channel.removeprefix("discord:")
        if not self.settings.bot_token:
            return (
                "newshound has no Discord bot token (DISCORD_BOT_TOKEN), so it could not "
                "post alerts here. Ask whoever runs newshound to set it."
            )
        with self._lock:
            if self._ok_until.get(channel_id, 0.0) > self.clock():
                return None
        try:
            response = self.client.get(
                f"{self.settings.api_url}/channels/{channel_id}",
                headers={"Authorization": f"Bot {self.settings.bot_token}"},
            )
        except httpx.HTTPError as exc:
            log.warning("checking Discord channel %s failed: %s", channel_id, type(exc).__name__)
            return None
        if response.status_code in (403, 404):
            return (
                "I can't see this channel, so alerts for it would never arrive. Invite the "
                "newshound bot to the server and give it View Channel, Send Messages and "
                "Embed Links here, then run the command again."
            )
        if response.status_code == 401:
            return (
                "Discord refused newshound's bot token (DISCORD_BOT_TOKEN), so it could not "
                "post alerts here. Ask whoever runs newshound to fix it."
            )
        if response.status_code == 200:
            with self._lock:
                self._ok_until[channel_id] = self.clock() + self.ttl
        return None

    def close(self) -> None:
        self.client.close()


def _retry_after_seconds(response: httpx.Response) -> float:
    try:
        value = float(response.json().get("retry_after", 1.0))
    except (ValueError, AttributeError, TypeError):
        return 1.0
    return max(0.0, value) if value == value else 1.0
