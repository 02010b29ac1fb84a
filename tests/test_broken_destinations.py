"""Discord destinations paused after 401/403/404: shown by `status`, resumed
by `newshound retry` or a changed feeds.yaml, never leaking a webhook's
secret (the pause key is the channel as `display_channel` shows it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config

from bot.messages import ALERT
from bot.sinks.discord import DiscordSink
from bot.store import PENDING, Store

HOOK = "discord:https://discord.com/api/webhooks/123456/s3cretT0ken"
CHANNEL = "discord:1200000000000000001"


@pytest.fixture
def common(db_url: str, tmp_path: Path) -> tuple[str, ...]:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    return ("--config", str(config), "--db", db_url)


def test_status_shows_paused_discord_destinations_and_retry_resumes_them(
    common: tuple[str, ...],
) -> None:
    hook_key = DiscordSink({}).pause_key(HOOK)
    assert hook_key == "discord:…/123456/***"
    with Store(common[3]) as store:
        store.outbox.add(HOOK, ALERT, {"title": "Held story"}, 1.0)
        store.gates.pause(hook_key, "Discord refused the webhook (HTTP 404)", 1.0)
        store.gates.pause(CHANNEL, "the bot lacks permission there (HTTP 403)", 2.0)
    status = run_cli(*common, "status")
    assert status.code == 0
    assert "Paused: discord:…/123456/*** since" in status.out
    assert "Discord refused the webhook (HTTP 404)" in status.out
    assert f"Paused: {CHANNEL} since" in status.out
    assert "s3cret" not in status.out

    resumed = run_cli(*common, "retry", "--channel", CHANNEL)
    assert resumed.code == 0
    assert f"Delivery through {CHANNEL} resumed." in resumed.out
    assert "Paused:" not in run_cli(*common, "status").out
    with Store(common[3]) as store:
        assert [m.state for m in store.outbox.in_state(PENDING)] == [
            PENDING
        ]  # the alert still waits


def test_a_config_change_calls_paused_discord_destinations_again(
    common: tuple[str, ...], tmp_path: Path
) -> None:
    # config noted
    assert run_cli(*common, "watch", "add", "--channel", CHANNEL, "lumber").code == 0
    with Store(common[3]) as store:
        store.gates.pause(CHANNEL, "the bot lacks permission there (HTTP 403)", 1.0)
        store.gates.pause("slack:token", "the Slack token is broken", 1.0)
    run_cli(*common, "watch", "list", "--channel", CHANNEL)  # same config: still paused
    with Store(common[3]) as store:
        assert CHANNEL in store.gates.paused()
    write_config(tmp_path / "feeds.yaml", [], [{"channel": CHANNEL, "terms": ["tariff"]}])
    run_cli(*common, "watch", "list", "--channel", CHANNEL)
    with Store(common[3]) as store:
        # A config edit cannot fix a Slack token: that pause stays.
        assert list(store.gates.paused()) == ["slack:token"]
