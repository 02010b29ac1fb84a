"""bot/sinks/discord_bot.py: bot delivery to `discord:<channel ID>` against the
fake Discord REST API (tests/fakediscord_api.py, modelled on discord-api-docs
resources/message.mdx and topics/rate-limits.mdx) over real HTTP."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import REPO, run_cli, write_config
from fakediscord_api import APPLICATION_ID, BOT_TOKEN, FakeDiscordApi
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.deliver import IN_FLIGHT, Deliverer
from bot.messages import ALERT
from bot.sinks.discord import format_message
from bot.sinks.discord_bot import GLOBAL_GATE, DiscordBotSink, nonce_for
from bot.store import PENDING, SENT, Store

X = "1200000000000000001"
Y = "1200000000000000002"


def alert(n: int) -> dict[str, object]:
    return {
        "title": f"Tariff story {n} @everyone",
        "link": f"https://news.example/{n}",
        "source": "World",
        "terms": ["tariff"],
        "snippet": [["New ", False], ["tariff", True], [" <@123>", False]],
        "published": 1_700_000_000 + n,
    }


@pytest.fixture
def api() -> Iterator[FakeDiscordApi]:
    with FakeDiscordApi() as fake:
        fake.channel(X)
        fake.channel(Y)
        yield fake


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


def sink(api: FakeDiscordApi, token: str = BOT_TOKEN, **kwargs: Any) -> DiscordBotSink:
    return DiscordBotSink(token, api.api_url, **kwargs)


def deliverer(store: Store, bot: DiscordBotSink) -> Deliverer:
    return Deliverer(store, lambda channel: bot, send_interval=0.0)


def queue(store: Store, channel_id: str, count: int, start: int = 0) -> list[int]:
    return [
        store.outbox.add(f"discord:{channel_id}", ALERT, alert(start + n), time.time())
        for n in range(count)
    ]


def test_posts_the_embed_with_a_nonce_and_no_mentions(api: FakeDiscordApi) -> None:
    result = sink(api).send(f"discord:{X}", ALERT, alert(1), 42)
    assert result is not None and result.remote_id
    (call,) = api.calls_to("POST", f"/channels/{X}/messages")
    assert call.body["nonce"] == nonce_for(42) and call.body["enforce_nonce"] is True
    assert call.body["allowed_mentions"] == {"parse": []}
    embed = call.body["embeds"][0]
    assert embed["url"] == "https://news.example/1"
    assert "@\u200beveryone" in embed["title"] and "**tariff**" in embed["description"]
    assert len(nonce_for(10**17 - 1, "a1b2c3")) <= 25  # Discord's nonce limit


def test_two_databases_posting_with_one_bot_never_share_a_nonce(
    api: FakeDiscordApi, tmp_path: Path
) -> None:
    """Outbox ids restart in every database (say staging beside production,
    one bot): each database's tag keeps their nonces apart."""
    tags = []
    for name in ("staging", "production"):
        with Store(tmp_path / f"{name}.db") as db:
            tags.append(db.meta.instance_tag())
            assert db.meta.instance_tag() == tags[-1]  # made once, then kept
    assert tags[0] != tags[1]
    for tag in tags:
        sink(api, nonce_tag=tag).send(f"discord:{X}", ALERT, alert(1), 1)
    assert len(api.posts(X)) == 2


def test_a_repeated_post_returns_the_message_discord_already_made(api: FakeDiscordApi) -> None:
    bot = sink(api)
    first = bot.send(f"discord:{X}", ALERT, alert(1), 7)
    again = bot.send(f"discord:{X}", ALERT, alert(1), 7)
    assert first is not None and again is not None and first.remote_id == again.remote_id
    assert len(api.posts(X)) == 1


def test_a_lost_answer_is_found_in_the_history_not_posted_twice(
    api: FakeDiscordApi, store: Store
) -> None:
    """Past Discord's nonce window only the history look-up prevents a repeat."""
    api.nonce_window = 0.0
    api.drop_after_accept = 1
    (message_id,) = queue(store, X, 1)
    d = deliverer(store, sink(api))
    assert d.deliver(retry_now=True).failed == 1  # the answer was lost
    report = d.deliver(retry_now=True)
    assert report.sent == 1 and report.recovered == 1
    assert len(api.posts(X)) == 1
    assert api.calls_to("GET", f"/channels/{X}/messages")
    row = store.outbox.get(message_id)
    assert row is not None and row.state == SENT and row.remote_id == api.posts(X)[0]["id"]


