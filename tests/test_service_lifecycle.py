"""`newshound run` under load and signals: fast acks during a slow poll,
SIGTERM/SIGINT exits, SIGHUP reloads, restarts resume the schedule."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import write_config
from fakeslack import FakeSlack
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from service_helpers import Service, wait_for

from bot.store import Store

pytestmark = pytest.mark.slow

CHANNEL = "C0LIFE00001"
FEED = rss([FeedEntry(title="Rates unchanged", link="https://news.example/r", guid="r")])
TARIFF_FEED = rss(
    [
        FeedEntry(
            title="New tariffs on steel",
            link="https://news.example/t",
            guid="t",
            published=datetime.now(UTC) - timedelta(hours=1),
        )
    ]
)


def test_acks_stay_fast_while_a_slow_feed_is_polled_and_sigterm_exits_promptly(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set("/slow.xml", FEED, delay=30)
    feed_server.set("/fast.xml", TARIFF_FEED)
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/slow.xml"), feed_server.url("/fast.xml")],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
        fetch_timeout="20s",
    )
    with FakeSlack() as slack:
        service = Service(config, db_url, slack).start()
        wait_for(lambda: feed_server.hits("/slow.xml") >= 1)  # the cycle is stuck on it
        # Alerts go out while the cycle is still running, not at its end.
        posts = wait_for(lambda: slack.posts(CHANNEL), timeout=5)
        assert "New tariffs on steel" in posts[0]["text"]
        for n in range(5):
            result, key = service.post_command(f"add term{n}", CHANNEL)
            assert result.status == 200
            assert result.elapsed < 3.0, f"ack took {result.elapsed:.2f}s"
            reply = wait_for(lambda key=key: slack.responses(key))[0].args
            assert "Now watching" in reply["text"]
        assert service.get("/healthz").status == 200

        code, elapsed = service.stop(signal.SIGTERM)
    assert code == 0, service.log()
    assert elapsed < 10.0
    assert "Traceback" not in service.log()
    # The stuck fetch was abandoned, not waited for, and is not the feed's fault.
    assert "abandoned" not in service.log()
    with Store(db_url) as store:
        slow = store.feeds.get(feed_server.url("/slow.xml"))
        assert slow is not None and slow.consecutive_failures == 0 and slow.last_error is None
        assert slow.first_polled_at is None  # still due: polled again on the next start


def test_sigint_exits_zero(db_url: str, tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.set("/feed.xml", FEED)
    config = write_config(tmp_path / "feeds.yaml", [feed_server.url("/feed.xml")], [])
    with FakeSlack() as slack:
        service = Service(config, db_url, slack).start()
        wait_for(lambda: feed_server.hits("/feed.xml") >= 1)
        code, elapsed = service.stop(signal.SIGINT)
    assert code == 0, service.log()
    assert elapsed < 5.0


def test_sighup_reloads_a_valid_file_and_keeps_the_old_config_on_a_broken_one(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set("/feed.xml", FEED)
    path = tmp_path / "feeds.yaml"
    write_config(path, [feed_server.url("/feed.xml")], [{"channel": CHANNEL, "terms": ["tariff"]}])
    with FakeSlack() as slack:
        service = Service(path, db_url, slack).start()
        try:
            path.write_text("settings:\n  interval: soon\nfeeds: [\n", encoding="utf-8")
            service.send_signal(signal.SIGHUP)
            wait_for(lambda: "keeping the old config" in service.log())
            assert "feeds.yaml:" in service.log()  # the problem, with file and line
            listing = service.watch("list", CHANNEL)["text"]
            assert "tariff" in listing
            assert service.get("/healthz").json()["feeds"] == 1

            write_config(
                path,
                [feed_server.url("/feed.xml"), feed_server.url("/other.xml")],
                [{"channel": CHANNEL, "terms": ["trade deal"]}],
                managers=["U0MANAGER01"],
            )
            service.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in service.log())
            listing = service.watch("list", CHANNEL)["text"]
            assert "trade deal" in listing and "tariff" not in listing
            assert service.get("/healthz").json()["feeds"] == 2

            refused = service.watch("add chips", CHANNEL, user="U0SOMEONE01")["text"]
            assert "only the people listed as managers" in refused
            assert "chips" not in service.watch("list", CHANNEL)["text"]
            allowed = service.watch("add chips", CHANNEL, user="U0MANAGER01")["text"]
            assert "Now watching" in allowed
        finally:
            code, _ = service.stop()
    assert code == 0, service.log()


def test_restart_resumes_the_schedule_instead_of_polling_everything(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.set("/feed.xml", FEED)
    config = write_config(tmp_path / "feeds.yaml", [feed_server.url("/feed.xml")], [])
    db = db_url
    with FakeSlack() as slack:
        first = Service(config, db, slack).start()
        # Wait until the first cycle has committed the feed, not just fetched it.
        wait_for(lambda: _polled(db), timeout=20)
        assert first.stop()[0] == 0
        second = Service(config, db, slack).start()
        time.sleep(1.0)  # five ticks
        assert second.stop()[0] == 0
    assert feed_server.hits("/feed.xml") == 1


def _polled(db: Path) -> bool:
    from bot.store import Store

    with Store(db) as store:
        return any(f.last_success_at is not None for f in store.feeds.all())


def test_unset_discord_variable_is_warned_at_start_and_its_alerts_wait(
    db_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    from bot.store import DEAD, PENDING, Store

    feed_server.set("/fast.xml", TARIFF_FEED)
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/fast.xml")],
        [{"channel": "discord:$TRADE_HOOK", "terms": ["tariff"]}],
    )
    db = db_url
    with FakeSlack() as slack:
        service = Service(config, db, slack, TRADE_HOOK="").start()
        try:
            wait_for(lambda: "environment variable TRADE_HOOK is not set" in service.log())
            assert (
                "environment variable TRADE_HOOK is not set, so alerts for "
                "discord:$TRADE_HOOK cannot be sent until it is"
            ) in service.log()

            def waiting() -> list[str]:
                with Store(db) as store:
                    assert store.outbox.counts().get(DEAD, 0) == 0
                    return [m.last_error or "" for m in store.outbox.in_state(PENDING, limit=10)]

            # Tried, failed, kept pending with the reason (and not dead).
            reasons = wait_for(lambda: [r for r in waiting() if r], timeout=20)
            assert reasons == ["environment variable TRADE_HOOK is not set"]
        finally:
            code, _ = service.stop()
    assert code == 0, service.log()
