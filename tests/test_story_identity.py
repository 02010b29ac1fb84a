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
from bot.story_identity import legacy_canonical_link

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
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    home = "https://news.example/"
    entries = [story(n, link=home, guid=f"https://news.example/?p={100 + n}") for n in (1, 2, 3)]
    feed_server.set("/home.xml", rss(entries))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/home.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],
    )
    db = db_url
    poll(config, db)
    assert len(slack.posts()) == 3
    feed_server.set(
        "/home.xml", rss([story(0, link=home, guid="https://news.example/?p=104"), *entries])
    )
    poll(config, db)
    poll(config, db)
    assert len(slack.posts()) == 4  # the new one, once; the old ones never again


def test_short_guids_of_different_feeds_are_different_stories(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
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
    db = db_url
    poll(config, db)
    poll(config, db)
    assert len(slack.posts()) == 2


@pytest.mark.parametrize("same_cycle", [False, True])
def test_a_channel_gets_a_story_through_the_feed_it_watches(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path, same_cycle: bool
) -> None:
    shock = story(1, title="Tariff shock")
    unrelated = story(2, title="Weather report", summary="Sunny.")
    feed_server.set("/a.xml", rss([shock]))
    feed_server.set("/b.xml", rss([shock, unrelated] if same_cycle else [unrelated]))
    config = scoped_config(feed_server, tmp_path)
    db = db_url
    poll(config, db)
    if not same_cycle:
        assert slack.posts(CHANNEL_B) == []
        feed_server.set("/b.xml", rss([shock, unrelated]))
    poll(config, db)
    poll(config, db)
    assert titles(slack, CHANNEL_A) == ["Tariff shock"]
    assert titles(slack, CHANNEL_B) == ["Tariff shock"]


def test_a_story_new_to_a_feed_never_reaches_a_channel_twice(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    shock = story(1, title="Tariff shock")
    feed_server.set("/a.xml", rss([shock]))
    feed_server.set("/b.xml", rss([]))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/a.xml"), feed_server.url("/b.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],  # watches both feeds
    )
    db = db_url
    poll(config, db)
    feed_server.set("/b.xml", rss([shock, shock]))  # reaches feed B later (twice, even)
    poll(config, db)
    assert titles(slack) == ["Tariff shock"]


