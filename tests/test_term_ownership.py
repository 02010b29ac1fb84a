"""Terms added with /watch (or `newshound watch add`): owned by the config while
feeds.yaml lists them too, given back when it drops them; and the add preview
keeps to the feeds the channel watches."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer

CHANNEL = "C0OWNERS001"


def cli(config: Path, db: Path, *args: str) -> str:
    result = run_cli("--config", str(config), "--db", str(db), *args)
    assert result.code == 0, result.err
    return result.out


def test_a_users_term_survives_the_config_listing_it_and_dropping_it(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    config, db = tmp_path / "feeds.yaml", db_url
    write_config(config, [], [{"channel": CHANNEL, "terms": ["chips"]}])
    cli(config, db, "watch", "add", "--channel", CHANNEL, "tariff")

    write_config(config, [], [{"channel": CHANNEL, "terms": ["chips", "Tariff"]}])
    cli(config, db, "poll", "--once")  # the config now lists it: config-owned
    refused = run_cli(
        "--config", str(config), "--db", str(db), "watch", "remove", "--channel", CHANNEL, "tariff"
    )
    assert refused.code == 2

    write_config(config, [], [{"channel": CHANNEL, "terms": ["chips"]}])
    cli(config, db, "poll", "--once")  # dropped from the config: theirs again
    listing = cli(config, db, "watch", "list", "--channel", CHANNEL)
    assert "Tariff" in listing or "tariff" in listing
    cli(config, db, "watch", "remove", "--channel", CHANNEL, "tariff")
    assert "tariff" not in cli(config, db, "watch", "list", "--channel", CHANNEL).lower()

    # A term only the config ever had still goes when the config drops it.
    write_config(config, [], [])
    cli(config, db, "poll", "--once")
    assert "chips" not in cli(config, db, "watch", "list", "--channel", CHANNEL)


def test_the_add_preview_only_shows_stories_from_the_channels_feeds(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    feed_server.set(
        "/a.xml", rss([FeedEntry(title="Tariff news from A", link="https://a.example/1")])
    )
    feed_server.set(
        "/b.xml", rss([FeedEntry(title="Tariff news from B", link="https://b.example/1")])
    )
    config, db = tmp_path / "feeds.yaml", db_url
    write_config(
        config,
        [
            {"url": feed_server.url("/a.xml"), "name": "FeedA"},
            {"url": feed_server.url("/b.xml"), "name": "FeedB"},
        ],
        [{"channel": CHANNEL, "terms": ["chips"], "feeds": ["FeedA"]}],
    )
    cli(config, db, "poll", "--once")
    reply = cli(config, db, "watch", "add", "--channel", CHANNEL, "tariff")
    assert "Tariff news from A" in reply
    assert "Tariff news from B" not in reply  # FeedB never alerts this channel
    other = cli(config, db, "watch", "add", "--channel", "C0ANYFEED01", "tariff")
    assert "Tariff news from A" in other and "Tariff news from B" in other
