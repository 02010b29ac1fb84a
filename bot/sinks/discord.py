"""Discord sink: webhook posts with an embed; mentions are always disabled.

Discord renders markdown in embed descriptions, so feed text is escaped here
(and only here); `allowed_mentions: {"parse": []}` makes sure that even text
that looks like `@everyone` or `<@123>` never pings anyone.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from bot.channels import display_channel, resolve_discord_webhook
from bot.messages import ALERT, DIGEST, FOLLOWUP, as_datetime, listed_sources
from bot.sinks.base import Delivered, DeliveryError, HistoryLookup, build_or_refuse
from bot.text import clean_text, inline_text

log = logging.getLogger(__name__)

_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#-])")


def escape(text: str) -> str:
    text = inline_text(text)
    # Backslashes keep markdown literal; a zero-width space after @ and <
    # defuses mention and <…> syntax even in clients that ignore
    # allowed_mentions (e.g. when the message is quoted).
    return _defuse(_MARKDOWN.sub(r"\\\1", text))


_URL_UNSAFE = str.maketrans({c: f"%{ord(c):02X}" for c in " ()<>[]"})


def _url(link: str | None) -> str | None:
    """A feed link made safe inside `[label](url)`: no ")" or space can end it early."""
    if link and link.lower().startswith(("http://", "https://")) and len(link) <= 2000:
        return clean_text(link).translate(_URL_UNSAFE)
    return None


def _lines_within(lines: list[str], limit: int) -> str:
    """Whole lines up to `limit` characters, then a note of how many were left out."""
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index
        note = f"… and {rest} more"
        if size + len(line) + 1 > limit - len(note) - 1:
            kept.append(note)
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(kept)


def format_message(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind == FOLLOWUP:
        return format_reply(payload)
    if kind == ALERT:
        description = "".join(
            f"**{escape(t)}**" if bold else escape(t) for t, bold in payload["snippet"]
        )
        embed: dict[str, Any] = {
            "title": escape(clean_text(payload["title"], 200))[:256],
            "description": description[:4096],
            "footer": {
                "text": _defuse(
                    clean_text(
                        f"{payload['source']} · matched: {', '.join(payload['terms'])}", 2048
                    )
                )
            },
        }
        url = _url(payload.get("link"))
        if url:
            embed["url"] = url
        published = as_datetime(payload.get("published"))
        if published is not None:  # an out-of-range date is left out, not an error
            embed["timestamp"] = published.isoformat()
    elif kind == DIGEST:
        lines = []
        for entry in payload["items"]:
            url = _url(entry.get("link"))
            title = escape(clean_text(entry["title"], 200))
            lines.append(f"• [{title}]({url})" if url else f"• {title}")
        embed = {
            "title": f"{len(lines)} more matching {'story' if len(lines) == 1 else 'stories'} this round",  # noqa: E501
            "description": _lines_within(lines, 4000),
        }
    else:
        embed = {"description": escape(payload["text"])[:4096]}
    return {"embeds": [embed], "allowed_mentions": {"parse": []}}


def also_reported_lines(sources: list[dict[str, Any]]) -> list[str]:
    """ "Also reported by: <source> — [title](link)" per source, at most
    FOLLOWUP_SOURCES, then "+N more"; feed strings escaped for Discord."""
    listed, more = listed_sources(sources)
    lines = []
    for entry in listed:
        url = _url(entry.get("link"))
        title = escape(clean_text(entry["title"], 200))
        linked = f"[{title}]({url})" if url else title
        lines.append(f"Also reported by: {escape(clean_text(entry['source'], 100))} — {linked}")
    if more:
        lines.append(f"+{more} more")
    return lines


def format_reply(payload: dict[str, Any]) -> dict[str, Any]:
    """A follow-up in a bot channel: a plain reply with this cycle's sources
    (the caller adds `message_reference`); link previews suppressed (flag
    SUPPRESS_EMBEDS) so five links do not bring five cards."""
    content = "\n".join(also_reported_lines(payload["new"]))
    return {"content": content[:2000], "allowed_mentions": {"parse": []}, "flags": 1 << 2}


def format_edited_alert(payload: dict[str, Any]) -> dict[str, Any]:
    """A follow-up on a webhook channel: the alert as it was sent, with an
    "Also reported by" line for every source reported so far (at most
    FOLLOWUP_SOURCES, then "+N more"), to replace the original message."""
    parent = payload.get("parent_payload")
    if not isinstance(parent, dict):
        raise ValueError("the alert this follows up is gone")
    body = format_message(ALERT, parent)
    embed = body["embeds"][0]
    also = "\n".join(also_reported_lines([*payload.get("earlier", []), *payload["new"]]))
    room = 4096 - len(also) - 2
    description = embed.get("description", "")
    if len(description) > room:
        description = description[: max(0, room - 1)] + "…"
    embed["description"] = f"{description}\n\n{also}" if description else also
    return body


def webhook_edit_url(url: str, message_id: str, api_url: str | None = None) -> httpx.URL:
    """PATCH target that edits a message the webhook posted: the URL posts go
    to (API v10, DISCORD_API_URL for discord.com, query such as `thread_id`
    kept, no `wait`) + `/messages/{id}`
    (discord.com/developers/docs/resources/webhook#edit-webhook-message)."""
    posted = webhook_post_url(url, api_url).copy_remove_param("wait")
    return posted.copy_with(path=posted.path.rstrip("/") + f"/messages/{message_id}")


def _defuse(text: str) -> str:
    """Plain-text fields (title, footer): only mention syntax needs defusing.

    A zero-width space after every `@` and `<` keeps `@everyone`, `<@123>`,
    `<#channel>`, `<t:1700000000:R>`, `</command:1>` and `<:emoji:1>` as
    plain text: none of Discord's angle-bracket syntax can start.
    """
    return text.replace("@", "@\u200b").replace("<", "<\u200b")


API_VERSION = 10
# `/api/webhooks/…` as Discord's UI copies it, or an explicit older version.
_WEBHOOK_PATH = re.compile(r"^(.*?/api)(?:/v\d+)?(/webhooks/.*)$")
# Longest wait a 429 or an exhausted bucket may impose; a longer one is taken
# as a misread unit (say milliseconds as seconds) and capped, with a log line.
MAX_WAIT = 600.0


# Hosts whose webhooks go through DISCORD_API_URL when it is set (SPEC §1:
# "used for every Discord call incl. webhooks that point at discord.com").
DISCORD_HOSTS = frozenset(
    {"discord.com", "www.discord.com", "ptb.discord.com", "canary.discord.com", "discordapp.com"}
)


def webhook_post_url(url: str, api_url: str | None = None) -> httpx.URL:
    """The webhook URL on API v10, with `wait=true` added to its own query;
    a webhook of discord.com is called under `api_url` (DISCORD_API_URL)
    when one is set.

    Unversioned webhook paths get Discord's old default version, which
    answers `retry_after` in milliseconds: always ask for v10 (seconds).
    `client.post(url, params=...)` would replace the URL's query, dropping
    e.g. `?thread_id=123` (a webhook that posts into a forum thread).
    """
    parsed = httpx.URL(url)
    match = _WEBHOOK_PATH.match(parsed.path)
    if api_url and match and parsed.host.lower() in DISCORD_HOSTS:
        base = httpx.URL(api_url.strip().rstrip("/"))
        parsed = parsed.copy_with(
            scheme=base.scheme, host=base.host, port=base.port, path=base.path + match.group(2)
        )
        return parsed.copy_merge_params({"wait": "true"})
    versioned = _WEBHOOK_PATH.sub(rf"\1/v{API_VERSION}\2", parsed.path)
    return parsed.copy_with(path=versioned).copy_merge_params({"wait": "true"})


class DiscordSink:
    def __init__(self, env: Mapping[str, str], timeout: float = 15.0) -> None:
        self.env = env
        self.client = httpx.Client(timeout=timeout, trust_env=False)

    def rate_key(self, channel: str) -> str:
        """Discord rate-limits each webhook: one gate per webhook (hashed,
        the URL holds a secret)."""
        try:
            target = resolve_discord_webhook(channel, self.env)
        except ValueError:
            target = channel
        return "discord:" + hashlib.sha256(target.encode()).hexdigest()[:16]

    def pause_key(self, channel: str) -> str:
        """What a 401/403/404 pauses: this webhook, named without its secret."""
        return display_channel(channel)

    def send(
        self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int
    ) -> Delivered | None:
        try:
            url = resolve_discord_webhook(channel, self.env)
        except ValueError as exc:
            # `discord:$VAR` whose variable is unset (or not a webhook URL):
            # the operator can fix that, so the alert waits and is retried
            # with backoff instead of dying (SPEC §4: no alert is lost).
            raise DeliveryError(str(exc)) from None
        if kind == FOLLOWUP:
            return self._edit(channel, url, payload)
        body = build_or_refuse(format_message, kind, payload)
        try:
            post_url = webhook_post_url(url, self.env.get("DISCORD_API_URL"))
            response = self.client.post(post_url, json=body)
        except httpx.ConnectError:
            raise DeliveryError("connection error: ConnectError") from None
        except httpx.HTTPError as exc:
            # Timeout or dropped connection after the request left: it may have
            # been posted, and webhooks cannot look it up (README).
            raise DeliveryError(
                f"connection error: {type(exc).__name__}", maybe_delivered=True
            ) from None
        raise_for_post_status(
            response,
            refused=f"Discord refused the webhook (HTTP {response.status_code}): "
            "it was deleted or its URL is wrong",
            pause_key=self.pause_key(channel),
        )
        return Delivered(_message_id(response), wait=_bucket_wait(response.headers))

    def _edit(self, channel: str, url: str, payload: dict[str, Any]) -> Delivered:
        """A follow-up on a webhook channel edits the alert (an edit is
        idempotent: repeating it after a lost answer changes nothing)."""
        message_id = payload.get("parent_message")
        if not message_id:
            raise DeliveryError(
                "the alert this follows up has no Discord message id to edit", permanent=True
            )
        body = build_or_refuse(lambda _kind, p: format_edited_alert(p), FOLLOWUP, payload)
        try:
            response = self.client.patch(
                webhook_edit_url(url, str(message_id), self.env.get("DISCORD_API_URL")), json=body
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"connection error: {type(exc).__name__}") from None
        status = response.status_code
        if status == 429:
            raise DeliveryError("rate limited by Discord", retry_after=_retry_after(response))
        if status == 404 and _error_code(response) == UNKNOWN_MESSAGE:
            raise DeliveryError("the alert to edit was deleted (HTTP 404)", permanent=True)
        if status in (401, 403, 404):
            raise DeliveryError(
                f"Discord refused the webhook (HTTP {status}): it was deleted or its URL is wrong",
                pause_key=self.pause_key(channel),
            )
        if 400 <= status < 500 and status not in (408, 409, 425):
            raise DeliveryError(f"Discord refused the edit (HTTP {status})", permanent=True)
        if status >= 300:
            raise DeliveryError(f"Discord answered HTTP {status}")
        return Delivered(str(message_id), wait=_bucket_wait(response.headers))

    def find_sent(
        self,
        channel: str,
        outbox_id: int,
        since: float | None = None,
        lookup: HistoryLookup | None = None,
    ) -> str | None:
        # Webhooks cannot list past messages: a crash between Discord accepting
        # a post and us recording it can repeat that one post (README).
        return None

    def close(self) -> None:
        self.client.close()


def raise_for_post_status(
    response: httpx.Response,
    *,
    refused: str,
    pause_key: str,
    global_gate: str | None = None,
) -> None:
    """What Discord's answer to a new message (webhook or bot) means for the
    outbox row: 429 waits `retry_after` (the global gate when Discord says the
    limit is global and the caller has one); 401/403/404 pause the
    destination with `refused`; 408/409/425 retry; other 4xx are permanent;
    5xx may have posted it. Returns for a 2xx."""
    status = response.status_code
    if status == 429:
        raise DeliveryError(
            "rate limited by Discord",
            retry_after=_retry_after(response),
            gate_key=global_gate if global_gate and _is_global(response) else None,
        )
    if status in (401, 403, 404):
        raise DeliveryError(refused, pause_key=pause_key)
    if status in (408, 409, 425):
        raise DeliveryError(f"Discord answered HTTP {status}")
    if 400 <= status < 500:
        code = _error_code(response)
        detail = f", code {code}" if code is not None else ""
        raise DeliveryError(f"Discord refused the message (HTTP {status}{detail})", permanent=True)
    if status >= 300:
        raise DeliveryError(f"Discord answered HTTP {status}", maybe_delivered=status >= 500)


def _is_global(response: httpx.Response) -> bool:
    if response.headers.get("x-ratelimit-global", "").lower() == "true":
        return True
    if response.headers.get("x-ratelimit-scope", "").lower() == "global":
        return True
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("global") is True


# Discord's JSON error code for a message id that does not exist (any more):
# discord.com/developers/docs/topics/opcodes-and-status-codes#json
UNKNOWN_MESSAGE = 10008


def _error_code(response: httpx.Response) -> int | None:
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, int) else None


def _message_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return str(data.get("id")) if isinstance(data, dict) and data.get("id") else None


def _bucket_wait(headers: httpx.Headers) -> float:
    """`X-RateLimit-Remaining: 0` -> wait `X-RateLimit-Reset-After` seconds."""
    if headers.get("x-ratelimit-remaining", "").strip() != "0":
        return 0.0
    return _seconds(headers.get("x-ratelimit-reset-after"), default=1.0)


def _retry_after(response: httpx.Response) -> float:
    """The JSON body's `retry_after` (seconds, fractional), else the header."""
    try:
        data = response.json()
        if isinstance(data, dict) and "retry_after" in data:
            return _seconds(str(data["retry_after"]), default=1.0)
    except ValueError:
        pass
    return _seconds(response.headers.get("retry-after"), default=1.0)


def _seconds(value: str | None, *, default: float) -> float:
    try:
        seconds = float(value) if value else default
    except ValueError:
        return default
    if seconds != seconds:  # NaN
        return default
    if seconds > MAX_WAIT:
        log.warning(
            "Discord asked us to wait %.0f s, which looks wrong; waiting %.0f s instead",
            seconds,
            MAX_WAIT,
        )
        return MAX_WAIT
    return max(seconds, 0.0)
