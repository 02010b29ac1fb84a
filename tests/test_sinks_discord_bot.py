"""bot/sinks/discord_bot.py: bot delivery to `discord:<channel ID>` against the
fake Discord REST API (tests/fakediscord_api.py, modelled on discord-api-docs
resources/message.mdx and topics/rate-limits.mdx) over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run_cli
from fakediscord_api import APPLICATION_ID, BOT_TOKEN, FakeDiscordApi

from bot.deliver import Deliverer
from bot.messages import ALERT
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
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "db.sqlite") as s:
        yield s


def sink(api: FakeDiscordApi, token: str = BOT_TOKEN, **kwargs: float) -> DiscordBotSink:
    return DiscordBotSink(token, api.api_url, **kwargs)


def deliverer(store: Store, bot: DiscordBotSink) -> Deliverer:
    return Deliverer(store, lambda channel: bot, send_interval=0.0)


def queue(store: Store, channel_id: str, count: int, start: int = 0) -> list[int]:
    return [
        store.add_outbox(f"discord:{channel_id}", ALERT, alert(start + n), time.time())
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
    assert len(nonce_for(10**18)) <= 25  # Discord's nonce limit


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
    row = store.outbox_message(message_id)
    assert row is not None and row.state == SENT and row.remote_id == api.posts(X)[0]["id"]


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
    assert store.gates()[GLOBAL_GATE] > time.time()
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
    row = store.outbox_message(held)
    assert row is not None and row.state == PENDING
    assert str(status) in store.broken_destinations()[f"discord:{X}"].reason
    # Fixed in Discord, then `newshound retry`: the alert goes out.
    api.channels[X] = api.channels.get(X) or type(api.channel(Y))(X)
    api.channels[X].forbidden = False
    store.clear_broken()
    assert d.deliver(retry_now=True).sent == 1


def test_a_bad_token_holds_the_channel_until_the_token_changes(
    api: FakeDiscordApi, store: Store
) -> None:
    queue(store, X, 1)
    deliverer(store, sink(api, token="wrong")).deliver(retry_now=True)
    assert "401" in store.broken_destinations()[f"discord:{X}"].reason
    assert deliverer(store, sink(api, token="wrong")).deliver(retry_now=True).sent == 0
    assert len(api.calls_to("POST", "/messages")) == 1
    assert deliverer(store, sink(api)).deliver(retry_now=True).sent == 1


def test_without_a_bot_token_alerts_wait(api: FakeDiscordApi, store: Store) -> None:
    (waiting,) = queue(store, X, 1)
    report = deliverer(store, sink(api, token="")).deliver(retry_now=True)
    assert report.failed == 1 and "DISCORD_BOT_TOKEN" in report.errors[0]
    row = store.outbox_message(waiting)
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
