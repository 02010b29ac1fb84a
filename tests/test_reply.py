"""bot/reply.py: one reply, rendered for Slack, Discord and the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import CommandContext, help_reply, watch_feeds, watch_list
from bot.config import empty_config
from bot.reply import (
    Bold,
    Code,
    Command,
    Platform,
    ReplyBuilder,
    Span,
    Text,
    Time,
    User,
    render,
    reply,
    starred,
    with_code,
)
from bot.store import Store

WHEN = 1_700_000_000.0


@pytest.mark.parametrize(
    ("span", "slack", "discord", "cli"),
    [
        (Text("a < b & c"), "a &lt; b &amp; c", "a <\u200b b & c", "a < b & c"),
        (Text("@everyone *x*"), "@everyone ∗x∗", "@\u200beveryone \\*x\\*", "@everyone *x*"),
        (Text("[x](https://evil)"), "[x](https://evil)", "\\[x\\](https://evil)", "[x](https://evil)"),
        (Bold("tariff"), "*tariff*", "**tariff**", "tariff"),
        (Code("a`b <c>"), "`aˋb &lt;c&gt;`", "`aˋb <c>`", "a`b <c>"),
        (Command("add", "QUERY"), "`/watch add QUERY`", "`/watch add QUERY`",
         "`newshound watch add --channel C1 QUERY`"),
        (User("slack", "U0ALICE01"), "<@U0ALICE01>", "Slack user U0ALICE01",
         "Slack user U0ALICE01"),
        (User("discord", "80351110224678912"), "Discord user 80351110224678912",
         "<@80351110224678912>", "Discord user 80351110224678912"),
        (Time(WHEN), "2023-11-14 22:13 UTC", "<t:1700000000:f>", "2023-11-14 22:13 UTC"),
    ],
)  # fmt: skip
def test_spans_per_platform(span: Span, slack: str, discord: str, cli: str) -> None:
    message = reply(span)
    expected: dict[Platform, str] = {"slack": slack, "discord": discord, "cli": cli}
    for platform, text in expected.items():
        assert render(message, platform, channel="C1") == text, platform


def test_command_suggestions_never_show_a_webhook_secret() -> None:
    hook = "discord:https://discord.com/api/webhooks/123/s3cretT0ken"
    shown = render(reply(Command("list")), "cli", channel=hook)
    assert shown == "`newshound watch list --channel discord:…/123/***`"


def test_starred_marks_bold_words() -> None:
    assert starred('phrase *trade deal* or *"x"*') == [
        Text("phrase "),
        Bold("trade deal"),
        Text(" or "),
        Bold('"x"'),
    ]


def test_bullets_and_lines() -> None:
    b = ReplyBuilder().line("Feeds:").bullet("World", ": ok")
    assert render(b.build(), "discord") == "Feeds:\n• World: ok"


def test_help_speaks_each_platform() -> None:
    assert render(help_reply(), "slack").startswith("*newshound* watches")
    assert render(help_reply(), "discord").startswith("**newshound** watches")
    cli = render(help_reply(), "cli", channel="C1")
    assert "/watch" not in cli and "newshound watch add --channel C1 QUERY" in cli


def test_feeds_says_why_a_destination_is_on_hold(db_url: str, tmp_path: Path) -> None:
    config = empty_config("feeds.yaml")
    with Store(db_url) as store:
        store.gates.pause("discord:1", "the bot lacks permission there (HTTP 403)", WHEN)
        ctx = CommandContext(
            store=store,
            config=lambda: config,
            platform="discord",
            destination_problem=lambda c: p[0] if (p := store.gates.paused().get(c)) else None,
        )
        text = render(watch_feeds(ctx, "discord:1"), "discord")
        assert text.startswith("**Alerts for this channel are on hold: **the bot lacks")
        assert "on hold" not in render(watch_feeds(ctx, "discord:2"), "discord")


def test_list_names_who_added_a_term_on_their_platform(db_url: str, tmp_path: Path) -> None:
    config = empty_config("feeds.yaml")
    with Store(db_url) as store:
        store.terms.add("discord:1", "tariff", "discord", "80351110224678912", WHEN)
        ctx = CommandContext(store=store, config=lambda: config, platform="discord")
        text = render(watch_list(ctx, "discord:1"), "discord")
        assert "• tariff (added by <@80351110224678912>, 2023-11-14)" in text


def test_our_hints_keep_their_code_spans_on_every_platform() -> None:
    hint = reply(*with_code("Slack answered `missing_scope`; add `channels:read`."))
    assert render(hint, "slack") == "Slack answered `missing_scope`; add `channels:read`."
    assert render(hint, "discord") == "Slack answered `missing_scope`; add `channels:read`."
    assert render(hint, "cli") == "Slack answered missing_scope; add channels:read."
