"""End-to-end: real loopback feeds -> `newshound poll --once` -> fake Slack over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, run_subprocess, write_config
from fakeslack import FakeSlack, Fault
from feedgen import FeedEntry, atom, json_feed, rss
from feedserver import FeedServer

NOW = datetime.now(UTC)
TRADE = FeedEntry(
    title="US and India near trade deal; Pax Silica pact on the table",
    link="https://news.example/2026/11/us-india?utm_source=rss",
    guid="urn:news:1001",
    summary=(
        "<p>Officials said the <b>trade deal</b> would cut tariffs on electronics and bring "
        "India into the Pax Silica supply-chain partnership.</p>"
    ),
    published=NOW - timedelta(hours=1),
)
OTHER = FeedEntry(
    title="Central bank holds rates",
    link="https://news.example/rates",
    guid="urn:news:1002",
    summary="Nothing to see for trade desks.",
    published=NOW - timedelta(hours=2),
)
TRADE_CHANNEL = "C0TRADE0001"
CHIPS_CHANNEL = "C0CHIPS0001"
TRADE_TERMS = ["trade deal", "Pax Silica", "tariff"]


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch):
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        yield fake


@pytest.fixture
def paths(db_url: str, tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "feeds.yaml", db_url


def poll(config: Path, db: Path, *extra: str):
    result = run_cli("--config", str(config), "--db", str(db), "poll", "--once", "--all", *extra)
    assert result.code == 0, result.err
    return result


def test_trade_article_alerts_once_with_all_terms(feed_server: FeedServer, slack: FakeSlack, paths):
    config, db = paths
    feed_server.set("/world.xml", rss([TRADE, OTHER]))
    write_config(
        config, [feed_server.url("/world.xml")], [{"channel": TRADE_CHANNEL, "terms": TRADE_TERMS}]
    )

    poll(config, db)
    posts = slack.posts(TRADE_CHANNEL)
    assert len(posts) == 1
    post = posts[0]
    assert post["unfurl_links"] is False and post["unfurl_media"] is False
    assert "link_names" not in post and post.get("parse") != "full"
    for term in TRADE_TERMS:
        assert term in post["text"]
    blocks = json.dumps(post["blocks"])
    assert (
        "<https://news.example/2026/11/us-india?utm_source=rss|US and India near trade deal"
        in blocks
    )
    assert "*trade deal*" in blocks and "*tariffs*" in blocks  # matched words bold in the snippet
    assert post["metadata"]["event_type"] == "newshound_alert"

    # A second cycle, and a restart in a new process on the same database: nothing new.
    poll(config, db)
    restarted = run_subprocess(
        "poll",
        "--once",
        "--all",
        "--config",
        str(config),
        "--db",
        str(db),
        env={"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_API_URL": slack.api_url},
    )
    assert restarted.code == 0, restarted.err
    assert len(slack.posts()) == 1


def test_same_story_in_two_feeds_and_guid_churn_alert_once(
    feed_server: FeedServer, slack: FakeSlack, paths
):
    config, db = paths
    feed_server.set("/a.xml", rss([TRADE]))
    syndicated = FeedEntry(
        title="Exporters cheer: trade deal nears",
        link="https://NEWS.example/2026/11/us-india/?fbclid=xyz&utm_medium=social#comments",
        guid="syndicated-77",
        summary="Same story, other feed.",
        published=NOW - timedelta(minutes=30),
    )
    feed_server.set("/b.xml", atom([syndicated]), content_type="application/atom+xml")
    write_config(
        config,
        [feed_server.url("/a.xml"), feed_server.url("/b.xml")],
        [
            {"channel": TRADE_CHANNEL, "terms": TRADE_TERMS},
            {"channel": CHIPS_CHANNEL, "terms": ["trade deal"]},
        ],
    )
    result = poll(config, db)
    assert len(slack.posts(TRADE_CHANNEL)) == 1
    assert len(slack.posts(CHIPS_CHANNEL)) == 1  # each channel gets its own alert
    assert "1 duplicates suppressed" in result.out

    # The publisher changes the GUID, edits the title and adds tracking parameters.
    churned = FeedEntry(
        title="US, India near trade deal (updated)",
        link="https://news.example/2026/11/us-india?utm_campaign=x&gclid=1",
        guid="urn:news:NEW-GUID",
        summary=TRADE.summary,
        published=TRADE.published,
    )
    feed_server.set("/a.xml", rss([churned, OTHER]))
    poll(config, db)
    assert len(slack.posts()) == 2


def test_first_poll_flood_is_capped_with_one_digest(
    feed_server: FeedServer, slack: FakeSlack, paths
):
    config, db = paths
    entries = [
        FeedEntry(
            title=f"Tariff update number {n}",
            link=f"https://news.example/tariffs/{n}",
            published=NOW - timedelta(minutes=n),
        )
        for n in range(25)
    ]
    feed_server.set("/flood.json", json_feed(entries), content_type="application/feed+json")
    write_config(
        config,
        [feed_server.url("/flood.json")],
        [{"channel": TRADE_CHANNEL, "terms": ["tariff"]}],
        max_alerts_per_poll=5,
    )
    poll(config, db)
    posts = slack.posts(TRADE_CHANNEL)
    assert len(posts) == 6
    singles, digest = posts[:5], posts[5]
    assert [p["text"].split(" (")[0] for p in singles] == [
        f"Tariff update number {n}" for n in range(5)
    ]
    digest_text = json.dumps(digest["blocks"])
    assert "20 more matching stories" in digest_text
    for n in range(5, 25):
        assert f"https://news.example/tariffs/{n}|Tariff update number {n}>" in digest_text


def test_first_poll_policy_undated_and_max_age(feed_server: FeedServer, slack: FakeSlack, paths):
    config, db = paths
    old = FeedEntry(
        title="Old tariff story", link="https://n.example/old", published=NOW - timedelta(days=5)
    )
    undated = FeedEntry(
        title="Undated tariff story", link="https://n.example/undated", published=None
    )
    fresh = FeedEntry(title="Fresh tariff story", link="https://n.example/fresh", published=NOW)
    feed_server.set("/f.xml", rss([old, undated, fresh]))
    write_config(
        config, [feed_server.url("/f.xml")], [{"channel": TRADE_CHANNEL, "terms": ["tariff"]}]
    )
    poll(config, db)
    assert [p["text"].split(" (")[0] for p in slack.posts()] == ["Fresh tariff story"]

    later_undated = FeedEntry(
        title="Later undated tariff story", link="https://n.example/later", published=None
    )
    feed_server.set("/f.xml", rss([later_undated, old, undated, fresh]))
    poll(config, db)
    assert [p["text"].split(" (")[0] for p in slack.posts()][-1] == "Later undated tariff story"
    assert len(slack.posts()) == 2


def test_slack_failure_leaves_alert_pending_then_delivers_once(
    feed_server: FeedServer, slack: FakeSlack, paths
):
    config, db = paths
    feed_server.set("/world.xml", rss([TRADE]))
    write_config(
        config, [feed_server.url("/world.xml")], [{"channel": TRADE_CHANNEL, "terms": TRADE_TERMS}]
    )
    slack.fail_next("chat.postMessage", Fault(status=500, error="internal_error"))
    first = poll(config, db)
    assert slack.posts() == []
    assert "1 pending" in first.out
    status = run_cli("--config", str(config), "--db", str(db), "status")
    assert "1 pending" in status.out

    poll(config, db)
    assert len(slack.posts()) == 1
    poll(config, db)
    assert len(slack.posts()) == 1


def test_permanent_slack_error_is_dead_and_shown_in_status(
    feed_server: FeedServer, slack: FakeSlack, paths
):
    config, db = paths
    feed_server.set("/world.xml", rss([TRADE]))
    write_config(
        config, [feed_server.url("/world.xml")], [{"channel": TRADE_CHANNEL, "terms": TRADE_TERMS}]
    )
    slack.fail_next("chat.postMessage", Fault(status=200, error="channel_not_found"))
    poll(config, db)
    status = run_cli("--config", str(config), "--db", str(db), "status")
    assert "1 dead" in status.out and "channel_not_found" in status.out
    poll(config, db)
    assert len(slack.calls("chat.postMessage")) == 1  # dead alerts are not retried


def test_hostile_title_arrives_as_harmless_text(feed_server: FeedServer, slack: FakeSlack, paths):
    config, db = paths
    evil = FeedEntry(
        title="<!channel> hi <@U123> <https://evil.example|click> tariff",
        link="https://n.example/evil",
        summary="&lt;!here&gt; tariff news <b>bold</b>",
        published=NOW,
    )
    feed_server.set("/evil.xml", rss([evil]))
    write_config(
        config, [feed_server.url("/evil.xml")], [{"channel": TRADE_CHANNEL, "terms": ["tariff"]}]
    )
    poll(config, db)
    post = slack.posts()[0]
    everything = post["text"] + json.dumps(post["blocks"])
    for bad in ("<!channel>", "<!here>", "<@U123>", "<https://evil.example|click>"):
        assert bad not in everything
    assert "&lt;!channel&gt;" in post["text"]


def test_failing_feeds_are_reported_and_others_continue(
    feed_server: FeedServer, slack: FakeSlack, paths
):
    config, db = paths
    feed_server.set("/ok.xml", rss([TRADE]))
    feed_server.set("/broken.xml", b"this is not a feed at all", content_type="text/plain")
    feed_server.set("/500.xml", b"oops", status=500)
    write_config(
        config,
        [
            feed_server.url("/ok.xml"),
            feed_server.url("/missing.xml"),
            feed_server.url("/broken.xml"),
            feed_server.url("/500.xml"),
            "http://does-not-exist.invalid/feed.xml",
        ],
        [{"channel": TRADE_CHANNEL, "terms": TRADE_TERMS}],
    )
    result = poll(config, db)
    assert "Traceback" not in result.out + result.err
    assert result.out.count("error:") == 4
    assert "(4 failed)" in result.out
    assert len(slack.posts()) == 1
    status = run_cli("--config", str(config), "--db", str(db), "status")
    assert "http_404" in status.out and "next check" in status.out


def test_console_sink_without_token(
    feed_server: FeedServer, paths, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    config, db = paths
    feed_server.set("/world.xml", rss([TRADE]))
    write_config(
        config, [feed_server.url("/world.xml")], [{"channel": TRADE_CHANNEL, "terms": TRADE_TERMS}]
    )
    result = poll(config, db)
    assert "== alert -> C0TRADE0001" in result.out
    assert "matched: trade deal, Pax Silica, tariff" in result.out
    assert "**trade deal**" in result.out


def test_added_terms_alert_and_config_terms_cannot_be_removed(
    feed_server: FeedServer, slack: FakeSlack, paths
):
    config, db = paths
    feed_server.set("/world.xml", rss([TRADE]))
    write_config(
        config, [feed_server.url("/world.xml")], [{"channel": TRADE_CHANNEL, "terms": ["tariff"]}]
    )
    common = ("--config", str(config), "--db", str(db))
    added = run_cli("watch", "add", "--channel", CHIPS_CHANNEL, "Pax", "Silica", *common)
    assert added.code == 0, added.err
    assert "pax silica" in added.out.lower()
    listed = run_cli(*common, "watch", "list", "--channel", TRADE_CHANNEL)
    assert "From feeds.yaml" in listed.out and "tariff" in listed.out
    refused = run_cli(*common, "watch", "remove", "--channel", TRADE_CHANNEL, "tariff")
    assert refused.code == 2 and "feeds.yaml" in refused.err
    bad = run_cli(*common, "watch", "add", "--channel", TRADE_CHANNEL, "-rumor")
    assert bad.code == 2 and "exclusion" in bad.err.lower()

    poll(config, db)
    assert len(slack.posts(CHIPS_CHANNEL)) == 1
    assert "Pax Silica" in slack.posts(CHIPS_CHANNEL)[0]["text"]
    removed = run_cli(*common, "watch", "remove", "--channel", CHIPS_CHANNEL, "pax silica")
    assert removed.code == 0, removed.err
    assert "Pax Silica" not in run_cli(*common, "watch", "list", "--channel", CHIPS_CHANNEL).out


def test_stories_still_in_feeds_survive_pruning(feed_server: FeedServer, slack: FakeSlack, paths):
    """retention forgets stories no feed carries any more, never ones still carried."""
    config, db = paths
    feed_server.set("/world.xml", rss([TRADE]))
    write_config(
        config,
        [feed_server.url("/world.xml")],
        [{"channel": TRADE_CHANNEL, "terms": TRADE_TERMS}],
        retention="2d",
    )
    poll(config, db)
    from bot.store import Store

    with Store(db) as store:
        # Pretend the story was last seen long ago: the next poll sees it again
        # (touching it) before pruning, so it must not alert a second time.
        store.db.execute("UPDATE items SET last_seen_at = 0")
    poll(config, db)
    assert len(slack.posts()) == 1
    feed_server.set("/world.xml", rss([OTHER]))
    with Store(db) as store:
        store.db.execute("UPDATE items SET last_seen_at = 0 WHERE link LIKE '%us-india%'")
    poll(config, db)
    with Store(db) as store:
        assert store.stories.find(["link:news.example/2026/11/us-india"]) is None
        assert store.stories.find(["link:news.example/rates"]) is not None


def test_unset_discord_variable_keeps_alerts_pending_until_it_is_set(
    feed_server: FeedServer, paths, monkeypatch: pytest.MonkeyPatch, caplog
):
    from fakediscord import FakeDiscord

    config, db = paths
    feed_server.set("/world.xml", rss([TRADE]))
    write_config(
        config,
        [feed_server.url("/world.xml")],
        [{"channel": "discord:$TRADE_HOOK", "terms": TRADE_TERMS}],
    )
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("TRADE_HOOK", raising=False)
    warning = (
        "environment variable TRADE_HOOK is not set, so alerts for "
        "discord:$TRADE_HOOK cannot be sent until it is"
    )
    with caplog.at_level("WARNING"):
        first = poll(config, db)
    # Warned at start-up (same words as `check`), and the alert waits.
    assert warning in caplog.text
    assert warning in run_cli("--config", str(config), "check").err
    assert "1 pending" in first.out and "0 dead" in first.out
    status = run_cli("--config", str(config), "--db", str(db), "status")
    assert "1 pending" in status.out and "0 dead" in status.out
    assert "environment variable TRADE_HOOK is not set" in status.out

    with FakeDiscord() as discord:
        url = discord.webhook()
        monkeypatch.setenv("TRADE_HOOK", url)
        poll(config, db)
        poll(config, db)
        (posted,) = discord.posts(url)  # sent once, then never again
        assert posted["embeds"][0]["url"].startswith("https://news.example/2026/11/us-india")
