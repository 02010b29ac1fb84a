"""`/watch` in Discord end to end: `newshound run` as a real subprocess,
signed interactions over real HTTP, the fake Discord REST API for the
deferred answers and bot delivery, loopback feeds.

Requests are signed like Discord signs them (discord-api-docs developers/
interactions/overview.mdx, "Setting Up an Endpoint": Ed25519 over
X-Signature-Timestamp + body, hex in X-Signature-Ed25519) with a real key
pair generated here; the payloads follow receiving-and-responding.mdx
(Interaction Object, application command data with a subcommand option).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_subprocess, write_config
from fakediscord_api import APPLICATION_ID, BOT_TOKEN, FakeDiscordApi
from fakeslack import FakeSlack
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from nacl.signing import SigningKey
from service_helpers import HttpResult, Service, request, sql, wait_for

from bot.discord_app import DiscordChannelCheck, DiscordSettings
from bot.messages import ALERT
from bot.store import Store

pytestmark = pytest.mark.slow

X = "1200000000000000011"  # the bot can post here
HIDDEN = "1200000000000000012"  # the bot cannot see this one
GUILD = "1000000000000000001"
ALICE = "80351110224678912"
ALL_PERMISSIONS = str((1 << 41) - 1)
NOW = datetime.now(UTC)


class Discord:
    """Plays Discord's side: signs and sends interactions to the service."""

    def __init__(self, service: Service, api: FakeDiscordApi, key: SigningKey) -> None:
        self.service = service
        self.api = api
        self.key = key

    @property
    def url(self) -> str:
        return self.service.base + "/discord/interactions"

    def signed(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(stamp.encode() + body).signature.hex()
        return {
            "Content-Type": "application/json",
            "X-Signature-Ed25519": signature,
            "X-Signature-Timestamp": stamp,
        }

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> HttpResult:
        return self.api.interact(self.url, body, self.signed(body) if headers is None else headers)

    def command(
        self,
        sub: str,
        query: str | None = None,
        *,
        channel: str = X,
        guild: str | None = GUILD,
        permissions: str = ALL_PERMISSIONS,
    ) -> tuple[dict[str, Any], str]:
        token = "itok-" + uuid.uuid4().hex
        option: dict[str, Any] = {"type": 1, "name": sub}
        if query is not None:
            option["options"] = [{"type": 3, "name": "query", "value": query}]
        data: dict[str, Any] = {
            "id": "1300000000000000001",
            "application_id": APPLICATION_ID,
            "type": 2,
            "token": token,
            "version": 1,
            "channel_id": channel,
            "channel": {"id": channel, "type": 0},
            "app_permissions": permissions,
            "data": {"id": "1400000000000000001", "name": "watch", "type": 1, "options": [option]},
        }
        user = {"id": ALICE, "username": "alice"}
        if guild is not None:
            data["guild_id"] = guild
            data["member"] = {"user": user, "permissions": ALL_PERMISSIONS}
            data["context"] = 0
        else:
            data["user"] = user
            data["context"] = 1
        return data, token

    def watch(self, sub: str, query: str | None = None, **kwargs: Any) -> str:
        """`/watch SUB query:QUERY`; the reply text, immediate or edited in."""
        data, token = self.command(sub, query, **kwargs)
        result = self.post(json.dumps(data).encode())
        assert result.status == 200, (result.status, result.body)
        answer = result.json()
        assert result.elapsed < 3
        if answer["type"] == 4:
            assert answer["data"]["flags"] == 64
            assert answer["data"]["allowed_mentions"] == {"parse": []}
            return str(answer["data"]["content"])
        assert answer == {"type": 5, "data": {"flags": 64}}
        edit = self.api.wait_for_edit(token)
        assert edit["allowed_mentions"] == {"parse": []}
        return str(edit["content"])


@pytest.fixture(scope="module")
def discord(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Discord]:
    tmp = tmp_path_factory.mktemp("discord")
    key = SigningKey.generate()
    with FakeSlack() as slack, FeedServer() as feeds, FakeDiscordApi() as api:
        api.channel(X)
        api.channel(HIDDEN)
        api.forbid(HIDDEN)
        feeds.set("/world.xml", rss([], title="World"))
        config = write_config(tmp / "feeds.yaml", [feeds.url("/world.xml")], [])
        service = Service(
            config,
            module_db_url,
            slack,
            DISCORD_PUBLIC_KEY=key.verify_key.encode().hex(),
            DISCORD_APPLICATION_ID=APPLICATION_ID,
            DISCORD_BOT_TOKEN=BOT_TOKEN,
            DISCORD_API_URL=api.api_url,
        ).start()
        env = Discord(service, api, key)
        env.feeds = feeds  # type: ignore[attr-defined]
        try:
            yield env
        finally:
            code, _ = service.stop()
        assert code == 0, service.log()
        assert BOT_TOKEN not in service.log()


def terms(discord: Discord, channel: str) -> list[tuple[str, str, str | None]]:
    return sql(
        discord.service.db,
        "SELECT term, source, added_by FROM terms WHERE channel = ?",
        (f"discord:{channel}",),
    )


def test_ping_is_answered_with_a_pong(discord: Discord) -> None:
    result = discord.post(b'{"type":1}')
    assert result.status == 200 and result.json() == {"type": 1}


@pytest.mark.parametrize("forgery", ["unsigned", "other key", "stale", "tampered", "garbage"])
def test_bad_signatures_get_401_and_change_nothing(discord: Discord, forgery: str) -> None:
    data, _ = discord.command("add", "forged term")
    body = json.dumps(data).encode()
    headers = discord.signed(body)
    if forgery == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif forgery == "other key":
        stamp = headers["X-Signature-Timestamp"]
        other = SigningKey.generate().sign(stamp.encode() + body).signature.hex()
        headers["X-Signature-Ed25519"] = other
    elif forgery == "stale":
        headers = discord.signed(body, timestamp=int(time.time()) - 600)
    elif forgery == "tampered":
        body = body.replace(b"forged term", b"forged TERM")
    else:
        headers["X-Signature-Ed25519"] = "zz" * 64
    result = discord.post(body, headers)
    assert result.status == 401
    assert ("forged term",) not in [t[:1] for t in terms(discord, X)]


def test_add_then_a_later_cycle_posts_the_alert_to_the_channel_once(discord: Discord) -> None:
    reply = discord.watch("add", "tariff")
    assert reply.startswith("Now watching **tariff** (also: tariffs) in this channel.")
    assert terms(discord, X) == [("tariff", "discord", ALICE)]
    entry = FeedEntry(
        title="New tariff on steel <@everyone>",
        link="https://news.example/tariff-1",
        guid="urn:tariff:1",
        summary="A tariff was announced.",
        published=NOW - timedelta(minutes=1),
    )
    discord.feeds.set("/world.xml", rss([entry], title="World"))  # type: ignore[attr-defined]
    sql(discord.service.db, "UPDATE feeds SET next_check_at = 0")
    posts = wait_for(lambda: discord.api.posts(X), timeout=15)
    time.sleep(1.0)  # further cycles change nothing
    sql(discord.service.db, "UPDATE feeds SET next_check_at = 0")
    time.sleep(1.0)
    posts = discord.api.posts(X)
    assert len(posts) == 1
    embed = posts[0]["embeds"][0]
    assert embed["url"] == "https://news.example/tariff-1"
    assert posts[0]["allowed_mentions"] == {"parse": []}
    (call,) = discord.api.calls_to("POST", f"/channels/{X}/messages")
    assert call.body["enforce_nonce"] is True and call.body["nonce"].startswith("nh")

    listed = discord.watch("list")
    assert f"Terms watched in discord:{X}:" in listed
    assert f"• tariff (added by <@{ALICE}>," in listed
    tested = discord.watch("test", "steel")
    assert "(nothing was added)" in tested and "New tariff on steel" in tested
    assert "<@everyone>" not in tested  # feed text cannot mention anyone
    feeds = discord.watch("feeds")
    assert feeds.startswith("Feeds:") and "World" in feeds
    removed = discord.watch("remove", "tariff")
    assert removed == "Stopped watching `tariff` in this channel."
    assert terms(discord, X) == []


def test_help_and_unknown_subcommands_answer_at_once(discord: Discord) -> None:
    helped = discord.watch("help")
    assert helped.startswith("**newshound** watches news feeds")
    assert "`/watch add QUERY`" in helped
    unknown = discord.watch("frobnicate")
    assert unknown.startswith("Unknown command `frobnicate`.")


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("", "Can't use that query"),
        ("   ", "Can't use that query"),
        ("-rumor", "Can't use that query"),
        ("x" * 600, "longer than 200 characters"),
    ],
)
def test_bad_queries_get_a_clear_answer_and_store_nothing(
    discord: Discord, query: str, why: str
) -> None:
    assert why in discord.watch("add", query)
    assert terms(discord, X) == []


