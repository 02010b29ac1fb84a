"""Story identity across feeds, end to end through `newshound poll` (SPEC §4):
home-page links, feed-local GUID counters, channels scoped to one feed, and
stories of quiet feeds outliving `retention`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from fakeslack import FakeSlack
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.store import Store

NOW = datetime.now(UTC)
CHANNEL_A = "C0IDENTA001"
CHANNEL_B = "C0IDENTB001"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        yield fake


def poll(config: Path, db: Path) -> str:
    result = run_cli("--config", str(config), "--db", str(db), "poll", "--once", "--all")
    assert result.code == 0, result.err
    return result.out


def story(n: int, **fields: object) -> FeedEntry:
    values: dict[str, object] = {
        "title": f"Tariff story {n}",
        "link": f"https://news.example/story-{n}",
        "summary": f"Body of story {n}.",
        "published": NOW - timedelta(minutes=n),
    }
    values.update(fields)
    return FeedEntry(**values)  # type: ignore[arg-type]


def scoped_config(feed_server: FeedServer, tmp_path: Path) -> Path:
    """/a.xml (FeedA) alerts CHANNEL_A only, /b.xml (FeedB) CHANNEL_B only."""
    return write_config(
        tmp_path / "feeds.yaml",
        [
            {"url": feed_server.url("/a.xml"), "name": "FeedA"},
            {"url": feed_server.url("/b.xml"), "name": "FeedB"},
        ],
        [
            {"channel": CHANNEL_A, "terms": ["tariff"], "feeds": ["FeedA"]},
            {"channel": CHANNEL_B, "terms": ["tariff"], "feeds": ["FeedB"]},
        ],
    )


def titles(slack: FakeSlack, channel: str | None = None) -> list[str]:
    """The story titles posted (the text fallback starts "TITLE (SOURCE) matched: …")."""
    return sorted(post["text"].split(" (")[0] for post in slack.posts(channel))


def test_entries_sharing_a_home_page_link_are_separate_stories(
    feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    home = "https://news.example/"
    entries = [story(n, link=home, guid=f"https://news.example/?p={100 + n}") for n in (1, 2, 3)]
    feed_server.set("/home.xml", rss(entries))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/home.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],
    )
    db = tmp_path / "db"
    poll(config, db)
    assert len(slack.posts()) == 3
    feed_server.set(
        "/home.xml", rss([story(0, link=home, guid="https://news.example/?p=104"), *entries])
    )
    poll(config, db)
    poll(config, db)
    assert len(slack.posts()) == 4  # the new one, once; the old ones never again


def test_short_guids_of_different_feeds_are_different_stories(
    feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    feed_server.set("/a.xml", rss([story(1, link=None, guid="1", title="Tariff news from A")]))
    feed_server.set(
        "/b.xml", rss([story(2, link=None, guid="1", title="Other tariff news from B")])
    )
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/a.xml"), feed_server.url("/b.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],
    )
    db = tmp_path / "db"
    poll(config, db)
    poll(config, db)
    assert len(slack.posts()) == 2


@pytest.mark.parametrize("same_cycle", [False, True])
def test_a_channel_gets_a_story_through_the_feed_it_watches(
    feed_server: FeedServer, slack: FakeSlack, tmp_path: Path, same_cycle: bool
) -> None:
    shock = story(1, title="Tariff shock")
    unrelated = story(2, title="Weather report", summary="Sunny.")
    feed_server.set("/a.xml", rss([shock]))
    feed_server.set("/b.xml", rss([shock, unrelated] if same_cycle else [unrelated]))
    config = scoped_config(feed_server, tmp_path)
    db = tmp_path / "db"
    poll(config, db)
    if not same_cycle:
        assert slack.posts(CHANNEL_B) == []
        feed_server.set("/b.xml", rss([shock, unrelated]))
    poll(config, db)
    poll(config, db)
    assert titles(slack, CHANNEL_A) == ["Tariff shock"]
    assert titles(slack, CHANNEL_B) == ["Tariff shock"]


def test_a_story_new_to_a_feed_never_reaches_a_channel_twice(
    feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    shock = story(1, title="Tariff shock")
    feed_server.set("/a.xml", rss([shock]))
    feed_server.set("/b.xml", rss([]))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/a.xml"), feed_server.url("/b.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],  # watches both feeds
    )
    db = tmp_path / "db"
    poll(config, db)
    feed_server.set("/b.xml", rss([shock, shock]))  # reaches feed B later (twice, even)
    poll(config, db)
    assert titles(slack) == ["Tariff shock"]


def test_stories_of_a_quiet_feed_outlive_retention(
    feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    dated, undated = story(1), story(2, published=None)
    feed_server.set("/quiet.xml", rss([dated, undated]), etag='"v1"')
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/quiet.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],
        max_age="0",
        retention="1d",
    )
    db = tmp_path / "db"
    poll(config, db)
    assert titles(slack) == ["Tariff story 1"]  # undated on the first poll: never
    with Store(db) as store:  # a long quiet spell: only 304s since
        store._execute("UPDATE items SET last_seen_at = 0")
    assert "not_modified" in poll(config, db)
    with Store(db) as store:
        assert len(store.recent_items()) == 2  # still carried: not pruned
    # The feed changes at last: its old stories are still known.
    feed_server.set("/quiet.xml", rss([story(3, title="Weather"), dated, undated]), etag='"v2"')
    poll(config, db)
    assert titles(slack) == ["Tariff story 1"]
    # A story the feed no longer carries is forgotten after `retention`.
    feed_server.set("/quiet.xml", rss([story(3, title="Weather")]), etag='"v3"')
    poll(config, db)
    with Store(db) as store:
        store._execute("UPDATE items SET last_seen_at = 0 WHERE title LIKE 'Tariff%'")
    poll(config, db)
    with Store(db) as store:
        assert [stored.item.title for stored in store.recent_items()] == ["Weather"]


def test_feeds_read_before_the_upgrade_alert_nothing_old(
    feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    """A database from before newshound tracked which feeds carry which
    stories: feed B's next read records what it carries, alerting nothing old."""
    shock = story(1, title="Tariff shock")
    feed_server.set("/a.xml", rss([shock]))
    feed_server.set("/b.xml", rss([story(2, title="Weather")]))
    config = scoped_config(feed_server, tmp_path)
    db = tmp_path / "db"
    poll(config, db)
    with Store(db) as store:  # as the migration leaves an older database
        store._execute("UPDATE feeds SET items_seen_at = NULL")
    feed_server.set("/b.xml", rss([shock, story(2, title="Weather")]))
    poll(config, db)
    assert slack.posts(CHANNEL_B) == []
    feed_server.set("/b.xml", rss([story(3, title="Tariff news"), shock]))
    poll(config, db)
    assert titles(slack, CHANNEL_B) == ["Tariff news"]
