"""bot/cli.py: the `watch`, `status` and `poll` commands through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config

from bot.cli import plain_text

CHANNEL = "C0CLITEST01"
WEBHOOK = "discord:https://discord.com/api/webhooks/123456/s3cretT0ken"


@pytest.fixture
def common(tmp_path: Path) -> tuple[str, ...]:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    return ("--config", str(config), "--db", str(tmp_path / "newshound.db"))


# -- watch --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "why"),
    [
        ("bad chan", "not a Slack channel ID"),
        ("#news", "channel name"),
        ("discord:ftp://discord.com/api/webhooks/1/x", "https://"),
        ("discord:", "webhook URL"),
        ("discord:$1BAD", "environment variable"),
        ("https://discord.com/api/webhooks/1/x", "discord:<webhook URL>"),
    ],
)
@pytest.mark.parametrize("action", ["add", "remove", "list"])
def test_watch_refuses_an_invalid_channel(
    common: tuple[str, ...], channel: str, why: str, action: str
) -> None:
    query = [] if action == "list" else ["tariff"]
    result = run_cli(*common, "watch", action, "--channel", channel, *query)
    assert result.code == 2
    assert result.err.startswith("newshound: invalid --channel: ")
    assert why in result.err
    assert result.out == ""
    assert "s3cret" not in result.err
    # Nothing was stored for the bad channel.
    assert run_cli(*common, "watch", "list", "--channel", CHANNEL).code == 0


def test_watch_accepts_slack_ids_and_discord_channels(common: tuple[str, ...]) -> None:
    for channel in (CHANNEL, "G0PRIVATE01", WEBHOOK, "discord:$TRADE_WEBHOOK"):
        result = run_cli(*common, "watch", "add", "--channel", channel, "tariff")
        assert result.code == 0, result.err


def test_watch_output_keeps_webhook_masks_and_asterisks_in_terms(common: tuple[str, ...]) -> None:
    added = run_cli(*common, "watch", "add", "--channel", WEBHOOK, "5*star", "rating")
    assert added.code == 0, added.err
    assert "Now watching phrase 5 star rating (also: 5 star ratings)" in added.out
    listed = run_cli(*common, "watch", "list", "--channel", WEBHOOK)
    assert "Terms watched in discord:…/123456/***:" in listed.out
    assert "• 5*star rating (added by the command line" in listed.out
    assert "s3cret" not in listed.out


@pytest.mark.parametrize(
    ("mrkdwn", "plain"),
    [
        ("*newshound* watches", "newshound watches"),
        ("phrase *trade deal* (also: trade deals)", "phrase trade deal (also: trade deals)"),
        (
            'exact phrase *"pax silica"*, excluding *rumor*',
            'exact phrase "pax silica", excluding rumor',
        ),
        ("*x* and *tariff* or *tax*", "x and tariff or tax"),
        ("Terms watched in discord:…/123/***:", "Terms watched in discord:…/123/***:"),
        ("• 5*star (added by <@U0ALICE01>)", "• 5*star (added by <@U0ALICE01>)"),
        ("a * b * c and 2*3*4", "a * b * c and 2*3*4"),
        ("**", "**"),
    ],
)
def test_plain_text_removes_only_bold_markers(mrkdwn: str, plain: str) -> None:
    assert plain_text(mrkdwn) == plain