def test_channels_the_bot_cannot_post_in_are_refused_at_add(discord: Discord) -> None:
    hidden = discord.watch("add", "tariff", channel=HIDDEN)
    assert "I can't see this channel" in hidden
    assert terms(discord, HIDDEN) == []
    no_send = str((1 << 10) | (1 << 14))  # View Channel + Embed Links, no Send Messages
    refused = discord.watch("add", "tariff", permissions=no_send)
    assert "I lack the permission Send Messages." in refused
    assert terms(discord, X) == []


def test_direct_messages_are_refused(discord: Discord) -> None:
    answer = discord.watch("add", "tariff", guild=None)
    assert "Use /watch in a server channel" in answer
    assert terms(discord, X) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"type": 3, "token": "t"}', 400),  # a component interaction: not ours
        (b'{"type": 2, "token": "t", "data": {"name": "other"}}', 400),
        (b'{"type": "1"}', 400),
    ],
)
def test_malformed_and_foreign_interactions_get_4xx(
    discord: Discord, body: bytes, status: int
) -> None:
    assert discord.post(body).status == status


def test_requests_over_1_mb_are_refused(discord: Discord) -> None:
    """Refused from the Content-Length alone, before the body is read (a raw
    socket, so the client is still sending when the answer comes)."""
    import socket

    length = 1024 * 1024 + 1
    head = (
        f"POST /discord/interactions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", discord.service.port), timeout=5) as conn:
        conn.sendall(head + b'{"type": 1, "pad": "')
        answer = conn.recv(1024)
    assert answer.startswith(b"HTTP/1.0 413") or answer.startswith(b"HTTP/1.1 413")


