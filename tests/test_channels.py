"""Watch channel strings: Slack IDs and Discord webhooks (bot.channels)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli

from bot.channels import (
    SHOWN_LENGTH,
    channel_kind,
    display_channel,
    env_var_name,
    looks_secret,
    resolve_discord_webhook,
    validate_channel,
)

HOOK = "https://discord.com/api/webhooks/123456789012345678/s3cr3t-T0KEN_value"


@pytest.mark.parametrize(
    ("channel", "kind"),
    [
        ("C0123456789", "slack"),
        ("G0123456789", "slack"),
        ("D0123456789", "slack"),
        (f"discord:{HOOK}", "discord"),
        ("discord:$TRADE_WEBHOOK", "discord"),
        ("discord:1234567890123456789", "discord"),
    ],
)
def test_channel_kind(channel: str, kind: str) -> None:
    assert channel_kind(channel) == kind


@pytest.mark.parametrize(
    "channel",
    [
        "C0123456789",
        "G01234567",
        "D0ABCDEFGHIJ",
        f"discord:{HOOK}",
        "discord:http://127.0.0.1:8080/api/webhooks/1/abc",
        "discord:https://hooks.example.org/anything",
        "discord:$TRADE_WEBHOOK",
        "discord:${TRADE_WEBHOOK}",
        "discord:$_x1",
        "discord:1234567890123456789",  # a channel or thread ID: bot delivery
    ],
)
def test_valid_channels(channel: str) -> None:
    assert validate_channel(channel) is None


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("", "the channel is empty"),
        ("c0123456789", '"c0123456789" is not a Slack channel ID'),
        ("C01234", '"C01234" is not a Slack channel ID'),
        ("U0123456789", '"U0123456789" is not a Slack channel ID'),
        ("general", '"general" is not a Slack channel ID'),
        ("#general", '"#general" is a channel name; use the Slack channel ID'),
        (HOOK, "a URL alone is not a channel; write discord:<webhook URL>"),
        ("Discord:" + HOOK, "write the discord: prefix in lower case"),
        ("discord:", "discord: must be followed by a channel ID, a webhook URL or $ENVIRONMENT_"),
        ("discord:123456789012345678901", '"123456789012345678901" is not a Discord channel ID'),
        ("discord:0", '"0" is not a Discord channel ID'),
        ("discord:ftp://discord.com/api/webhooks/1/TOKEN", "the Discord webhook URL must start"),
        ("discord:discord.com/api/webhooks/1/TOKEN", "the Discord webhook URL must start"),
        ("discord:https:///api/webhooks/1/TOKEN", "the Discord webhook URL has no host name"),
        (
            "discord:https://user:TOKEN@discord.com/api/webhooks/1/TOKEN",
            "the Discord webhook URL must not contain a user name or password",
        ),
        ("discord:https://disc ord.com/TOKEN", "the Discord webhook URL must not contain spaces"),
        ("discord:https://[::1/TOKEN", "the Discord webhook URL is not a valid URL"),
        ("discord:$", '"" is not a valid environment variable name'),
        ("discord:$1HOOK", '"1HOOK" is not a valid environment variable name'),
        ("discord:$MY-HOOK", '"MY-HOOK" is not a valid environment variable name'),
    ],
)
def test_invalid_channels(channel: str, message: str) -> None:
    error = validate_channel(channel)
    assert error is not None
    assert error.startswith(message), error
    assert "TOKEN" not in error


@pytest.mark.parametrize(
    ("channel", "shown"),
    [
        ("C0123456789", "C0123456789"),
        ("discord:1234567890123456789", "discord:1234567890123456789"),
        (f"discord:{HOOK}", "discord:…/123456789012345678/***"),
        ("discord:https://discord.com/api/webhooks/123/TOKEN?wait=true", "discord:…/123/***"),
        ("discord:http://127.0.0.1:9/hooks/42/TOKEN", "discord:…/42/***"),
        ("discord:https://hooks.example.org/TOKEN", "discord:…/***"),
        ("discord:https://hooks.example.org/abcTOKEN/TOKEN", "discord:…/***"),
        ("discord:https://u:TOKEN@discord.com/api/webhooks/7/TOKEN", "discord:…/7/***"),
        ("discord:$TRADE_WEBHOOK", "discord:$TRADE_WEBHOOK"),
        ("discord:${TRADE_WEBHOOK}", "discord:$TRADE_WEBHOOK"),
        ("discord:$BAD-TOKEN", "discord:$***"),
        ("https://hooks.slack.com/services/T0/B0/TOKEN", "…/***"),
        ("weird TOKEN value", "***"),
    ],
)
def test_display_channel_never_shows_the_token(channel: str, shown: str) -> None:
    assert display_channel(channel) == shown
    assert "TOKEN" not in display_channel(channel)


@pytest.mark.parametrize(
    ("channel", "shown"),
    [
        ("general", "general"),
        ("#news", "#news"),
        ("#private-news", "#private-news"),
        ("this-is-a-very-long-channel-name-2024", "this-is-a-very-long-channel-name-2024"),
        ("bad chan", "'bad chan'"),
        ("#trade news", "'#trade news'"),
        ("café chan", "'café chan'"),
        ("it's", '"it\'s"'),
        ("evil\x1b[2J\nchan\ttab", "'evil\\x1b[2J\\nchan\\ttab'"),
        ("\u202eright-to-left", "'\\u202eright-to-left'"),
        ("a b " * 30, repr(("a b " * 30)[:SHOWN_LENGTH]) + "…"),
    ],
)
def test_display_channel_shows_harmless_text_quoted(channel: str, shown: str) -> None:
    assert display_channel(channel) == shown
    assert not looks_secret(channel)
    assert all(ch.isprintable() for ch in display_channel(channel))


@pytest.mark.parametrize(
    "channel",
    [
        "xoxb-1234-5678-abcdefABCDEF",  # used to pass as a plain name and be shown
        "xapp-1-A0123-456-abcdef",
        "my token is xoxp-12-34",
        "Bearer abc",
        "my SECRET value",
        "password hunter2",
        "api key 12345",
        "bob:hunter2@example.org",
        "example.org/hook?key=abc",
        "discord.com/api/webhooks/123/TOKEN",
        "ghp_AbCdEf0123456789AbCdEf0123456789",
        "0123456789abcdef0123456789abcdef",
        "dGhpcyBpcyBhIHNlY3JldCB2YWx1ZQ3==",
    ],
)
def test_display_channel_masks_what_looks_like_a_secret(channel: str) -> None:
    shown = display_channel(channel)
    assert shown in ("***", "…/123/***")
    error = validate_channel(channel)
    assert error is not None and shown in error
    for part in channel.replace("/", " ").replace("@", " ").replace(":", " ").split():
        if len(part) >= 6 and part not in ("discord.com", "example.org", "webhooks"):
            assert part not in shown and part not in error, part


def test_invalid_channel_message_quotes_what_was_typed() -> None:
    assert validate_channel("bad chan") == (
        "'bad chan' is not a Slack channel ID (upper-case letters and digits starting "
        "with C, G or D, like C0123456789), discord:<channel ID> or discord:<webhook URL>"
    )
    error = validate_channel("#trade news\n")
    assert error is not None and error.startswith("'#trade news\\n' is a channel name;")


def test_a_mistyped_discord_channel_id_is_explained(db_url: str, tmp_path: Path) -> None:
    """Not "the webhook URL must start with https://" for something that is
    no URL at all; and the Slack-ID message names discord:<channel ID> too."""
    common = ("--config", str(tmp_path / "none.yaml"), "--db", db_url)
    result = run_cli(*common, "watch", "add", "--channel", "discord:12abc", "tariff")
    assert result.code == 2
    assert "after discord: comes a Discord channel ID (digits only), a webhook URL" in result.err
    result = run_cli(*common, "watch", "add", "--channel", "X0", "tariff")
    assert result.code == 2 and "discord:<channel ID> or discord:<webhook URL>" in result.err


def test_env_var_name() -> None:
    assert env_var_name("discord:$TRADE_WEBHOOK") == "TRADE_WEBHOOK"
    assert env_var_name("discord:${TRADE_WEBHOOK}") == "TRADE_WEBHOOK"
    assert env_var_name(f"discord:{HOOK}") is None
    assert env_var_name("C0123456789") is None


def test_resolve_inline_webhook() -> None:
    assert resolve_discord_webhook(f"discord:{HOOK}", {}) == HOOK


def test_resolve_webhook_from_environment() -> None:
    env = {"TRADE_WEBHOOK": f"  {HOOK}\n"}
    assert resolve_discord_webhook("discord:$TRADE_WEBHOOK", env) == HOOK
    assert resolve_discord_webhook("discord:${TRADE_WEBHOOK}", env) == HOOK


@pytest.mark.parametrize(
    ("channel", "env", "message"),
    [
        ("discord:$TRADE_WEBHOOK", {}, "environment variable TRADE_WEBHOOK is not set"),
        (
            "discord:$TRADE_WEBHOOK",
            {"TRADE_WEBHOOK": " "},
            "environment variable TRADE_WEBHOOK is not set",
        ),
        (
            "discord:$TRADE_WEBHOOK",
            {"TRADE_WEBHOOK": "ftp://discord.com/api/webhooks/1/TOKEN"},
            "environment variable TRADE_WEBHOOK: the Discord webhook URL must start with https://",
        ),
        (
            "discord:$TRADE_WEBHOOK",
            {"TRADE_WEBHOOK": "https://me:TOKEN@discord.com/api/webhooks/1/TOKEN"},
            "environment variable TRADE_WEBHOOK: the Discord webhook URL must not contain",
        ),
        ("discord:$9X", {"9X": HOOK}, '"9X" is not a valid environment variable name'),
        ("discord:ftp://x/1/TOKEN", {}, "the Discord webhook URL must start with https://"),
        ("C0123456789", {}, "C0123456789 is not a Discord channel"),
    ],
)
def test_resolve_errors_reveal_no_secret(channel: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_discord_webhook(channel, env)
    assert str(info.value).startswith(message), str(info.value)
    assert "TOKEN" not in str(info.value)
