"""Console sink: one readable block per message on stdout (no Slack token set)."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from bot.channels import display_channel
from bot.messages import ALERT, DIGEST, FOLLOWUP, format_time, listed_sources
from bot.sinks.base import DeliveryError, HistoryLookup
from bot.text import clean_text, inline_text


def format_console(channel: str, kind: str, payload: dict[str, Any]) -> str:
    channel = display_channel(channel)  # a webhook URL carries its token: never printed
    if kind == ALERT:
        snippet = "".join(
            f"**{inline_text(t)}**" if bold else inline_text(t) for t, bold in payload["snippet"]
        )
        lines = [
            f"== alert -> {channel} " + "=" * 20,
            clean_text(payload["title"]),
            f"  link:    {clean_text(payload.get('link') or '(no link)')}",
            f"  source:  {clean_text(payload['source'])}",
            f"  time:    {format_time(payload.get('published'))}",
            f"  matched: {', '.join(clean_text(t) for t in payload['terms'])}",
        ]
        if snippet:
            lines.append(f"  {snippet}")
    elif kind == DIGEST:
        items = payload["items"]
        stories = "story" if len(items) == 1 else "stories"
        lines = [f"== digest -> {channel}: {len(items)} more matching {stories} " + "=" * 6]
        for entry in items:
            lines.append(
                f"  - {clean_text(entry['title'])} ({clean_text(entry['source'])})"
                f"  {clean_text(entry.get('link') or '')}"
            )
    elif kind == FOLLOWUP:
        parent = payload.get("parent_payload") or {}
        about = clean_text(parent.get("title") or "an earlier alert")
        lines = [f"== follow-up -> {channel}: {about} " + "=" * 6]
        listed, more = listed_sources(payload["new"])
        for entry in listed:
            lines.append(
                f"  Also reported by: {clean_text(entry['source'])} — {clean_text(entry['title'])}"
                f"  {clean_text(entry.get('link') or '')}"
            )
        if more:
            lines.append(f"  +{more} more")
    else:
        lines = [f"== notice -> {channel} " + "=" * 20, clean_text(payload["text"])]
    return "\n".join(lines) + "\n"


class ConsoleSink:
    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int) -> str | None:
        out = self._out or sys.stdout
        with self._lock:
            try:
                out.write(format_console(channel, kind, payload) + "\n")
                out.flush()
            except BrokenPipeError:
                # e.g. `newshound poll --once | head -1`: nobody reads the
                # rest, so the message stays pending for a later run.
                raise DeliveryError("console output closed (broken pipe)") from None
        return None

    def find_sent(
        self,
        channel: str,
        outbox_id: int,
        since: float | None = None,
        lookup: HistoryLookup | None = None,
    ) -> str | None:
        return None
