"""Discord webhook sink against a fake Discord over real HTTP."""

from __future__ import annotations

import json
import re
import time

import pytest
from fakediscord import FakeDiscord, Fault

from bot.deliver import Deliverer
from bot.messages import ALERT, DIGEST, NOTICE
from bot.sinks.base import Delivered, DeliveryError
from bot.sinks.discord import DiscordSink, format_message
from bot.store import PENDING, SENT, Store

HOSTILE = {
    "title": "@everyone tariff <@123> news",
    "link": "https://news.example/a?x=1",
    "source": "Feed @here",
    "published": 1_760_000_000.0,
    "terms": ["tariff"],
    "snippet": [["ping @everyone and <@&456> about ", False], ["tariff", True], [" *now*", False]],
}


@pytest.fixture
def discord():
    with FakeDiscord() as fake:
        yield fake


def deliverer(store: Store, sink: DiscordSink, **kwargs) -> Deliverer:
    kwargs.setdefault("send_interval", 0.0)
    return Deliverer(store, lambda channel: sink, **kwargs)


def queue(store: Store, channel: str, count: int) -> list[int]:
    return [
        store.outbox.add(channel, ALERT, dict(HOSTILE, title=f"Story {n}"), time.time())
        for n in range(count)
    ]


def test_embed_shape_and_no_mentions():
    body = format_message(ALERT, HOSTILE)
    assert body["allowed_mentions"] == {"parse": []}
    assert "content" not in body
    (embed,) = body["embeds"]
    assert embed["url"] == "https://news.example/a?x=1"
    assert embed["timestamp"].startswith("2025-10-09T")
    assert "tariff" in embed["footer"]["text"] and "Feed" in embed["footer"]["text"]
    assert "**tariff**" in embed["description"]
    everything = json.dumps(body, ensure_ascii=False)
    for mention in ("@everyone", "@here", "<@123>", "<@&456>"):
        assert mention not in everything
    assert "\\*now\\*" in embed["description"]  # feed markdown is shown, not applied


def test_digest_is_cut_at_whole_lines():
    items = [
        {"title": f"Story {n} " + "x" * 80, "link": f"https://n.example/{n}", "source": "S"}
        for n in range(200)
    ]
    (embed,) = format_message(DIGEST, {"items": items})["embeds"]
    assert len(embed["description"]) <= 4096
    assert embed["description"].splitlines()[-1].startswith("… and ")
    assert "200 more matching stories" in embed["title"]


@pytest.mark.parametrize(
    ("count", "title"), [(1, "1 more matching story"), (2, "2 more matching stories")]
)
def test_digest_title_counts_stories(count: int, title: str):
    items = [
        {"title": f"S{n}", "link": f"https://n.example/{n}", "source": "S"} for n in range(count)
    ]
    (embed,) = format_message(DIGEST, {"items": items})["embeds"]
    assert embed["title"] == f"{title} this round"


def test_posts_with_wait_and_records_message_id(discord: FakeDiscord, store: Store):
    url = discord.webhook()
    ids = queue(store, f"discord:{url}", 2)
    assert deliverer(store, DiscordSink({})).deliver().sent == 2
    requests = discord.received(url)
    assert [r.query.get("wait") for r in requests] == ["true", "true"]
    assert requests[0].body["allowed_mentions"] == {"parse": []}
    posted = discord.posts(url)
    for message_id, message in zip(ids, posted, strict=True):
        row = store.outbox.get(message_id)
        assert row is not None and row.state == SENT and row.remote_id == message["id"]


def test_webhook_from_environment_variable(discord: FakeDiscord, store: Store):
    url = discord.webhook()
    queue(store, "discord:$TRADE_HOOK", 1)
    assert deliverer(store, DiscordSink({"TRADE_HOOK": url})).deliver().sent == 1


def test_unset_webhook_variable_waits_and_is_retried(discord: FakeDiscord, store: Store):
    url = discord.webhook()
    (waiting,) = queue(store, "discord:$MISSING_HOOK", 1)
    report = deliverer(store, DiscordSink({})).deliver()
    # Not dead (SPEC §4: no alert is lost): pending, with backoff and the reason.
    assert report.dead == 0 and report.failed == 1
    assert "environment variable MISSING_HOOK is not set" in report.errors[0]
    row = store.outbox.get(waiting)
    assert row is not None and row.state == PENDING and row.next_attempt_at > time.time()
    assert row.last_error == "environment variable MISSING_HOOK is not set"
    # Still unset: retried, still pending.
    assert deliverer(store, DiscordSink({})).deliver(retry_now=True).failed == 1
    # Once the operator sets it, the alert goes out.
    report = deliverer(store, DiscordSink({"MISSING_HOOK": url})).deliver(retry_now=True)
    assert report.sent == 1 and len(discord.posts(url)) == 1
    row = store.outbox.get(waiting)
    assert row is not None and row.state == SENT


def test_429_retry_after_from_json_body(discord: FakeDiscord, store: Store):
    url = discord.webhook()
    queue(store, f"discord:{url}", 2)
    discord.fail_next(Fault(status=429, retry_after=0.35))
    assert deliverer(store, DiscordSink({})).deliver(max_wait=5).sent == 2
    limited, *rest = [r.at for r in discord.received(url)]
    assert len(rest) == 2 and min(rest) - limited >= 0.35


