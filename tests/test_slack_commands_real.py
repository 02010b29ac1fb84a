"""/watch against a fake Slack that behaves like the real one: command text
escaped the way Slack escapes it, DMs that answer `missing_scope`, unsigned
`ssl_check` requests. Through `newshound run` as a real subprocess."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from fakeslack import FakeSlack
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from service_helpers import SECRET, Service, sign, sql, wait_for
from slack_sdk import WebClient

from bot.slack_app import DIRECT_MESSAGE_REPLY, INVITE_HINT, ChannelCheck

pytestmark = pytest.mark.slow

GROUP_DM = "G0GROUPDM01"
NOW = datetime.now(UTC)


class Env:
    def __init__(self, service: Service, feeds: FeedServer, slack: FakeSlack, db: str) -> None:
        self.service = service
        self.feeds = feeds
        self.slack = slack
        self.db = db

    def terms(self, channel: str) -> str:
        result = run_cli("--config", str(self.service.config), "--db", str(self.db), "watch",
                         "list", "--channel", channel)  # fmt: skip
        assert result.code == 0, result.err
        return result.out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("slackreal")
    with FakeSlack() as slack, FeedServer() as feeds:
        slack.state.group_dms.add(GROUP_DM)
        feeds.set("/markets.xml", rss([], title="Markets"))
        config = write_config(tmp / "feeds.yaml", [feeds.url("/markets.xml")], [])
        service = Service(config, module_db_url, slack).start()
        try:
            yield Env(service, feeds, slack, module_db_url)
        finally:
            code, _ = service.stop()
        assert code == 0, service.log()


def test_ampersand_terms_are_stored_as_typed_and_match(env: Env) -> None:
    """Slack sends `/watch add AT&T` as `add AT&amp;T` (the fake escapes like
    Slack: https://api.slack.com/reference/surfaces/formatting#escaping); the
    term is stored as `AT&T`, listed without entities, and alerts on "AT&T"."""
    channel = "C0AMPERS001"
    reply = env.service.watch("add AT&T", channel)["text"]
    assert "Now watching" in reply
    env.service.watch("add S&P <500>", channel)
    listing = env.terms(channel)
    assert "AT&T" in listing and "S&P <500>" in listing
    assert "&amp;" not in listing and "&lt;" not in listing
    slack_listing = env.service.watch("list", channel)["text"]
    assert "&amp;amp;" not in slack_listing  # escaped once, for display only

    env.feeds.set(
        "/markets.xml",
        rss(
            [
                FeedEntry(
                    title="AT&T to buy rival",
                    link="https://news.example/att",
                    guid="urn:att",
                    summary="A deal.",
                    published=NOW - timedelta(minutes=1),
                )
            ],
            title="Markets",
        ),
    )
    sql(env.db, "UPDATE feeds SET next_check_at = 0")
    posts = wait_for(lambda: env.slack.posts(channel), timeout=10)
    assert "AT&amp;T to buy rival" in posts[0]["text"]


def test_terms_differing_in_punctuation_are_one_term(env: Env) -> None:
    channel = "C0PUNCT0001"
    assert "Now watching" in env.service.watch("add trade deal", channel)["text"]
    for spelling in ("trade-deal", "Trade, Deal", "  Trade   deal "):
        assert "already watches" in env.service.watch(f"add {spelling}", channel)["text"]
    # A word in capitals is an acronym (SPEC §3), so `TRADE deal` is another term.
    assert "Now watching" in env.service.watch("add TRADE deal", channel)["text"]
    assert "Stopped watching" in env.service.watch("remove TRADE deal", channel)["text"]
    assert "Stopped watching" in env.service.watch("remove Trade-Deal", channel)["text"]
    assert "watches no terms" in env.terms(channel)


def test_direct_messages_are_refused_with_a_clear_reply(env: Env) -> None:
    """A DM (D…) and a group DM answer conversations.info with `missing_scope`
    like the real API when the app has no im:read/mpim:read; both are refused."""
    for channel in ("D0DIRECT001", GROUP_DM):
        reply = env.service.watch("add tariff", channel)["text"]
        assert "direct or group messages" in reply or "missing_scope" in reply, reply
        assert "watches no terms" in env.terms(channel)


def test_ssl_check_gets_200_unsigned(env: Env) -> None:
    """Slack sends `ssl_check=1` with a token and no signature when the app's
    URL is saved; Bolt answers 200 with an empty body
    (slackapi/bolt-python slack_bolt/middleware/ssl_check/ssl_check.py)."""
    result = env.service.post_raw(
        b"ssl_check=1&token=legacy-verification-token",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert result.status == 200
    assert result.body == b""
    # Anything else unsigned is still refused.
    refused = env.service.post_raw(
        b"ssl_check=0&text=add+x", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert refused.status == 401


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json"),
        (b"payload=%7Bbad", "application/x-www-form-urlencoded"),
        (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
    ],
)
def test_signed_malformed_bodies_get_400_not_500(env: Env, body: bytes, content_type: str) -> None:
    """Bolt parses the body while building its request (slack_bolt/request/
    internals.py `parse_body`, `build_context`) and raises on JSON that is
    not an object; a correctly signed but malformed request is a 400."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(SECRET, timestamp, body),
    }
    assert env.service.post_raw(body, headers).status == 400
    assert "Traceback" not in env.service.log()