def test_stories_of_a_quiet_feed_outlive_retention(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
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
    db = db_url
    poll(config, db)
    assert titles(slack) == ["Tariff story 1"]  # undated on the first poll: never
    with Store(db) as store:  # a long quiet spell: only 304s since
        store.db.execute("UPDATE items SET last_seen_at = 0")
    assert "not_modified" in poll(config, db)
    with Store(db) as store:
        assert len(store.stories.recent()) == 2  # still carried: not pruned
    # The feed changes at last: its old stories are still known.
    feed_server.set("/quiet.xml", rss([story(3, title="Weather"), dated, undated]), etag='"v2"')
    poll(config, db)
    assert titles(slack) == ["Tariff story 1"]
    # A story the feed no longer carries is forgotten after `retention`.
    feed_server.set("/quiet.xml", rss([story(3, title="Weather")]), etag='"v3"')
    poll(config, db)
    with Store(db) as store:
        store.db.execute("UPDATE items SET last_seen_at = 0 WHERE title LIKE 'Tariff%'")
    poll(config, db)
    with Store(db) as store:
        assert [stored.item.title for stored in store.stories.recent()] == ["Weather"]


def test_feeds_read_before_the_upgrade_alert_nothing_old(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    """A database from before newshound tracked which feeds carry which
    stories: feed B's next read records what it carries, alerting nothing old."""
    shock = story(1, title="Tariff shock")
    feed_server.set("/a.xml", rss([shock]))
    feed_server.set("/b.xml", rss([story(2, title="Weather")]))
    config = scoped_config(feed_server, tmp_path)
    db = db_url
    poll(config, db)
    with Store(db) as store:  # as the migration leaves an older database
        store.db.execute("UPDATE feeds SET items_seen_at = NULL")
    feed_server.set("/b.xml", rss([shock, story(2, title="Weather")]))
    poll(config, db)
    assert slack.posts(CHANNEL_B) == []
    feed_server.set("/b.xml", rss([story(3, title="Tariff news"), shock]))
    poll(config, db)
    assert titles(slack, CHANNEL_B) == ["Tariff news"]


# --- one story behind a publisher, an aggregator and a link post -------------------

FIXTURES = Path(__file__).parent / "fixtures"
AGGREGATED_FEEDS = {
    "Reuters Markets": ("/reuters.xml", "reuters_markets.xml"),
    "Google News": ("/gnews.xml", "google_news.xml"),
    "r/worldnews": ("/reddit.atom", "reddit_worldnews.atom"),
}


def aggregated_config(
    feed_server: FeedServer, tmp_path: Path, order: list[str], **settings: object
) -> Path:
    for path, fixture in AGGREGATED_FEEDS.values():
        feed_server.set(path, (FIXTURES / fixture).read_bytes())
    return write_config(
        tmp_path / "feeds.yaml",
        [{"url": feed_server.url(AGGREGATED_FEEDS[name][0]), "name": name} for name in order],
        [{"channel": CHANNEL_A, "terms": ["softwood lumber"]}],
        max_age="0",  # the fixtures are dated
        **settings,
    )


@pytest.mark.parametrize("first", list(AGGREGATED_FEEDS))
def test_publisher_item_google_news_entry_and_reddit_post_alert_once(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path, first: str
) -> None:
    db = db_url
    # One feed brings the story first (a poll of it alone: feeds of one cycle
    # are handled in the order their answers arrive), then all three carry it.
    poll(aggregated_config(feed_server, tmp_path, [first]), db)
    (post,) = slack.posts(CHANNEL_A)
    text = post["text"]
    assert text.startswith("U.S. raises duties on Canadian softwood lumber (")
    if first == "Google News":  # the publisher is the source, never "Google News"
        assert "(Reuters)" in text
    if first == "r/worldnews":  # the alert links to the article, not the thread
        assert "https://www.reuters.com/markets/commodities/us-raises-duties" in str(post)
        assert "comments/1h5lmbr" not in str(post)
    config = aggregated_config(feed_server, tmp_path, list(AGGREGATED_FEEDS))
    poll(config, db)
    assert len(slack.posts(CHANNEL_A)) == 1, [p["text"] for p in slack.posts(CHANNEL_A)]
    # Google News rotates its link tokens; the story stays the same.
    rotated = (FIXTURES / "google_news.xml").read_bytes().replace(b"CBMiowFBVV95", b"CBMiqgFBVV95")
    feed_server.set("/gnews.xml", rotated)
    poll(config, db)
    assert len(slack.posts(CHANNEL_A)) == 1


def test_publisher_item_google_news_entry_and_reddit_post_in_one_cycle_alert_once(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    poll(aggregated_config(feed_server, tmp_path, list(AGGREGATED_FEEDS)), db_url)
    assert len(slack.posts(CHANNEL_A)) == 1


@pytest.mark.parametrize(
    "shared_query",
    [
        "taid=6751c0ffee&utm_campaign=trueAnthem:+Trending+Content",  # Reuters' post on X
        "mbid=social_twitter",  # Conde Nast share links
    ],
)
def test_a_reddit_post_of_a_shared_link_is_the_publishers_story(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path, shared_query: str
) -> None:
    """Link posts are often copied from a publisher's social post: its share
    parameters name the sender, not another page."""
    config = aggregated_config(feed_server, tmp_path, ["Reuters Markets", "r/worldnews"])
    reddit = (FIXTURES / "reddit_worldnews.atom").read_bytes()
    shared = reddit.replace(
        b"utm_source=reddit.com&amp;amp;utm_medium=social",
        shared_query.replace("&", "&amp;amp;").encode(),
    )
    assert shared != reddit
    feed_server.set("/reddit.atom", shared)
    poll(config, db_url)
    assert len(slack.posts(CHANNEL_A)) == 1, [p["text"] for p in slack.posts(CHANNEL_A)]


def test_google_news_alone_names_the_publisher_and_shows_no_cluster_list(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    config = aggregated_config(feed_server, tmp_path, ["Google News"])
    poll(config, db_url)
    (post,) = slack.posts(CHANNEL_A)
    assert post["text"].startswith("U.S. raises duties on Canadian softwood lumber (Reuters)")
    # The cluster list names another outlet's headline: it is not shown.
    assert "CBC" not in str(post) and "Canada vows" not in str(post)


def test_stories_stored_under_old_link_keys_do_not_alert_after_an_upgrade(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    """A database written before links were folded further (www., AMP forms,
    the longer tracking table) keeps old-format keys; their stories stay known."""
    links = [
        "https://www.news.example/2026/tariff-shock/amp/?CMP=share_btn",
        "https://news.example/2026/tariff-rise?ref=rss",
        "https://news.example/2026/tariff-talks",  # the same key in both releases
    ]
    entries = [story(n, link=link) for n, link in enumerate(links, start=1)]
    feed_server.set("/a.xml", rss(entries))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/a.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],
    )
    db = db_url
    poll(config, db)
    assert len(slack.posts()) == 3
    with Store(db) as store:  # what the older release had stored for them
        store.db.execute("DELETE FROM story_keys")
        for item_id, link in store.db.rows("SELECT id, link FROM items"):
            old = "link:" + str(legacy_canonical_link(link))
            store.db.execute("UPDATE items SET story_key = ? WHERE id = ?", (old, item_id))
            store.db.execute("INSERT INTO story_keys(key, item_id) VALUES (?, ?)", (old, item_id))
    feed_server.set("/a.xml", rss([story(4, title="Tariff news"), *entries]))
    poll(config, db)
    poll(config, db)
    assert titles(slack) == ["Tariff news", "Tariff story 1", "Tariff story 2", "Tariff story 3"]
    with Store(db) as store:  # seen again: the new keys are stored beside the old
        keys = {row[0] for row in store.db.rows("SELECT key FROM story_keys")}
    assert "link:news.example/2026/tariff-shock" in keys
    assert "link:www.news.example/2026/tariff-shock/amp?CMP=share_btn" in keys


def test_a_digest_names_the_publishers_of_google_news_entries(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    config = aggregated_config(feed_server, tmp_path, ["Google News"], max_alerts_per_poll=1)
    config.write_text(config.read_text().replace("softwood lumber", "lumber"))
    poll(config, db_url)
    single, digest = slack.posts(CHANNEL_A)
    assert "(Reuters)" in single["text"]
    assert "Lumber prices jump after tariff news" in str(digest)
    assert "The Globe and Mail" in str(digest)
    assert "Google News" not in str(digest)


def test_relative_links_resolved_the_old_way_are_known_after_an_upgrade(
    db_url: str, feed_server: FeedServer, slack: FakeSlack, tmp_path: Path
) -> None:
    """Earlier releases resolved a relative RSS link against the feed URL; an
    item without a GUID was stored under that link alone."""
    entries = [story(1, link="2026/tariff-shock", guid=None), story(2, published=None)]
    feed_server.set("/rel.xml", rss(entries))  # its channel <link> is https://feeds.example/
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/rel.xml")],
        [{"channel": CHANNEL_A, "terms": ["tariff"]}],
    )
    db = db_url
    poll(config, db)
    assert titles(slack) == ["Tariff story 1"]
    with Store(db) as store:
        (link,) = [row[0] for row in store.db.rows("SELECT link FROM items WHERE id = 1")]
        assert link == "https://feeds.example/2026/tariff-shock"
        old = "link:" + str(legacy_canonical_link(feed_server.url("/2026/tariff-shock")))
        store.db.execute("DELETE FROM story_keys WHERE item_id = 1")
        store.db.execute("UPDATE items SET story_key = ? WHERE id = 1", (old,))
        store.db.execute("INSERT INTO story_keys(key, item_id) VALUES (?, 1)", (old,))
    feed_server.set("/rel.xml", rss([story(3, title="Tariff news"), *entries]))
    poll(config, db)
    assert titles(slack) == ["Tariff news", "Tariff story 1"]
