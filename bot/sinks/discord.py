"""Discord sink: webhook posts with an embed; mentions are always disabled.

Discord renders markdown in embed descriptions, so feed text is escaped here
(and only here); `allowed_mentions: {"parse": []}` makes sure that even text
that looks like `@everyone` or `<@123>` never pings anyone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.channels import resolve_discord_webhook
from bot.messages import ALERT, DIGEST
from bot.sinks.base import DeliveryError
from bot.text import clean_text, inline_text

_MARKDOWN = re.compile(r"([\\*_~`|>\[\]()#-])")


def escape(text: str) -> str:
    text = inline_text(text)
    # A zero-width space after @ defuses mention syntax even in clients that
    # ignore allowed_mentions (e.g. when the message is quoted).
    return _MARKDOWN.sub(r"\\\1", text).replace("@", "@\u200b")


_URL_UNSAFE = str.maketrans({c: f"%{ord(c):02X}" for c in " ()<>[]"})


def _url(link: str | None) -> str | None:
    """A feed link made safe inside `[label](url)`: no ")" or space can end it early."""
    if link and link.lower().startswith(("http://", "https://")) and len(link) <= 2000:
        return clean_text(link).translate(_URL_UNSAFE)
    return None


def format_message(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind == ALERT:
        description = "".join(
            f"**{escape(t)}**" if bold else escape(t) for t, bold in payload["snippet"]
        )
        embed: dict[str, Any] = {
            "title": escape(clean_text(payload["title"], 200))[:256],
            "description": description[:4096],
            "footer": {
                "text": clean_text(
                    f"{payload['source']} · matched: {', '.join(payload['terms'])}", 2048
                )
            },
        }
        url = _url(payload.get("link"))
        if url:
            embed["url"] = url
        if payload.get("published") is not None:
            embed["timestamp"] = datetime.fromtimestamp(payload["published"], UTC).isoformat()
        content = ""
    elif kind == DIGEST:
        lines = []
        for entry in payload["items"]:
            url = _url(entry.get("link"))
            title = escape(clean_text(entry["title"], 200))
            lines.append(f"• [{title}]({url})" if url else f"• {title}")
        embed = {
            "title": f"{len(payload['items'])} more matching stories this round",
            "description": "\n".join(lines)[:4096],
        }
        content = ""
    else:
        embed = {"description": escape(payload["text"])[:4096]}
        content = ""
    return {"content": content, "embeds": [embed], "allowed_mentions": {"parse": []}}


class DiscordSink:
    def __init__(self, env: Mapping[str, str], timeout: float = 15.0) -> None:
        self.env = env
        self.client = httpx.Client(timeout=timeout, trust_env=False)

    def send(self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int) -> str | None:
        try:
            url = resolve_discord_webhook(channel, self.env)
        except ValueError as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        body = format_message(kind, payload)
        body["nonce"] = str(outbox_id)
        try:
            response = self.client.post(url, params={"wait": "true"}, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"connection error: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry_after = _retry_after(response)
            raise DeliveryError("rate limited by Discord", retry_after=retry_after)
        if response.status_code in (401, 403, 404):
            raise DeliveryError(
                f"webhook rejected the message (HTTP {response.status_code})", permanent=True
            )
        if 400 <= response.status_code < 500:
            raise DeliveryError(
                f"Discord refused the message (HTTP {response.status_code})", permanent=True
            )
        if response.status_code >= 300:
            raise DeliveryError(f"Discord answered HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            return None
        return str(data.get("id")) if isinstance(data, dict) and data.get("id") else None

    def find_sent(self, channel: str, outbox_id: int) -> str | None:
        # Webhooks cannot list past messages: a crash between Discord accepting
        # a post and us recording it can repeat that one post (documented).
        return None


def _retry_after(response: httpx.Response) -> float:
    try:
        data = response.json()
        if isinstance(data, dict) and "retry_after" in data:
            return float(data["retry_after"])
    except ValueError:
        pass
    header = response.headers.get("retry-after")
    try:
        return float(header) if header else 1.0
    except ValueError:
        return 1.0
