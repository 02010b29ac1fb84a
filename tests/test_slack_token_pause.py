"""A broken Slack token pauses Slack delivery instead of killing alerts, and
`newshound retry` puts dead messages and paused destinations back.

The fake answers like Slack's Web API does for a bad token: HTTP 200 with
`{"ok": false, "error": "token_revoked"}` (https://api.slack.com/methods/chat.postMessage,
Errors: `invalid_auth`, `not_authed`, `account_inactive`, `token_revoked`,
`token_expired`; slack_sdk raises SlackApiError with `response["error"]`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from fakeslack import FakeSlack, Fault
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from service_helpers import Service, sql, wait_for

from bot.store import DEAD, PENDING, SENT, Store

NOW = datetime.now(UTC)
FIRST, SECOND = "C0FIRST0001", "C0SECOND001"


def story(n: int, title: str) -> FeedEntry:
    return FeedEntry(
        title=title,
        link=f"https://news.example/{n}",
        guid=f"urn:{n}",
        summary=title,
        published=NOW - timedelta(minutes=n),
    )


@pytest.fixture
def setup(db_url: str, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    feed_server.set("/world.xml", rss([story(1, "Tariff news"), story(2, "Chip news")]))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/world.xml")],
        [
            {"channel": FIRST, "terms": ["tariff"]},
            {"channel": SECOND, "terms": ["chip"]},
        ],
    )
    with FakeSlack() as slack:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        yield slack, config, db_url


def cli(config: Path, db: Path, *args: str):
    result = run_cli("--config", str(config), "--db", str(db), *args)
    assert result.code == 0, result.err
    return result


@pytest.mark.parametrize(
    "error", ["invalid_auth", "account_inactive", "token_revoked", "not_authed", "token_expired"]
)
def test_a_broken_token_pauses_slack_and_retry_resumes_it(setup, error: str) -> None:
    slack, config, db = setup
    slack.fail_every("chat.postMessage", 1, Fault(error=error))
    cli(config, db, "poll", "--once")
    assert len(slack.calls("chat.postMessage")) == 1  # the second channel was not tried
    with Store(db) as store:
        assert store.outbox.counts() == {PENDING: 2}
        assert list(store.gates.paused()) == ["slack:token"]
    status = cli(config, db, "status").out
    assert "Paused: slack:token since" in status and error in status

    cli(config, db, "poll", "--once")  # still paused: nothing is tried
    assert len(slack.calls("chat.postMessage")) == 1

    slack.state.fail_every.clear()  # the token was fixed
    out = cli(config, db, "retry").out
    assert "0 dead messages queued again." in out
    assert "Delivery through slack:token resumed." in out
    cli(config, db, "poll", "--once")
    assert len(slack.posts(FIRST)) == 1 and len(slack.posts(SECOND)) == 1
    assert "Paused" not in cli(config, db, "status").out


def test_retry_requeues_dead_messages_of_one_channel(setup) -> None:
    """The bot was not in the channels: both alerts die `not_in_channel`;
    after an invite, `retry --channel` sends that channel's alert again."""
    slack, config, db = setup
    slack.fail_next(
        "chat.postMessage", Fault(error="not_in_channel"), Fault(error="not_in_channel")
    )
    cli(config, db, "poll", "--once")
    with Store(db) as store:
        assert store.outbox.counts() == {DEAD: 2}
    out = cli(config, db, "retry", "--channel", FIRST).out
    assert out.startswith(f"1 dead message for {FIRST} queued again.")
    cli(config, db, "poll", "--once")
    assert len(slack.posts(FIRST)) == 1 and not slack.posts(SECOND)
    with Store(db) as store:
        assert store.outbox.counts() == {SENT: 1, DEAD: 1}
    assert "2 dead" not in cli(config, db, "retry").out
    bad = run_cli("--config", str(config), "--db", str(db), "retry", "--channel", "nope")
    assert bad.code == 2 and "invalid --channel" in bad.err


@pytest.mark.slow
def test_healthz_says_the_token_is_broken(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.set("/world.xml", rss([story(1, "Tariff news")]))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/world.xml")],
        [{"channel": FIRST, "terms": ["tariff"]}],
    )
    with FakeSlack() as slack:
        slack.fail_every("chat.postMessage", 1, Fault(error="token_revoked"))
        service = Service(config, db_url, slack).start()
        try:
            health = wait_for(
                lambda: (h := service.get("/healthz").json())["slack_token"] == "broken" and h,
                timeout=15,
            )
            assert "token_revoked" in health["delivery_paused"]["slack:token"]
            assert health["alerts_pending"] == 1 and health["alerts_dead"] == 0
            assert health["status"] == "degraded"
            assert "delivery_paused" in health["degraded_by"]
            time.sleep(0.5)
            assert len(slack.calls("chat.postMessage")) == 1
            [(state,)] = sql(db_url, "SELECT state FROM outbox")
            assert state == PENDING
        finally:
            code, _ = service.stop()
        assert code == 0, service.log()
