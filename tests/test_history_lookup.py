"""Crash recovery never wedges a Slack channel.

The fake Slack serves conversations.history at the tier Slack gives apps
outside the Marketplace since 2025: one request per interval (a minute in
production, scaled down here), at most 15 messages a page, 429 with
Retry-After when called sooner
(https://api.slack.com/changelog/2025-05-terms-rate-limit-update-and-faq;
https://api.slack.com/methods/conversations.history: `oldest`, `latest`,
`inclusive`, cursor pagination). Every run is a separate `poll --once`, so
where a lookup got to must survive in the database.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from fakeslack import FakeSlack, Fault, outbox_id_of
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.deliver import LOOKUP_TRIES
from bot.messages import ALERT
from bot.store import SENT, Store

CHANNEL = "C0BUSY00001"
HISTORY = "conversations.history"


def alert(title: str) -> dict:
    return {
        "title": title,
        "link": None,
        "source": "S",
        "published": None,
        "terms": ["t"],
        "snippet": [],
    }


@pytest.fixture
def setup(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        config = write_config(
            tmp_path / "feeds.yaml", [], [{"channel": CHANNEL, "terms": ["tariff"]}]
        )
        yield slack, config, db_url


def poll(config: Path, db: Path) -> None:
    result = run_cli("--config", str(config), "--db", str(db), "poll", "--once")
    assert result.code == 0, result.err


def uncertain_post(slack: FakeSlack, config: Path, db: Path) -> tuple[int, int]:
    """Two alerts; the first is posted but its answer is lost."""
    with Store(db) as store:
        first = store.outbox.add(CHANNEL, ALERT, alert("First"), time.time())
        second = store.outbox.add(CHANNEL, ALERT, alert("Second"), time.time())
    slack.fail_next("chat.postMessage", Fault(accept=True, drop=True))
    poll(config, db)  # the drop makes it uncertain; the channel waits behind it
    assert slack.posted_outbox_ids() == [first]
    return first, second


def test_a_busy_throttled_channel_is_paged_through_across_runs(setup) -> None:
    slack, config, db = setup
    first, second = uncertain_post(slack, config, db)
    for n in range(80):  # busy after our post: six pages of 15
        slack.inject(CHANNEL, {"text": f"chatter {n}"})
    slack.state.history_tier = (15, 0.3)
    for _ in range(10):
        with Store(db) as store:
            if store.outbox.counts().get(SENT) == 2:
                break
        poll(config, db)
    assert slack.posted_outbox_ids() == [first, second]  # found, not posted again
    calls = slack.calls(HISTORY)
    accepted = [c for c in calls if c.status == 200]
    # The cursor was never thrown away: one first page, then each page once.
    assert sum(1 for c in accepted if not c.args.get("cursor")) == 1
    cursors = [c.args.get("cursor") for c in accepted[1:]]
    assert len(cursors) == len(set(cursors)) == 5
    assert any(c.status == 429 for c in calls)
    # Bounded on both sides around the uncertain attempt.
    assert all(float(c.args["oldest"]) < float(c.args["latest"]) for c in calls)
    with Store(db) as store:
        row = store.outbox.get(first)
        assert row is not None and row.remote_id == slack.posts(CHANNEL)[0]["ts"]


def test_a_lookup_that_never_gets_an_answer_ends_in_a_resend(
    setup, caplog: pytest.LogCaptureFixture
) -> None:
    slack, config, db = setup
    first, second = uncertain_post(slack, config, db)
    slack.fail_every(HISTORY, 1, Fault(status=429, error="ratelimited", retry_after=0.05))
    with caplog.at_level(logging.WARNING, logger="bot.deliver"):
        for _ in range(LOOKUP_TRIES):
            with Store(db) as store:
                if store.outbox.counts().get(SENT) == 2:
                    break
            poll(config, db)
    assert "a duplicate is possible" in caplog.text
    assert len(slack.calls(HISTORY)) == LOOKUP_TRIES
    # One possible duplicate, and the channel flows again.
    assert slack.posted_outbox_ids() == [first, first, second]


def test_sent_messages_keep_their_ts(setup) -> None:
    """Threads and edits later refer to the alert's `ts`, never reading history."""
    slack, config, db = setup
    with Store(db) as store:
        outbox_id = store.outbox.add(CHANNEL, ALERT, alert("One"), time.time())
    poll(config, db)
    (posted,) = slack.posts(CHANNEL)
    assert outbox_id_of(posted) == outbox_id
    with Store(db) as store:
        row = store.outbox.get(outbox_id)
        assert row is not None and row.remote_id == posted["ts"]


def test_an_alert_s_message_id_is_found_by_channel_and_story(
    setup, feed_server: FeedServer
) -> None:
    slack, _config, db = setup
    feed_server.set("/f.xml", rss([]))
    config = write_config(
        _config.parent / "with-feed.yaml",
        [feed_server.url("/f.xml")],
        [{"channel": CHANNEL, "terms": ["story"]}],
    )
    poll(config, db)  # the first read of a feed only records what it carries
    feed_server.set("/f.xml", rss([FeedEntry(title="T story", link="https://n.example/t",
                                             guid="urn:t", summary="t")]))  # fmt: skip
    result = run_cli("--config", str(config), "--db", str(db), "poll", "--once", "--all")
    assert result.code == 0, result.err
    (posted,) = slack.posts(CHANNEL)
    with Store(db) as store:
        (stored,) = store.stories.recent()
        alerts = store.outbox.story_alerts(stored.id)
        assert [(channel, row.remote_id) for channel, row in alerts] == [(CHANNEL, posted["ts"])]