def test_wrong_methods_health_and_metrics(discord: Discord) -> None:
    assert discord.service.get("/discord/interactions").status == 405
    metrics = discord.service.get("/metrics").body.decode()
    assert 'newshound_slash_commands_total{sub="help"}' in metrics
    health = discord.service.get("/healthz").json()
    assert health["discord"] == "http" and health["delivery_paused"] == {}


def test_a_channel_that_answers_404_is_held_and_reported(discord: Discord) -> None:
    gone = "1200000000000000099"  # unknown to Discord: deleted, or the bot was removed
    payload = {
        "title": "Held story",
        "link": "https://news.example/held",
        "source": "World",
        "terms": ["tariff"],
        "snippet": [["Held", False]],
        "published": None,
    }
    with Store(discord.service.db) as store:
        store.outbox.add(f"discord:{gone}", ALERT, payload, time.time())

    def paused() -> dict[str, str]:
        health = discord.service.get("/healthz").json()
        return dict(health["delivery_paused"])

    assert "HTTP 404" in wait_for(paused, timeout=10)[f"discord:{gone}"]
    assert "delivery_paused" in discord.service.get("/healthz").json()["degraded_by"]
    time.sleep(0.6)  # several delivery ticks: it is not called again
    assert len(discord.api.calls_to("POST", f"/channels/{gone}/messages")) == 1
    feeds = discord.watch("feeds", channel=gone)
    assert feeds.startswith("**Alerts for this channel are on hold: **the channel no longer")


def test_a_bad_public_key_stops_run_with_a_clear_error(db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    result = run_subprocess(
        "--config", str(config), "--db", db_url, "run", "--port", "0",
        env={"DISCORD_PUBLIC_KEY": "not-a-key", "NEWSHOUND_BIND": "127.0.0.1"},
        timeout=30,
    )  # fmt: skip
    assert result.code == 2
    assert "newshound: cannot start: DISCORD_PUBLIC_KEY must be" in result.err
    assert "Traceback" not in result.err


def test_signed_interactions_of_odd_shapes_get_a_clear_answer_never_a_500(
    discord: Discord,
) -> None:
    """Signed is not well-formed: an option list that is not a list, a type
    that is a boolean (`true == 1` in Python, but no PING) or JSON nested
    deeper than the parser goes are a 400 or a clear reply, never a 500."""
    data, token = discord.command("add", "tariff")
    data["data"]["options"][0]["options"] = 5
    result = discord.post(json.dumps(data).encode())
    assert result.status == 200
    assert discord.api.wait_for_edit(token)["content"].startswith("Can't use that query")
    assert discord.post(b'{"type": true}').status == 400
    deep = b"[" * 50_000 + b"]" * 50_000
    assert request(discord.url, data=deep, headers=discord.signed(deep)).status == 400
    assert "error handling /discord/interactions" not in discord.service.log()
    assert terms(discord, X) == []


def test_replies_use_the_application_named_in_the_interaction(db_url: str, tmp_path: Path) -> None:
    """Every interaction carries its `application_id` (discord-api-docs
    receiving-and-responding.mdx, Interaction Object), and the answer is
    edited under it: without DISCORD_APPLICATION_ID the reply still arrives."""
    key = SigningKey.generate()
    with FakeSlack() as slack, FakeDiscordApi() as api:
        api.channel(X)
        config = write_config(tmp_path / "feeds.yaml", [], [])
        service = Service(
            config,
            db_url,
            slack,
            DISCORD_PUBLIC_KEY=key.verify_key.encode().hex(),
            DISCORD_BOT_TOKEN=BOT_TOKEN,
            DISCORD_API_URL=api.api_url,
        ).start()
        try:
            assert "DISCORD_APPLICATION_ID" not in service.env
            assert Discord(service, api, key).watch("list").startswith("This channel watches no")
        finally:
            code, _ = service.stop()
        assert code == 0, service.log()


def test_a_channel_check_answer_expires() -> None:
    """ "The bot can see this channel" is trusted for a while, not forever:
    a bot removed later is noticed at the next `/watch add`."""
    now = [1000.0]
    with FakeDiscordApi() as api:
        api.channel(X)
        settings = DiscordSettings("00" * 32, APPLICATION_ID, api.api_url, BOT_TOKEN)
        check = DiscordChannelCheck(settings, clock=lambda: now[0], ttl=60)
        try:
            assert check(f"discord:{X}") is None
            api.forbid(X)
            assert check(f"discord:{X}") is None  # cached
            assert len(api.calls_to("GET", f"/channels/{X}")) == 1
            now[0] += 61
            assert "I can't see this channel" in (check(f"discord:{X}") or "")
        finally:
            check.close()
