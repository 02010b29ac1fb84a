"""Discord bot delivery: `discord:<channel ID>` through the REST API.

`POST {DISCORD_API_URL}/channels/{id}/messages` with the bot token, the same
embed as webhooks (bot/sinks/discord.py) and `allowed_mentions: {"parse": []}`.

Exactly once, also across a crash or a lost answer:

* every post carries `nonce` = "nh<database tag><outbox id>" with `enforce_nonce: true`:
  Discord returns the message it already created for that nonce instead of
  posting again ("If another message was created by the same author with the
  same nonce, that message will be returned and no new message will be
  created", discord-api-docs developers/resources/message.mdx, Create Message);
* that check only spans "the past few minutes", so before resending a
  message whose earlier attempt may have arrived, `find_posted` reads the
  channel's history since that attempt (Read Message History) and looks for
  our own message (author = `GET /users/@me`) with the same embed (one
  alert per channel and story, so the same title and link there is that
  alert).

Rate limits (discord-api-docs developers/topics/rate-limits.mdx): limits
are per route and per top-level resource (the channel); `X-RateLimit-Bucket`
names the route's bucket "non-inclusive of top-level resources". We call two
routes per channel (post, history), so each (route, channel) pair is one
gate, `rate_key` / `lookup_key`, keyed so every process computes the same
name before its first call (a key learned from the header would differ
between a process that has seen it and one that has not); the gates live in
the database, so every process and restart shares them.
`X-RateLimit-Remaining: 0` closes a gate for `X-RateLimit-Reset-After`
seconds; a 429 closes it for `retry_after`, or closes the bot-wide global
gate when the answer says `global: true` / `X-RateLimit-Scope: global`.
401/403/404 mark the channel broken (bot removed, permission missing,
channel deleted): Discord bans IPs that keep sending invalid requests.

A follow-up ("Also reported by", SPEC §8) is a reply to its alert:
`message_reference: {"message_id": <the alert's id>}` on Create Message
("Include to make your message a reply", discord-api-docs
developers/resources/message.mdx; `fail_if_not_exists` true: a deleted
alert makes the reply fail rather than post it loose) and
`allowed_mentions.replied_user` false, so replying pings nobody.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.channels import discord_channel_id
from bot.messages import FOLLOWUP
from bot.records import OutboxRow
from bot.sinks.base import Delivered, DeliveryError, HistoryLookup
from bot.sinks.discord import _bucket_wait, _message_id, format_message, raise_for_post_status

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://discord.com/api/v10"
GLOBAL_GATE = "discord:global"
DISCORD_EPOCH_MS = 1_420_070_400_000
CLOCK_SKEW = 120.0  # seconds: look this much further back in the history
HISTORY_PAGES = 5  # pages of 100 messages read when looking for a lost post


# Why a channel is paused, by the status Discord answered.
REFUSED = {
    401: "Discord refused the bot token (HTTP 401): check DISCORD_BOT_TOKEN",
    403: "the bot lacks permission there (HTTP 403): it needs View Channel, "
    "Send Messages and Embed Links",
    404: "the channel no longer exists or the bot cannot see it (HTTP 404)",
}


def nonce_for(outbox_id: int, tag: str = "") -> str:
    """The message's nonce: stable per outbox row of one database (`tag`,
    6 characters), at most 25 characters (Discord's limit)."""
    return f"nh{tag}{outbox_id}"


def snowflake_at(epoch: float) -> int:
    """The smallest snowflake created at `epoch` (for `after=` in history reads)."""
    return max(0, int(epoch * 1000) - DISCORD_EPOCH_MS) << 22


def api_base(env_url: str | None) -> str:
    return (env_url or "").strip().rstrip("/") or DEFAULT_API_URL


class DiscordBotSink:
    def __init__(
        self, token: str | None, api_url: str | None, timeout: float = 15.0, nonce_tag: str = ""
    ) -> None:
        self.token = (token or "").strip()
        self.nonce_tag = nonce_tag
        self._bot_user: str | None = None  # our own user id, asked once
        self.api_url = api_base(api_url)
        self.client = httpx.Client(timeout=timeout, trust_env=False)

    # -- gates and identity ----------------------------------------------

    def rate_key(self, channel: str) -> str:
        """The per-route bucket of POST /channels/{id}/messages for this channel."""
        return f"discord:channel:{discord_channel_id(channel) or channel}:messages"

    def lookup_key(self, channel: str) -> str:
        """GET /channels/{id}/messages has a bucket of its own."""
        return f"discord:channel:{discord_channel_id(channel) or channel}:history"

    def shared_gate_keys(self, channel: str) -> list[str]:
        return [GLOBAL_GATE]

    def pause_key(self, channel: str) -> str:
        """What a 401/403/404 pauses: this channel (README "Delivery guarantees")."""
        return channel

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bot {self.token}", "User-Agent": "newshound (bot delivery)"}

    def _channel_id(self, channel: str) -> str:
        channel_id = discord_channel_id(channel)
        if channel_id is None:
            raise DeliveryError(f"{channel} is not a Discord channel ID", permanent=True)
        if not self.token:
            # The operator can fix this: the alert waits (SPEC §4, nothing lost).
            raise DeliveryError("DISCORD_BOT_TOKEN is not set")
        return channel_id

    # -- sending -----------------------------------------------------------

    def send(
        self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int
    ) -> Delivered | None:
        channel_id = self._channel_id(channel)
        body = format_message(kind, payload)
        if kind == FOLLOWUP:
            parent = payload.get("parent_message")
            if not parent:
                raise DeliveryError(
                    "the alert this follows up has no Discord message id to reply to",
                    permanent=True,
                )
            body["message_reference"] = {"message_id": str(parent), "fail_if_not_exists": True}
            body["allowed_mentions"] = {"parse": [], "replied_user": False}
        body["nonce"] = nonce_for(outbox_id, self.nonce_tag)
        body["enforce_nonce"] = True
        url = f"{self.api_url}/channels/{channel_id}/messages"
        try:
            response = self.client.post(url, json=body, headers=self._headers())
        except httpx.ConnectError:
            raise DeliveryError("connection error: ConnectError") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"connection error: {type(exc).__name__}", maybe_delivered=True
            ) from None
        self._check(response, channel)
        return Delivered(_message_id(response), wait=_bucket_wait(response.headers))

    def _check(self, response: httpx.Response, channel: str) -> None:
        refused = REFUSED.get(response.status_code, "")
        raise_for_post_status(
            response, refused=refused, pause_key=self.pause_key(channel), global_gate=GLOBAL_GATE
        )

    # -- crash recovery ------------------------------------------------------

    def find_sent(
        self,
        channel: str,
        outbox_id: int,
        since: float | None = None,
        lookup: HistoryLookup | None = None,
    ) -> str | None:
        # The message's content is needed to recognise it: see find_posted.
        return None

    def find_posted(self, message: OutboxRow, lookup: HistoryLookup) -> str | None:
        """The id of our message for this outbox row if an earlier attempt
        arrived: our own message in the channel since `lookup.since` with the
        same embed (title, link, timestamp). Reads the history oldest first
        from `lookup.cursor` (a message id), advancing it and counting
        `lookup.tries`, so a rate limit or restart resumes where it stopped.
        Raises DeliveryError when the history cannot be read now."""
        channel_id = self._channel_id(message.channel)
        wanted = _embed_key(format_message(message.kind, message.payload))
        since = lookup.since
        if lookup.cursor is None:
            lookup.cursor = str(snowflake_at(since - CLOCK_SKEW) if since else 0)
        url = f"{self.api_url}/channels/{channel_id}/messages"
        for _ in range(HISTORY_PAGES):
            lookup.tries += 1
            try:
                response = self.client.get(
                    url, params={"after": lookup.cursor, "limit": "100"}, headers=self._headers()
                )
            except httpx.HTTPError as exc:
                raise DeliveryError(f"connection error: {type(exc).__name__}") from None
            if response.status_code == 403:
                # No Read Message History: the nonce still guards a resend
                # within Discord's few-minute window.
                raise DeliveryError("cannot read the channel history (HTTP 403)", permanent=True)
            try:
                self._check(response, message.channel)
            except DeliveryError as exc:
                if exc.retry_after is not None and exc.gate_key is None:
                    exc.gate_key = self.lookup_key(message.channel)  # the history route's own
                raise
            try:
                page = response.json()
            except ValueError:
                raise DeliveryError("Discord sent an unreadable history page") from None
            items = (
                [item for item in page if isinstance(item, dict)] if isinstance(page, list) else []
            )
            for item in items:
                if item.get("nonce") == nonce_for(message.id, self.nonce_tag):
                    return str(item.get("id"))
                if (
                    wanted is not None
                    and self._is_us(item.get("author"))
                    and _embed_key(item) == wanted
                ):
                    return str(item.get("id"))
            if len(items) < 100:
                return None  # read up to now: it never arrived
            lookup.cursor = str(max(int(str(item.get("id", 0))) for item in items))
        return None

    def _is_us(self, author: Any) -> bool:
        """Whether a message's author is this bot (`GET /users/@me`, asked
        once); any bot while that cannot be asked."""
        if not isinstance(author, dict):
            return False
        if self._bot_user is None:
            try:
                response = self.client.get(f"{self.api_url}/users/@me", headers=self._headers())
                if response.status_code == 200:
                    self._bot_user = str(response.json().get("id") or "") or None
            except (httpx.HTTPError, ValueError, AttributeError):
                pass
        if self._bot_user is None:
            return bool(author.get("bot"))
        return str(author.get("id")) == self._bot_user

    def close(self) -> None:
        self.client.close()


def _embed_key(message: dict[str, Any]) -> tuple[str, str, str] | None:
    embeds = message.get("embeds") or []
    if not embeds or not isinstance(embeds[0], dict):
        return None
    embed = embeds[0]
    stamp = str(embed.get("timestamp") or "")
    if stamp:  # Discord answers "+00:00" where we may have sent another form
        with contextlib.suppress(ValueError):
            stamp = datetime.fromisoformat(stamp).astimezone(UTC).isoformat()
    return (str(embed.get("title") or ""), str(embed.get("url") or ""), stamp)