def test_the_look_up_only_counts_our_own_messages(api: FakeDiscordApi, store: Store) -> None:
    """Another bot's post of the same story is not ours: ours is still sent."""
    api.nonce_window = 0.0
    api.fail_next(502)
    (message_id,) = queue(store, X, 1)
    d = deliverer(store, sink(api))
    assert d.deliver(retry_now=True).failed == 1
    row = store.outbox.get(message_id)
    assert row is not None
    api.other_bot_post(X, format_message(ALERT, row.payload)["embeds"])
    report = d.deliver(retry_now=True)
    assert report.sent == 1 and report.recovered == 0
    assert [p["author"]["id"] for p in api.posts(X)][-1] == "1100000000000000001"


def test_a_post_that_never_arrived_is_sent_after_the_look_up(
    api: FakeDiscordApi, store: Store
) -> None:
    api.fail_next(502)
    queue(store, X, 1)
    d = deliverer(store, sink(api))
    assert d.deliver(retry_now=True).failed == 1
    assert d.deliver(retry_now=True).sent == 1
    assert len(api.posts(X)) == 1


def test_bucket_headers_pace_every_channel_without_a_429(api: FakeDiscordApi, store: Store) -> None:
    api.bucket(limit=2, reset_after=0.3)
    queue(store, X, 5)
    queue(store, Y, 3, start=10)
    report = deliverer(store, sink(api)).deliver()
    assert report.sent == 8
    assert api.violations == 0
    assert len(api.posts(X)) == 5 and len(api.posts(Y)) == 3


def test_a_429_is_honoured_exactly(api: FakeDiscordApi, store: Store) -> None:
    api.bucket(limit=1, reset_after=0.4)
    bot = sink(api)
    bot.send(f"discord:{X}", ALERT, alert(0), 1)  # uses the bucket up, unknown to the store
    queue(store, X, 2)
    started = time.monotonic()
    report = deliverer(store, bot).deliver()
    assert report.sent == 2
    retries = api.calls_to("POST", f"/channels/{X}/messages")
    assert api.violations == 1  # the one 429, then waits exactly as told
    assert time.monotonic() - started >= 0.4
    assert len(retries) == 4


def test_a_global_429_closes_the_gate_for_every_channel(api: FakeDiscordApi, store: Store) -> None:
    api.global_limit(0.5)
    queue(store, X, 1)
    queue(store, Y, 1, start=5)
    d = deliverer(store, sink(api))
    d.deliver(max_wait=0.0)
    assert store.gates.all()[GLOBAL_GATE] > time.time()
    assert len(api.calls_to("POST", "/messages")) == 1  # nobody called after the 429
    report = d.deliver()
    assert report.sent == 2 and api.violations == 0


@pytest.mark.parametrize("status", [403, 404])
def test_a_channel_the_bot_cannot_post_in_is_held_and_not_called_again(
    api: FakeDiscordApi, store: Store, status: int
) -> None:
    if status == 403:
        api.forbid(X)
    else:
        del api.channels[X]
    (held,) = queue(store, X, 1)
    d = deliverer(store, sink(api))
    d.deliver(retry_now=True)
    for _ in range(3):
        d.deliver(retry_now=True)
    assert len(api.calls_to("POST", f"/channels/{X}/messages")) == 1
    row = store.outbox.get(held)
    assert row is not None and row.state == PENDING
    assert str(status) in store.gates.paused()[f"discord:{X}"][0]
    # Fixed in Discord, then `newshound retry`: the alert goes out.
    api.channels[X] = api.channels.get(X) or type(api.channel(Y))(X)
    api.channels[X].forbidden = False
    store.gates.resume()
    assert d.deliver(retry_now=True).sent == 1


def test_a_bad_token_pauses_the_channel_until_retry(api: FakeDiscordApi, store: Store) -> None:
    queue(store, X, 1)
    deliverer(store, sink(api, token="wrong")).deliver(retry_now=True)
    assert "401" in store.gates.paused()[f"discord:{X}"][0]
    assert deliverer(store, sink(api, token="wrong")).deliver(retry_now=True).sent == 0
    assert len(api.calls_to("POST", "/messages")) == 1
    store.gates.resume("discord:")  # token fixed, then `newshound retry`
    assert deliverer(store, sink(api)).deliver(retry_now=True).sent == 1


def test_without_a_bot_token_alerts_wait(api: FakeDiscordApi, store: Store) -> None:
    (waiting,) = queue(store, X, 1)
    report = deliverer(store, sink(api, token="")).deliver(retry_now=True)
    assert report.failed == 1 and "DISCORD_BOT_TOKEN" in report.errors[0]
    row = store.outbox.get(waiting)
    assert row is not None and row.state == PENDING
    assert api.calls == []


# -- discord register -----------------------------------------------------------


