"""`newshound run` end to end: a real subprocess, real HTTP, fake Slack, loopback feeds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from fakeslack import FakeSlack
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import SECRET, Service, sign, sql, wait_for

from bot.service import Service as RealService
from bot.service import ServiceOptions

pytestmark = pytest.mark.slow

CHANNEL = "C0WATCH0001"
OTHER_CHANNEL = "C0OTHER0001"
NOT_MEMBER = "C0NOTMEMB01"
NOW = datetime.now(UTC)


def entry(n: int, title: str) -> FeedEntry:
    return FeedEntry(
        title=title,
        link=f"https://news.example/{n}",
        guid=f"urn:news:{n}",
        summary=f"Story {n}.",
        published=NOW - timedelta(minutes=n),
    )


class Env:
    def __init__(self, service: Service, feeds: FeedServer, slack: FakeSlack, db: str) -> None:
        self.service = service
        self.feeds = feeds
        self.slack = slack
        self.db = db
        self.config = service.config

    def terms(self, channel: str) -> str:
        result = run_cli("--config", str(self.config), "--db", str(self.db), "watch", "list",
                         "--channel", channel)  # fmt: skip
        assert result.code == 0, result.err
        return result.out

    def make_feeds_due(self) -> None:
        """Time passes: every feed is due again at the next tick."""
        sql(self.db, "UPDATE feeds SET next_check_at = 0")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("service")
    with FakeSlack() as slack, FeedServer() as feeds:
        slack.state.not_member.add(NOT_MEMBER)
        feeds.set("/world.xml", rss([entry(1, "Central bank holds rates")], title="World"))
        feeds.set("/broken.xml", b"nope", status=500, content_type="text/plain")
        config = write_config(
            tmp / "feeds.yaml",
            [feeds.url("/world.xml"), feeds.url("/broken.xml")],
            [{"channel": CHANNEL, "terms": ["trade deal"]}],
        )
        service = Service(config, module_db_url, slack).start()
        try:
            yield Env(service, feeds, slack, module_db_url)
        finally:
            code, elapsed = service.stop()
        assert code == 0, service.log()
        assert elapsed < 10


def test_healthz_reports_db_scheduler_last_cycle_and_failing_feeds(env: Env) -> None:
    def cycled() -> dict | None:
        data = env.service.get("/healthz").json()
        return data if data["last_cycle_at"] and data["feeds_failing"] == 1 else None

    data = wait_for(cycled)
    assert data["status"] == "degraded"  # the broken feed; still 200
    assert data["degraded_by"] == ["feeds_failing"]
    assert data["db_ok"] is True and data["scheduler_running"] is True
    assert data["feeds"] == 2 and data["slack"] == "http"
    datetime.fromisoformat(data["last_cycle_at"])
    datetime.fromisoformat(data["last_tick_at"])


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@contextmanager
def in_process_service(config: Path, db: Path, clock: FakeClock) -> Iterator[RealService]:
    """A Service that is built but not started: the test drives `poll_job`."""
    service = RealService(
        str(config),
        str(db),
        0,
        env={},
        options=ServiceOptions(host="127.0.0.1"),
        clock=clock,
    )
    try:
        yield service
    finally:
        service.web.server.server_close()
        if service._parse_pool is not None:
            service._parse_pool.close()
        if service._fetcher is not None:
            service._fetcher.close()
        for store in (service.poll_store, service.deliver_store, service.web_store):
            store.close()


def test_last_cycle_at_only_moves_when_a_tick_polls_a_feed(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set("/world.xml", rss([entry(1, "Central bank holds rates")], title="World"))
    config = write_config(tmp_path / "feeds.yaml", [feed_server.url("/world.xml")], [])
    db = db_url
    clock = FakeClock()
    started = clock.now

    def iso(epoch: float) -> str:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")

    with in_process_service(config, db, clock) as service:
        assert service.health()[1]["last_cycle_at"] is None
        service.poll_job()  # the feed is due: polled
        assert feed_server.hits("/world.xml") == 1
        health = service.health()[1]
        assert health["last_cycle_at"] == health["last_tick_at"] == iso(started)

        clock.now += 120  # idle ticks: nothing is due for 10 minutes
        service.poll_job()
        assert feed_server.hits("/world.xml") == 1
        health = service.health()[1]
        assert health["last_cycle_at"] == iso(started)
        assert health["last_tick_at"] == iso(started + 120)

        clock.now += 3600  # due again
        service.poll_job()
        assert feed_server.hits("/world.xml") == 2
        assert service.health()[1]["last_cycle_at"] == iso(started + 3720)

        clock.now += 60
        service.poll_job()  # idle again, just before a restart

    with in_process_service(config, db, clock) as restarted:
        health = restarted.health()[1]
        assert health["last_cycle_at"] == iso(started + 3720)  # the last real poll
        assert health["last_tick_at"] is None


def test_metrics_are_prometheus_text(env: Env) -> None:
    wait_for(lambda: b"newshound_fetch_errors_total" in env.service.get("/metrics").body)
    result = env.service.get("/metrics")
    assert result.status == 200
    assert result.headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(result.body.decode())
        for s in family.samples
    }
    names = {name for name, _ in samples}
    for expected in (
        "newshound_feeds_polled_total",
        "newshound_fetch_errors_total",
        "newshound_items_parsed_total",
        "newshound_matches_total",
        "newshound_alerts",
        "newshound_cycle_duration_seconds_bucket",
        "newshound_feeds_failing",
    ):
        assert expected in names, expected
    assert samples[("newshound_fetch_errors_total", (("kind", "http_5xx"),))] >= 1
    assert samples[("newshound_items_parsed_total", ())] >= 1
    for state in ("pending", "sent", "dead"):
        assert ("newshound_alerts", (("state", state),)) in samples


def test_signed_watch_add_makes_a_later_cycle_alert_that_channel(env: Env) -> None:
    wait_for(lambda: env.feeds.hits("/world.xml") >= 1)  # the first cycle has run
    reply = env.service.watch("add tariff -rumor", OTHER_CHANNEL)
    assert "Now watching *tariff* (also: tariffs), excluding *rumor*" in reply["text"]
    assert "tariff -rumor" in env.terms(OTHER_CHANNEL)

    env.feeds.set(
        "/world.xml",
        rss(
            [
                entry(1, "Central bank holds rates"),
                entry(2, "New tariffs on steel announced"),
                entry(3, "Tariff rumor denied"),
            ],
            title="World",
        ),
    )
    env.make_feeds_due()
    posts = wait_for(lambda: env.slack.posts(OTHER_CHANNEL), timeout=10)
    assert len(posts) == 1
    assert "New tariffs on steel announced" in posts[0]["text"]
    time.sleep(0.5)  # later ticks don't repeat it
    assert len(env.slack.posts(OTHER_CHANNEL)) == 1
    assert not env.slack.posts(CHANNEL)


def test_list_and_remove_round_trip(env: Env) -> None:
    channel = "C0ROUND0001"
    reply = env.service.watch("add semiconductor", channel, user="U0BOB000001")
    assert "Now watching" in reply["text"]
    listing = env.service.watch("list", channel)["text"]
    assert "Added in chat or from the command line:" in listing
    assert "semiconductor (added by <@U0BOB000001>, " + NOW.strftime("%Y-%m") in listing

    removed = env.service.watch("remove semiconductor", channel)["text"]
    assert "Stopped watching" in removed
    assert "semiconductor" not in env.service.watch("list", channel)["text"]


def test_list_separates_config_terms_and_config_terms_cannot_be_removed(env: Env) -> None:
    env.service.watch("add pax silica", CHANNEL)
    listing = env.service.watch("list", CHANNEL)["text"]
    config_part, _, added_part = listing.partition("Added in chat or from the command line:")
    assert "From feeds.yaml:" in config_part and "trade deal" in config_part
    assert "pax silica" in added_part and "<@U0ALICE0001>" in added_part

    reply = env.service.watch("remove trade deal", CHANNEL)["text"]
    assert "feeds.yaml" in reply
    assert "trade deal" in env.terms(CHANNEL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add", "term is empty"),
        ("add " + "a" * 201, "longer than 200 characters"),
        ("add -word", "only exclusions"),
        ("add 🚀", "no letters or digits"),
        ("add tariff OR", "OR needs a phrase on both sides"),
        ("add C", "single letter"),
        ("frobnicate tariff", "Unknown command"),
        ("remove", "Say which term to remove"),
        ("remove never-added", "doesn't watch"),
    ],
)
def test_bad_input_is_answered_clearly_and_stores_nothing(
    env: Env, text: str, expected: str
) -> None:
    channel = "C0BADINPUT1"
    reply = env.service.watch(text, channel)
    assert expected in reply["text"]
    assert "Traceback" not in reply["text"]
    assert "watches no terms" in env.terms(channel)


def test_unknown_subcommand_and_empty_text_get_help(env: Env) -> None:
    assert "/watch add QUERY" in env.service.watch("frobnicate", "C0HELP00001")["text"]
    assert "/watch add QUERY" in env.service.watch("", "C0HELP00001")["text"]


def test_unicode_and_emoji_terms(env: Env) -> None:
    channel = "C0UNICODE01"
    assert "Now watching" in env.service.watch("add 東京 🚀", channel)["text"]
    assert "Now watching" in env.service.watch("add café", channel)["text"]
    listing = env.service.watch("list", channel)["text"]
    assert "東京 🚀" in listing and "café" in listing


def test_test_and_feeds_subcommands(env: Env) -> None:
    wait_for(lambda: env.feeds.hits("/world.xml") >= 1)
    reply = env.service.watch("test central bank", "C0TEST00001")["text"]
    assert "nothing was added" in reply and "Central bank holds rates" in reply
    assert "watches no terms" in env.terms("C0TEST00001")
    feeds = env.service.watch("feeds", "C0TEST00001")["text"]
    assert "World" in feeds and "failing" in feeds


def test_add_in_a_channel_the_bot_is_not_in_asks_for_an_invite(env: Env) -> None:
    reply = env.service.watch("add tariff", NOT_MEMBER)["text"]
    assert "/invite @newshound" in reply
    assert "watches no terms" in env.terms(NOT_MEMBER)


def _headers(timestamp: str | None, signature: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    return headers


@pytest.mark.parametrize("case", ["bad", "missing", "no-timestamp", "stale", "future", "nan"])
def test_bad_signatures_get_401_and_change_nothing(env: Env, case: str) -> None:
    channel = "C0UNSIGNED1"
    body, key = env.service.command_body("add secretmarker", channel)
    now = str(int(time.time()))
    stale = str(int(time.time()) - 360)  # well outside the window, even on a slow machine
    future = str(int(time.time()) + 360)
    headers = {
        "bad": _headers(now, sign("wrong-secret", now, body)),
        "missing": _headers(now, None),
        "no-timestamp": _headers(None, sign(SECRET, now, body)),
        "stale": _headers(stale, sign(SECRET, stale, body)),
        "future": _headers(future, sign(SECRET, future, body)),
        "nan": _headers("12ab", sign(SECRET, "12ab", body)),
    }[case]
    result = env.service.post_raw(body, headers)
    assert result.status == 401, result.body
    time.sleep(0.2)
    assert not env.slack.responses(key)
    assert "watches no terms" in env.terms(channel)
    assert "secretmarker" not in env.service.log()


def test_tampered_body_gets_401(env: Env) -> None:
    body, _ = env.service.command_body("add tariff", "C0TAMPER001")
    now = str(int(time.time()))
    signature = sign(SECRET, now, body)
    result = env.service.post_raw(body.replace(b"tariff", b"tarifF"), _headers(now, signature))
    assert result.status == 401


def test_unknown_paths_are_404(env: Env) -> None:
    assert env.service.get("/nope").status == 404
    assert env.service.get("/slack/events").status == 405


def test_idle_connections_are_dropped_after_the_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from bot import web

    assert 0 < web._QuietHandler.timeout <= 30  # the real setting: a few seconds
    monkeypatch.setattr(web._QuietHandler, "timeout", 0.5)  # shortened for the test
    app = web.WebApp({"/slack/events": web.Route(("POST",), lambda r: web.text(200, "ok"), True)})
    server = web.WebServer(app, "127.0.0.1", 0)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
            idle.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")  # never finished
            started = time.monotonic()
            assert idle.recv(1024) == b""  # the server hung up, not we
            assert time.monotonic() - started < 3
    finally:
        server.stop()
