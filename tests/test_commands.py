"""bot/commands.py: `/watch` replies as plain functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.commands import CommandContext, dispatch, watch_add, watch_test
from bot.config import empty_config
from bot.reply import Platform, Reply, render
from bot.store import Store
from bot.store.terms import TermStore

CHANNEL = "C0COMMANDS1"


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[CommandContext]:
    config = empty_config("feeds.yaml")
    with Store(db_url) as store:
        yield CommandContext(store=store, config=lambda: config, platform="slack")


def test_add_notes_that_emoji_are_ignored(ctx: CommandContext) -> None:
    reply = watch_add(ctx, CHANNEL, "🚀 launch", "U0ALICE0001")
    assert reply.ok
    lines = slack(reply).splitlines()
    assert lines[0] == "Now watching *launch* (also: launches) in this channel."
    assert lines[1] == "Note: symbols and emoji (🚀) are ignored when matching."
    assert ctx.store.terms.find(CHANNEL, "🚀 launch") is not None


def test_symbols_in_the_note_are_escaped_and_listed_once(ctx: CommandContext) -> None:
    text = slack(watch_add(ctx, CHANNEL, "<C++> $5 ++ deal", "U0ALICE0001"))
    assert "Note: symbols and emoji (&lt; &gt; $) are ignored when matching." in text


@pytest.mark.parametrize("query", ["C++", "C#", "AT&T", "R&D spending", "Disney+"])
def test_symbols_of_names_are_not_noted_as_ignored(ctx: CommandContext, query: str) -> None:
    assert "Note:" not in slack(watch_add(ctx, CHANNEL, query, "U0ALICE0001"))


@pytest.mark.parametrize(
    ("query", "acronyms"),
    [
        ("US", "US"),
        ("U.S. lumber -UK", "US, UK"),
        ("NGOs OR WHO", "NGO, WHO"),
        ("AT&T", "AT&amp;T"),  # escaped for Slack
    ],
)
def test_add_says_which_words_are_acronyms(ctx: CommandContext, query: str, acronyms: str) -> None:
    lines = slack(watch_add(ctx, CHANNEL, query, "U0ALICE0001")).splitlines()
    assert lines[1] == (
        f"Acronyms (matched only where a story writes them in capitals): {acronyms}. "
        "Write a word in lower case to match it in any case."
    )
    assert "Acronyms" in slack(watch_test(ctx, CHANNEL, query))


@pytest.mark.parametrize("query", ["us", "Us", "tariff", "NASDAQ", "G7"])
def test_no_acronyms_line_without_capitals(ctx: CommandContext, query: str) -> None:
    assert "Acronyms" not in slack(watch_add(ctx, CHANNEL, query, "U0ALICE0001"))


@pytest.mark.parametrize("query", ["C", "x", '"Q"', "c -vitamin"])
def test_single_letter_terms_are_refused_with_the_reason(ctx: CommandContext, query: str) -> None:
    reply = watch_add(ctx, CHANNEL, query, "U0ALICE0001")
    assert not reply.ok
    assert "single letter" in slack(reply)
    assert ctx.store.terms.count(CHANNEL) == 0


def test_long_symbol_lists_are_cut(ctx: CommandContext) -> None:
    text = slack(watch_add(ctx, CHANNEL, "a+b=c<d>e^f~g", "U0ALICE0001"))
    assert "(+ = &lt; &gt; ^ …) are ignored" in text


@pytest.mark.parametrize("query", ["launch", "Café au lait", "trade-deal", "tariff's", "東京"])
def test_no_note_for_letters_digits_and_punctuation(ctx: CommandContext, query: str) -> None:
    assert "Note:" not in slack(watch_add(ctx, CHANNEL, query, "U0ALICE0001"))


def test_test_subcommand_notes_ignored_symbols_too(ctx: CommandContext) -> None:
    reply = watch_test(ctx, CHANNEL, "❤️ love")
    assert "Note: symbols and emoji (❤) are ignored when matching." in slack(reply)
    assert ctx.store.terms.count(CHANNEL) == 0


@pytest.mark.parametrize("gap", ["\t", "\n", "\u00a0", "  "])
def test_any_whitespace_ends_the_subcommand(ctx: CommandContext, gap: str) -> None:
    reply = dispatch(ctx, CHANNEL, "U0ALICE0001", f"add{gap}tariff")
    assert reply.ok and slack(reply).startswith("Now watching *tariff*")
    assert dispatch(ctx, CHANNEL, "U0ALICE0001", f"list{gap}").ok


def test_concurrent_adds_never_pass_the_term_limit(db_url: str, tmp_path: Path) -> None:
    import threading
    import time

    from bot.commands import MAX_TERMS_PER_CHANNEL

    class SlowCountTerms(TermStore):
        """Counting takes a while, as under load: a check-then-insert races."""

        def count(self, channel: str) -> int:
            counted = super().count(channel)
            time.sleep(0.1)
            return counted

    config = empty_config("feeds.yaml")
    with Store(db_url) as store:
        store.terms = SlowCountTerms(store.db)
        ctx = CommandContext(store=store, config=lambda: config, platform="slack")
        for n in range(MAX_TERMS_PER_CHANNEL - 1):
            store.terms.add(CHANNEL, f"term{n}", "cli", None, 0.0)
        replies = []
        threads = [
            threading.Thread(target=lambda n=n: replies.append(watch_add(ctx, CHANNEL, f"new{n}")))
            for n in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.terms.count(CHANNEL) == MAX_TERMS_PER_CHANNEL
        assert sum(reply.ok for reply in replies) == 1


def slack(reply: Reply) -> str:
    return render(reply, "slack")


def test_managers_may_be_discord_users_and_the_cli_is_always_allowed(
    db_url: str, tmp_path: Path
) -> None:
    import dataclasses

    base = empty_config("feeds.yaml")
    config = dataclasses.replace(
        base, settings=dataclasses.replace(base.settings, managers=("80351110224678912",))
    )
    with Store(db_url) as store:

        def ctx(platform: Platform) -> CommandContext:
            return CommandContext(store=store, config=lambda: config, platform=platform)

        channel = "discord:1200000000000000001"
        refused = watch_add(ctx("discord"), channel, "tariff", "80351110224678913")
        assert not refused.ok and "only the people listed as managers" in render(refused, "discord")
        assert watch_add(ctx("discord"), channel, "tariff", "80351110224678912").ok
        assert watch_add(ctx("cli"), channel, "trade deal").ok
        assert [(r.term, r.source) for r in store.terms.all(channel)] == [
            ("tariff", "discord"),
            ("trade deal", "cli"),
        ]


@pytest.mark.parametrize(
    ("platform", "says"),
    [
        ("slack", "Ask whoever runs newshound to remove it from the config file."),
        ("discord", "Ask whoever runs newshound to remove it from the config file."),
        ("cli", "remove it from that watch's terms there"),
    ],
)
def test_a_config_term_cannot_be_removed_and_each_surface_says_what_to_do(
    db_url: str, tmp_path: Path, platform: Platform, says: str
) -> None:
    """In chat the config belongs to someone else; in the shell, to the user."""
    with Store(db_url) as store:
        store.terms.sync_config([(CHANNEL, "lumber")], now=1.0)
        ctx = CommandContext(
            store=store, config=lambda: empty_config("feeds.yaml"), platform=platform
        )
        answer = dispatch(ctx, CHANNEL, "U0ALICE0001", "remove lumber")
        assert not answer.ok
        assert says in render(answer, platform)
        assert store.terms.find(CHANNEL, "lumber") is not None