def test_rate_limit_headers_pause_the_webhook(discord: FakeDiscord, store: Store):
    url, other = discord.webhook("a"), discord.webhook("b")
    discord.bucket(limit=2, reset_after=0.4)
    queue(store, f"discord:{url}", 5)
    queue(store, f"discord:{other}", 1)
    assert deliverer(store, DiscordSink({})).deliver(max_wait=5).sent == 6
    assert discord.violations == 0  # never called while Remaining was 0
    times = [r.at for r in discord.received(url)]
    assert len(times) == 5 and times[2] - times[0] >= 0.4 and times[4] - times[2] >= 0.4
    assert len(discord.posts(other)) == 1


def test_remaining_zero_is_reported_as_a_wait(discord: FakeDiscord):
    url = discord.webhook()
    discord.bucket(limit=1, reset_after=0.25)
    result = DiscordSink({}).send(f"discord:{url}", ALERT, HOSTILE, 1)
    assert isinstance(result, Delivered) and result.remote_id
    assert 0.1 < result.wait <= 0.25


def test_unknown_webhook_is_paused_and_others_flow(discord: FakeDiscord, store: Store):
    good, gone = discord.webhook("good"), discord.webhook("gone")
    discord.delete(gone)
    (held_id,) = queue(store, f"discord:{gone}", 1)
    queue(store, f"discord:{good}", 2)
    d = deliverer(store, DiscordSink({}))
    report = d.deliver()
    assert report.dead == 0 and report.sent == 2
    row = store.outbox.get(held_id)
    assert row is not None and row.state == PENDING and "404" in (row.last_error or "")
    paused = store.gates.paused()
    assert "404" in paused[DiscordSink({}).pause_key(f"discord:{gone}")][0]
    assert "SECRET" not in " ".join(report.errors)  # the token never shows
    # Not called again, however often we deliver, until `retry` clears it.
    calls = len(discord.received(gone))
    for _ in range(3):
        assert d.deliver(retry_now=True).sent == 0
    assert len(discord.received(gone)) == calls == 1
    store.gates.resume()
    d.deliver(retry_now=True)
    assert len(discord.received(gone)) == 2


def test_a_paused_env_webhook_waits_for_retry_after_its_variable_is_fixed(
    discord: FakeDiscord, store: Store
):
    gone, fixed = discord.webhook("gone"), discord.webhook("fixed")
    discord.delete(gone)
    queue(store, "discord:$TRADE_HOOK", 1)
    d = deliverer(store, DiscordSink({"TRADE_HOOK": gone}))
    d.deliver()
    d.deliver(retry_now=True)
    assert len(discord.received(gone)) == 1
    assert list(store.gates.paused()) == ["discord:$TRADE_HOOK"]
    fixed_d = deliverer(store, DiscordSink({"TRADE_HOOK": fixed}))
    assert fixed_d.deliver(retry_now=True).sent == 0  # still paused: nobody said it is fixed
    store.gates.resume("discord:")  # `newshound retry`
    assert fixed_d.deliver(retry_now=True).sent == 1
    assert len(discord.posts(fixed)) == 1 and store.gates.paused() == {}


def test_500_burst_drop_and_timeout_are_retried(discord: FakeDiscord, store: Store):
    url = discord.webhook()
    queue(store, f"discord:{url}", 1)
    discord.fail_next(Fault(status=500), Fault(status=502), Fault(drop=True), Fault(delay=1.0))
    d = deliverer(store, DiscordSink({}, timeout=0.3))
    for _ in range(4):
        assert d.deliver(retry_now=True).failed == 1
    assert d.deliver(retry_now=True).sent == 1
    # The timed-out post had arrived: webhooks cannot be searched, so it is
    # repeated once (the documented Discord window).
    assert len(discord.posts(url)) == 2


def test_errors_are_classified():
    sink = DiscordSink({})
    with pytest.raises(DeliveryError) as refused:
        sink.send("discord:http://127.0.0.1:9/api/webhooks/1/x", ALERT, HOSTILE, 1)
    assert not refused.value.permanent and not refused.value.maybe_delivered
    assert sink.rate_key("discord:http://h/api/webhooks/1/tok").startswith("discord:")
    assert "tok" not in sink.rate_key("discord:http://h/api/webhooks/1/tok")


def test_webhook_query_is_kept_and_wait_added(discord: FakeDiscord, store: Store):
    url = discord.webhook() + "?thread_id=123"
    queue(store, f"discord:{url}", 1)
    assert deliverer(store, DiscordSink({})).deliver().sent == 1
    (request,) = discord.received(url)
    assert request.query == {"thread_id": "123", "wait": "true"}


ANGLE_MARKUP = ["<#123>", "<t:1700000000:R>", "</cmd:1>", "<:emoji:42>", "<a:dance:7>", "<@!9>"]


def test_angle_bracket_markup_never_renders():
    markup = " ".join(ANGLE_MARKUP)
    payload = dict(
        HOSTILE,
        title=f"title {markup}",
        source=f"feed {markup}",
        terms=[f"term {markup}"],
        snippet=[[f"snippet {markup} ", False], [f"bold {markup}", True]],
    )
    bodies = [
        format_message(ALERT, payload),
        format_message(DIGEST, {"items": [dict(payload, link="https://n.example/<#1>")]}),
        format_message(NOTICE, {"text": f"notice {markup}"}),
    ]
    for body in bodies:
        everything = json.dumps(body, ensure_ascii=False)
        # Every "<" is followed by a zero-width space: no <…> syntax can start.
        assert re.findall(r"<(?!\u200b)", everything) == []
        for syntax in ANGLE_MARKUP:
            assert syntax not in everything
    (embed,) = bodies[0]["embeds"]
    assert "<\u200b\\#123\\>" in embed["description"]  # still readable
