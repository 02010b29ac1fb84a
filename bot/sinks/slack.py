"""Slack sink: Block Kit messages through chat.postMessage.

All feed-derived text passes through `escape` exactly once, here, right
before it is put into a message: `&`, `<`, `>` are entity-escaped so no feed
can produce `<!channel>`, `<@U123>` or a disguised link, and mrkdwn markers
are replaced by look-alikes so a feed cannot restyle the message.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, cast

from bot.messages import ALERT, DIGEST, FOLLOWUP, format_time, listed_sources
from bot.sinks.base import DeliveryError, HistoryLookup, build_or_refuse
from bot.text import clean_text, inline_text

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError

DEFAULT_API_URL = "https://slack.com/api/"
METADATA_EVENT = "newshound_alert"
POST_GATE = "slack:chat.postMessage"
HISTORY_GATE = "slack:conversations.history"
HISTORY_PAGE_SIZE = 200
HISTORY_PAGES = 25  # 5,000 messages since the attempt: more means something else is wrong
CLOCK_SKEW = 300.0  # our clock vs Slack's message timestamps

# The SDK logs every connection failure at ERROR; the deliverer reports them.
_SDK_LOG = logging.getLogger("bot.sinks.slack.sdk")
_SDK_LOG.setLevel(logging.CRITICAL)

# Answers after which the message may nevertheless have been posted.
UNCERTAIN_ERRORS = frozenset(
    {"internal_error", "fatal_error", "request_timeout", "service_unavailable"}
)

UNKNOWN_ERROR_ATTEMPTS = 5

# Errors that no retry can fix; the alert is kept as dead with the reason.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "no_permission",
        "missing_scope",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "restricted_action",
        "team_access_not_granted",
        "channel_is_archived",
        "invalid_arguments",
        "ekm_access_denied",
    }
)

# The token itself is broken: no message to any channel can get through, so
# Slack delivery pauses (messages stay pending) until `newshound retry`.
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
TOKEN_PAUSE = "slack:token"

_MRKDWN_LOOKALIKES = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})

# Block Kit limits: a longer section (or context) text, or more blocks, and
# Slack refuses the whole message with `invalid_blocks` (a dead alert).
SECTION_CHARS = 3000
MAX_BLOCKS = 50
# Feed links may be up to 4096 characters and `&` grows to `&amp;`: a link
# longer than this (escaped) is dropped and the title shown as plain text.
MAX_LINK_CHARS = 1500
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Make untrusted text inert inside a Slack mrkdwn field."""
    text = inline_text(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.translate(_MRKDWN_LOOKALIKES)


def _link(url: str | None, label: str) -> str:
    """`<url|label>` for http(s) links; the label alone otherwise."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return label
    safe_url = (
        clean_text(url)
        .replace(" ", "%20")
        .replace("|", "%7C")
        .replace("<", "%3C")
        .replace(">", "%3E")
        .replace("&", "&amp;")
    )
    if len(safe_url) > MAX_LINK_CHARS:
        return label
    return f"<{safe_url}|{label}>"


def cap(text: str, limit: int = SECTION_CHARS) -> str:
    """`text` cut to at most `limit` characters (ending in "…" when cut),
    never inside an `&amp;`-style entity or a `<url|label>` link."""
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    opened = text.rfind("<", 0, cut)
    if opened != -1 and text.find(">", opened, cut) == -1:
        cut = opened  # inside a link: drop the whole link
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp  # inside an entity
    return text[:cut] + ELLIPSIS


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cap(text)}}


def format_alert(payload: dict[str, Any]) -> dict[str, Any]:
    title = escape(payload["title"])
    source = escape(payload["source"])
    terms = [escape(t) for t in payload["terms"]]
    when = format_time(payload.get("published"))
    snippet = "".join(f"*{escape(t)}*" if bold else escape(t) for t, bold in payload["snippet"])
    blocks: list[dict[str, Any]] = [
        _section(f"*{_link(payload.get('link'), title)}*"),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": cap(
                        f"{source} · {when} · matched: " + ", ".join(f"*{t}*" for t in terms)
                    ),
                }
            ],
        },
    ]
    if snippet.strip():
        blocks.append(_section(snippet))
    text = f"{title} ({source}) matched: {', '.join(terms)}"
    return {"text": text, "blocks": blocks}


def format_digest(payload: dict[str, Any]) -> dict[str, Any]:
    items = payload["items"]
    header = f"{len(items)} more matching {'story' if len(items) == 1 else 'stories'} this round:"
    lines = [f"• {_link(e.get('link'), escape(e['title']))} ({escape(e['source'])})" for e in items]
    blocks: list[dict[str, Any]] = [_section(header)]
    # A section holds at most SECTION_CHARS: as many whole lines per section
    # as fit. Past MAX_BLOCKS the last section says how many were left out.
    chunks: list[list[str]] = []
    size = 0
    for line in map(cap, lines):
        if chunks and size + 1 + len(line) <= SECTION_CHARS:
            chunks[-1].append(line)
            size += 1 + len(line)
        else:
            chunks.append([line])
            size = len(line)
    room = MAX_BLOCKS - len(blocks)
    if len(chunks) > room:
        kept = chunks[: room - 1]
        left_out = len(lines) - sum(len(chunk) for chunk in kept)
        chunks = [*kept, [f"…and {left_out} more"]]
    blocks.extend(_section("\n".join(chunk)) for chunk in chunks)
    return {"text": header, "blocks": blocks}


def format_notice(payload: dict[str, Any]) -> dict[str, Any]:
    text = escape(payload["text"])
    return {"text": text, "blocks": [_section(text)]}


def format_followup(payload: dict[str, Any]) -> dict[str, Any]:
    """ "Also reported by: <source> — <title as link>", one line per source
    reported this cycle (at most FOLLOWUP_SOURCES, then "+N more")."""
    listed, more = listed_sources(payload["new"])
    lines = [
        f"Also reported by: {escape(e['source'])} — {_link(e.get('link'), escape(e['title']))}"
        for e in listed
    ]
    if more:
        lines.append(f"+{more} more")
    text = cap("\n".join(lines))
    return {"text": text, "blocks": [_section(text)]}


def format_message(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    if kind == FOLLOWUP:
        return format_followup(payload)
    if kind == ALERT:
        return format_alert(payload)
    if kind == DIGEST:
        return format_digest(payload)
    return format_notice(payload)


class SlackSink:
    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, timeout: float = 15.0) -> None:
        if not api_url.endswith("/"):
            api_url += "/"
        # No built-in retries: the deliverer owns retry, backoff and Retry-After.
        # urllib takes a float timeout although the SDK annotates an int.
        # slack_sdk is imported here, not with the module: formatting helpers
        # are used by every command, the client only when a token is set.
        from slack_sdk import WebClient

        self.client = WebClient(
            token=token,
            base_url=api_url,
            timeout=cast(int, timeout),
            retry_handlers=[],
            logger=_SDK_LOG,
        )

    def rate_key(self, channel: str) -> str:
        """The gate a 429 closes: Slack limits chat.postMessage per method."""
        return POST_GATE

    def pause_key(self, channel: str) -> str:
        """What a broken token pauses: all of Slack."""
        return TOKEN_PAUSE

    def lookup_key(self, channel: str) -> str:
        """The gate a 429 from `find_sent` closes."""
        return HISTORY_GATE

    def send(self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int) -> str | None:
        from slack_sdk.errors import SlackApiError  # loaded with the client already

        message = build_or_refuse(format_message, kind, payload)
        thread_ts: str | None = None
        if kind == FOLLOWUP:
            # A reply in the alert's thread: chat.postMessage `thread_ts` is
            # the parent message's `ts` (docs.slack.dev/reference/methods/
            # chat.postMessage). Without it the reply has nowhere to go.
            parent = payload.get("parent_message")
            if not parent:
                raise DeliveryError(
                    "the alert this follows up has no Slack ts to reply to", permanent=True
                )
            thread_ts = str(parent)
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_id": outbox_id}},
                thread_ts=thread_ts,
            )
        except SlackApiError as exc:
            raise _delivery_error(exc, POST_GATE) from None
        except Exception as exc:  # connection reset, timeout, DNS: all retryable
            raise _connection_error(exc) from None
        ts = response.get("ts")
        return str(ts) if ts else None

    def find_sent(
        self,
        channel: str,
        outbox_id: int,
        since: float | None = None,
        lookup: HistoryLookup | None = None,
    ) -> str | None:
        """Look for our metadata in the channel's history between the first
        attempt that may have arrived and the last one (a few minutes either
        side for clock skew), page by page from where `lookup` left off.

        Each request counts in `lookup.tries` and the cursor is kept when
        Slack answers 429, so a lookup at one request a minute (Slack's tier
        for apps outside the Marketplace since 2025, 15 messages a page)
        still moves on instead of starting over. The deliverer bounds the tries.
        """
        from slack_sdk.errors import SlackApiError  # loaded with the client already

        if lookup is None:
            lookup = HistoryLookup(since)
        start = lookup.since if lookup.since is not None else time.time() - 86400
        oldest = f"{max(0.0, start - CLOCK_SKEW):.6f}"
        latest = None if lookup.until is None else f"{lookup.until + CLOCK_SKEW:.6f}"
        for _ in range(HISTORY_PAGES):
            lookup.tries += 1
            try:
                response = self.client.conversations_history(
                    channel=channel,
                    limit=HISTORY_PAGE_SIZE,
                    include_all_metadata=True,
                    oldest=oldest,
                    latest=latest,
                    inclusive=True,
                    cursor=lookup.cursor,
                )
            except SlackApiError as exc:
                raise _delivery_error(exc, HISTORY_GATE) from None
            except Exception as exc:
                raise _connection_error(exc) from None
            for message in response.get("messages") or []:
                if _outbox_id_of(message) == outbox_id:
                    return str(message.get("ts"))
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not response.get("has_more") or not cursor:
                return None
            lookup.cursor = cursor
        raise DeliveryError("channel history too long to check in one go; will go on")


def _outbox_id_of(message: dict[str, Any]) -> int | None:
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_EVENT:
        return None
    value = (metadata.get("event_payload") or {}).get("outbox_id")
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _connection_error(exc: Exception) -> DeliveryError:
    """No answer: refused connections never reached Slack; anything else
    (timeout, reset, dropped connection) may have."""
    reason = getattr(exc, "reason", None)
    refused = isinstance(exc, ConnectionRefusedError) or isinstance(reason, ConnectionRefusedError)
    name = type(reason if isinstance(reason, BaseException) else exc).__name__
    return DeliveryError(f"connection error: {name}", maybe_delivered=not refused)


def _delivery_error(exc: SlackApiError, gate_key: str) -> DeliveryError:
    response = exc.response
    status = getattr(response, "status_code", 0)
    error = ""
    try:
        error = str(response.get("error") or "")
    except Exception:
        error = ""
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", {}) or {}
        return DeliveryError(
            "rate limited by Slack",
            retry_after=_seconds(_header(headers, "retry-after")),
            gate_key=gate_key,
        )
    if error in TOKEN_ERRORS:
        return DeliveryError(f"the Slack token is broken ({error})", pause_key=TOKEN_PAUSE)
    if error in PERMANENT_ERRORS:
        return DeliveryError(error, permanent=True)
    if status >= 500 or not error:
        return DeliveryError(f"Slack answered HTTP {status}", maybe_delivered=True)
    if error in UNCERTAIN_ERRORS:
        return DeliveryError(error, maybe_delivered=True)
    # An answer we do not know: it may be a passing state, but it must not
    # hold back its channel forever.
    return DeliveryError(error, give_up_after=UNKNOWN_ERROR_ATTEMPTS)


def _seconds(value: str | None) -> float:
    """Retry-After in seconds (fractions accepted); 1 s when missing or odd."""
    try:
        seconds = float(value) if value else 1.0
    except ValueError:
        return 1.0
    if math.isnan(seconds):  # min/max would pass NaN through to the send gate
        return 1.0
    return min(max(seconds, 0.0), 3600.0)


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return None
