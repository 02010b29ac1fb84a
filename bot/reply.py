"""`/watch` replies as data, rendered per platform at the last moment.

A reply is lines of spans: plain text, bold, code, a command reference, a
user reference and a point in time. The command functions (bot/commands.py)
build replies without knowing where they go; `render` turns one into Slack
mrkdwn, Discord markdown or plain terminal text. Escaping of untrusted text
(feed titles, typed queries) happens here and only here, per platform.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from bot.channels import display_channel
from bot.messages import format_time
from bot.sinks.slack import escape as slack_escape
from bot.text import inline_text

Platform = Literal["slack", "discord", "cli"]
PLATFORMS: tuple[Platform, ...] = ("slack", "discord", "cli")


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bold:
    text: str


@dataclass(frozen=True)
class Code:
    """Literal text the user typed or should type (a term, an example)."""

    text: str


@dataclass(frozen=True)
class Command:
    """A `/watch` subcommand to suggest, e.g. Command("remove", "QUERY"):
    `/watch remove QUERY` in chat, `newshound watch remove …` in a shell."""

    sub: str
    args: str = ""


@dataclass(frozen=True)
class User:
    """Someone who added a term, on the platform they used."""

    platform: str  # "slack" or "discord" (the term's source)
    id: str


@dataclass(frozen=True)
class Time:
    epoch: float


Span = Text | Bold | Code | Command | User | Time
Line = tuple[Span, ...]


@dataclass(frozen=True)
class Reply:
    lines: tuple[Line, ...]
    ok: bool = True
    # Lines that are list entries ("• …" in chat); index set for renderers.
    bullets: frozenset[int] = field(default_factory=frozenset)


class ReplyBuilder:
    """Collects lines; `line(...)` takes spans or plain strings."""

    def __init__(self) -> None:
        self._lines: list[Line] = []
        self._bullets: set[int] = set()

    def line(self, *spans: Span | str) -> ReplyBuilder:
        self._lines.append(tuple(Text(s) if isinstance(s, str) else s for s in spans))
        return self

    def bullet(self, *spans: Span | str) -> ReplyBuilder:
        self._bullets.add(len(self._lines))
        return self.line(*spans)

    def extend(self, other: Reply) -> ReplyBuilder:
        for index, line in enumerate(other.lines):
            if index in other.bullets:
                self._bullets.add(len(self._lines))
            self._lines.append(line)
        return self

    def build(self, ok: bool = True) -> Reply:
        return Reply(tuple(self._lines), ok, frozenset(self._bullets))


def reply(*spans: Span | str, ok: bool = True) -> Reply:
    """A one-line reply."""
    return ReplyBuilder().line(*spans).build(ok)


_STARRED = re.compile(r"\*([^*]+)\*")


def starred(text: str) -> list[Span]:
    """Spans from text whose bold parts are marked `*like this*` (the form
    `Query.describe` uses; its words need no escaping)."""
    spans: list[Span] = []
    last = 0
    for match in _STARRED.finditer(text):
        if match.start() > last:
            spans.append(Text(text[last : match.start()]))
        spans.append(Bold(match.group(1)))
        last = match.end()
    if last < len(text):
        spans.append(Text(text[last:]))
    return spans


_BACKTICKED = re.compile(r"`([^`]+)`")


def with_code(text: str) -> list[Span]:
    """Spans from our own message text whose `code` parts are marked with
    backticks (e.g. a channel check's hint naming a scope)."""
    spans: list[Span] = []
    last = 0
    for match in _BACKTICKED.finditer(text):
        if match.start() > last:
            spans.append(Text(text[last : match.start()]))
        spans.append(Code(match.group(1)))
        last = match.end()
    if last < len(text):
        spans.append(Text(text[last:]))
    return spans


# -- rendering ---------------------------------------------------------------


def render(message: Reply, platform: Platform, *, channel: str | None = None) -> str:
    """The reply as one string for `platform`. `channel` fills command
    suggestions on the command line (`--channel C`)."""
    bullet = "• "
    out = []
    for index, line in enumerate(message.lines):
        text = "".join(_span(span, platform, channel) for span in line)
        out.append(bullet + text if index in message.bullets else text)
    return "\n".join(out)


def _span(span: Span, platform: Platform, channel: str | None) -> str:
    if isinstance(span, Text):
        return _escape(span.text, platform)
    if isinstance(span, Bold):
        inner = _escape(span.text, platform)
        return {"slack": f"*{inner}*", "discord": f"**{inner}**"}.get(platform, inner)
    if isinstance(span, Code):
        return _code(span.text, platform)
    if isinstance(span, Command):
        return _command(span, platform, channel)
    if isinstance(span, User):
        return _user(span, platform)
    return _time(span, platform)


def _escape(text: str, platform: Platform) -> str:
    if platform == "slack":
        return slack_escape(text)
    if platform == "discord":
        return _discord_escape(text)
    return inline_text(text)


_DISCORD_MARKUP = re.compile(r"([\\*_~`|\[\]>])")
_DISCORD_LINE_START = re.compile(r"^([#-])")


def _discord_escape(text: str) -> str:
    """Discord markdown made literal, mentions defused: backslashes before
    emphasis, code, spoiler, quote and link characters (and a leading # or -,
    which would start a heading or a list); a zero-width space after `@` and
    `<` so no `@everyone`, `<@id>` or `<#channel>` can form."""
    text = _DISCORD_MARKUP.sub(r"\\\1", inline_text(text))
    text = _DISCORD_LINE_START.sub(r"\\\1", text)
    return text.replace("@", "@\u200b").replace("<", "<\u200b")


def _code(text: str, platform: Platform) -> str:
    if platform == "cli":
        return inline_text(text)
    # Inside `code` markdown is not parsed; only a backtick could end it early.
    inner = inline_text(text).replace("`", "ˋ")
    if platform == "slack":
        inner = inner.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    else:
        inner = inner.replace("@", "@\u200b")
    return f"`{inner}`" if inner else "``"


def _command(span: Command, platform: Platform, channel: str | None) -> str:
    if platform == "cli":
        # Never a webhook's secret: a masked channel is shown as masked.
        where = display_channel(channel) if channel else "C"
        args = f" {span.args}" if span.args else ""
        return f"`newshound watch {span.sub} --channel {where}{args}`"
    args = f" {span.args}" if span.args else ""
    return f"`/watch {span.sub}{args}`"


def _user(span: User, platform: Platform) -> str:
    if span.platform == platform and span.id.isalnum():
        return f"<@{span.id}>"
    names = {"slack": "Slack", "discord": "Discord"}
    return f"{names.get(span.platform, span.platform)} user {inline_text(span.id)}"


def _time(span: Time, platform: Platform) -> str:
    if platform == "discord":
        return f"<t:{int(span.epoch)}:f>"  # shown in each reader's own time zone
    return format_time(span.epoch)


def joined(items: Iterable[Span | str], sep: str = ", ") -> list[Span]:
    """Spans with `sep` between them."""
    spans: list[Span] = []
    for item in items:
        if spans:
            spans.append(Text(sep))
        spans.append(Text(item) if isinstance(item, str) else item)
    return spans