def test_channel_check_answer_expires() -> None:
    """A "bot is in the channel" answer is trusted for a while, not forever."""
    now = [1000.0]
    with FakeSlack() as slack:
        check = ChannelCheck(WebClient(base_url=slack.api_url), clock=lambda: now[0], ttl=60)
        assert check("C0KICKED001") is None
        slack.state.not_member.add("C0KICKED001")
        assert check("C0KICKED001") is None  # cached
        assert len(slack.calls("conversations.info")) == 1
        now[0] += 61
        assert check("C0KICKED001") == INVITE_HINT
        assert check("D0ANYDM0001") == DIRECT_MESSAGE_REPLY


def test_migration_repairs_escaped_terms_and_merges_duplicates(tmp_path: Path) -> None:
    """A database from before: `AT&amp;T` from Slack, and `trade deal` /
    `trade-deal` / `Trade, Deal` as three terms; one config-owned."""
    from bot.store import Store
    from bot.store.migrations import MIGRATIONS
    from bot.store.schema import split_sql as _split_sql

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for number, script in MIGRATIONS:
        if number > 6:
            break
        assert isinstance(script, str)
        for statement in _split_sql(script):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 6")
    rows = [
        ("C1", "AT&amp;T", "at&amp;t", "slack", "U1", 100.0),
        ("C1", "trade-deal", "trade-deal", "slack", "U2", 50.0),
        ("C1", "trade deal", "trade deal", "config", None, 300.0),
        ("C1", "Trade, Deal", "trade, deal", "slack", "U3", 200.0),
        ("C2", "trade-deal", "trade-deal", "slack", "U4", 10.0),
        ("C2", "Trade deal", "trade deal", "slack", "U5", 20.0),
    ]
    conn.executemany(
        "INSERT INTO terms(channel, term, term_key, source, added_by, added_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()

    with Store(path) as store:
        c1 = {t.term: t for t in store.terms.all("C1")}
        assert set(c1) == {"AT&T", "trade deal"}
        merged = c1["trade deal"]
        assert (merged.source, merged.added_by, merged.added_at) == ("config", "U2", 50.0)
        c2 = store.terms.all("C2")
        assert [(t.term, t.added_by, t.added_at) for t in c2] == [("trade-deal", "U4", 10.0)]
        assert store.terms.find("C1", "AT&T") is not None
        # The config term, dropped later, goes back to its earliest owner.
        store.terms.sync_config([], time.time())
        assert [(t.term, t.source) for t in store.terms.all("C1")] == [
            ("AT&T", "slack"),
            ("trade deal", "slack"),
        ]


def test_config_reports_spellings_of_one_term_as_duplicates(tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "feeds:\n  - url: https://example.com/rss\nwatches:\n  - channel: C0123456789\n"
        '    terms: ["trade deal", "Trade-Deal"]\n',
        encoding="utf-8",
    )
    result = run_cli("--config", str(config), "check")
    assert result.code == 2
    assert 'duplicate watch term "Trade-Deal"' in result.err
