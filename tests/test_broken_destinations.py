"""Destinations marked broken (Discord 401/403/404): shown by `status`,
cleared by `newshound retry`, never leaking a webhook's secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config

from bot.messages import ALERT
from bot.store import PENDING, Store

HOOK = "discord:https://discord.com/api/webhooks/123456/s3cretT0ken"
CHANNEL = "discord:1200000000000000001"


@pytest.fixture
def common(tmp_path: Path) -> tuple[str, ...]:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    return ("--config", str(config), "--db", str(tmp_path / "newshound.db"))


def test_status_shows_broken_destinations_and_retry_clears_them(
    common: tuple[str, ...],
) -> None:
    with Store(common[3]) as store:
        store.add_outbox(HOOK, ALERT, {"title": "Held story"}, 1.0)
        store.mark_broken(HOOK, "Discord refused the webhook (HTTP 404)", "f1", 1.0)
        store.mark_broken(CHANNEL, "the bot lacks permission there (HTTP 403)", "f2", 2.0)
    status = run_cli(*common, "status")
    assert status.code == 0
    assert "Broken destinations" in status.out
    assert "discord:…/123456/***: Discord refused the webhook (HTTP 404)" in status.out
    assert f"{CHANNEL}: the bot lacks permission there (HTTP 403)" in status.out
    assert "s3cret" not in status.out

    one = run_cli(*common, "retry", "--channel", CHANNEL)
    assert one.code == 0 and one.out.startswith("1 broken destination will be called again")
    everything = run_cli(*common, "retry")
    assert everything.out.startswith("1 broken destination will be called again")
    assert "Broken destinations" not in run_cli(*common, "status").out
    with Store(common[3]) as store:
        assert [m.state for m in store.messages(PENDING)] == [PENDING]  # the alert still waits


def test_retry_refuses_a_bad_channel(common: tuple[str, ...]) -> None:
    result = run_cli(*common, "retry", "--channel", "not a channel")
    assert result.code == 2 and "invalid --channel" in result.err


def test_a_config_change_calls_broken_destinations_again(
    common: tuple[str, ...], tmp_path: Path
) -> None:
    assert run_cli(*common, "watch", "list", "--channel", CHANNEL).code == 0  # config noted
    with Store(common[3]) as store:
        store.mark_broken(CHANNEL, "the bot lacks permission there (HTTP 403)", "f", 1.0)
    run_cli(*common, "watch", "list", "--channel", CHANNEL)  # same config: still held
    with Store(common[3]) as store:
        assert CHANNEL in store.broken_destinations()
    write_config(tmp_path / "feeds.yaml", [], [{"channel": CHANNEL, "terms": ["tariff"]}])
    run_cli(*common, "watch", "list", "--channel", CHANNEL)
    with Store(common[3]) as store:
        assert store.broken_destinations() == {}