def register(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str):
    for name in ("DISCORD_BOT_TOKEN", "DISCORD_APPLICATION_ID", "DISCORD_API_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return run_cli("discord", "register", *args)


def test_register_puts_the_command_globally_or_for_one_guild(
    api: FakeDiscordApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "DISCORD_BOT_TOKEN": BOT_TOKEN,
        "DISCORD_APPLICATION_ID": APPLICATION_ID,
        "DISCORD_API_URL": api.api_url,
    }
    for _ in range(2):  # idempotent
        result = register(monkeypatch, env)
        assert result.code == 0, result.err
    assert "registered /watch globally" in result.out
    (command,) = api.commands["global"]
    assert command["name"] == "watch" and command["type"] == 1
    subs = {o["name"]: o for o in command["options"]}
    assert set(subs) == {"add", "remove", "list", "help", "test", "feeds"}
    assert subs["add"]["options"][0]["name"] == "query" and subs["add"]["options"][0]["type"] == 3
    guild = register(monkeypatch, env, "--guild", "1000000000000000001")
    assert guild.code == 0 and "1000000000000000001" in api.commands
    assert len(api.calls_to("PUT", "/commands")) == 3


@pytest.mark.parametrize(
    "env",
    [{}, {"DISCORD_BOT_TOKEN": "x"}, {"DISCORD_APPLICATION_ID": "1"}],
)
def test_register_without_credentials_exits_2(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = register(monkeypatch, {"DISCORD_API_URL": "http://127.0.0.1:9", **env})
    assert result.code == 2
    assert "newshound: discord register: set DISCORD_" in result.err


def test_register_reports_a_refusal(api: FakeDiscordApi, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "DISCORD_BOT_TOKEN": "wrong-SECRET",
        "DISCORD_APPLICATION_ID": APPLICATION_ID,
        "DISCORD_API_URL": api.api_url,
    }
    result = register(monkeypatch, env)
    assert result.code == 1 and "401" in result.err and "SECRET" not in result.err


# -- kill -9 -----------------------------------------------------------------------


def test_sigkill_during_bot_delivery_loses_nothing_and_duplicates_nothing(
    db_url: str, tmp_path: Path, feed_server: FeedServer, api: FakeDiscordApi
) -> None:
    """`newshound poll --once` processes posting to two Discord channels are
    killed with SIGKILL at random points while new stories keep arriving;
    some posts are accepted with the answer lost. Discord's nonce check is
    switched off (as after its few-minute window), so only the look-up in
    the channel history stands between a crash and a repeat. Every alert
    must reach each channel exactly once."""
    rng = random.Random(13)
    api.nonce_window = 0.0
    api.post_delay = 0.03  # every post takes a little while
    config, db = tmp_path / "feeds.yaml", db_url
    write_config(
        config,
        [feed_server.url("/feed.xml")],
        [
            {"channel": f"discord:{X}", "terms": ["tariff"]},
            {"channel": f"discord:{Y}", "terms": ["tariff"]},
        ],
        max_alerts_per_poll=50,
    )
    env = {
        "DISCORD_BOT_TOKEN": BOT_TOKEN,
        "DISCORD_API_URL": api.api_url,
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "bot", "--config", str(config), "--db", str(db)]
    command += ["poll", "--once", "--all"]
    now = datetime.now(UTC)
    entries: list[FeedEntry] = []

    def run(kill_after: float | None) -> int:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if kill_after is None:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            return 0
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return proc.returncode

    def new_stories(round_: int) -> None:
        for n in range(4):
            number = round_ * 4 + n
            entries.insert(
                0,
                FeedEntry(
                    title=f"Tariff story {number}",
                    link=f"https://news.example/t/{number}",
                    published=now - timedelta(seconds=number),
                ),
            )
        feed_server.set("/feed.xml", rss(entries))

    new_stories(0)
    started = time.monotonic()
    run(None)
    full_run = time.monotonic() - started
    killed = 0
    round_ = 0
    deadline = time.monotonic() + 120
    while killed < 6 and round_ < 25 and time.monotonic() < deadline:
        round_ += 1
        new_stories(round_)
        if round_ % 2:
            api.drop_after_accept = 1  # one accepted post whose answer is lost
        if run(rng.uniform(0.3, 1.0) * full_run) == -signal.SIGKILL:
            killed += 1
    assert killed >= 6, f"only {killed} of {round_} runs were killed mid-way"
    api.drop_after_accept = 0
    # A send the last kill interrupted is looked for once it is IN_FLIGHT old.
    settle_by = time.monotonic() + IN_FLIGHT + 10 * full_run
    for _ in range(30):
        run(None)
        with Store(db) as check:
            if set(check.outbox.counts()) == {SENT} or time.monotonic() > settle_by:
                break
        time.sleep(0.5)
    with Store(db) as check:
        assert check.meta.damage() is None
        assert set(check.outbox.counts()) == {SENT}
    for channel_id in (X, Y):
        titles = Counter(post["embeds"][0]["title"] for post in api.posts(channel_id))
        assert [t for t, c in titles.items() if c > 1] == []  # no duplicates
        assert len(titles) == len(entries)  # nothing lost
    assert api.calls_to("GET", "/messages")  # interrupted posts were looked for
