"""Stories, not links (SPEC §8), end to end through `newshound poll --once`:
loopback feed servers, real SQLite files, the console sink and the fake
Slack / Discord APIs. A wire story republished by other outlets alerts once;
later copies become "Also reported by" follow-ups (a Slack thread reply, an
edit of a Discord webhook's alert); different stories on the same topic
still alert on their own.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli, run_subprocess, write_config
from fakediscord import FakeDiscord
from fakeslack import FakeSlack
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.store import Store

CHANNEL = "C0STORIES01"
OTHER = "C0STORIES02"
NOW = datetime.now(UTC)

WIRE_TITLE = "UPDATE 1-India and EU conclude trade deal talks after 18 years - Reuters"
WIRE_LEAD = (
    "NEW DELHI, Dec 5 (Reuters) - India and the European Union concluded negotiations "
    "on a free trade deal on Friday, ending 18 years of talks, Commerce Minister Piyush Goyal "
    "said, as both sides seek to cut tariffs on goods worth $136 billion a year. The agreement "
    "still needs approval from the European Parliament and member states."
)
COPY_TITLE = "India and EU conclude trade deal talks after 18 years"
COPY_LEAD = (
    "India and the European Union concluded negotiations on a free trade deal on "
    "Friday, ending 18 years of talks, Commerce Minister Piyush Goyal said, as both sides seek "
    "to cut tariffs on goods worth $136 billion a year."
)
# Same topic, same day, another report: must alert on its own.
TRAP_TITLE = "India-EU trade deal faces protests from Punjab farmers"
TRAP_LEAD = (
    "Farmers' unions in Punjab protested on Saturday against the India-EU trade deal, "
    "saying cheaper dairy imports from Europe would hurt 80 million small producers, union "
    "leader Darshan Pal said, and vowed to block highways until the government listens."
)
WIRE_LINK = "https://wire.example/world/india-eu-trade-deal-2026-12-05/"


def wire(minutes: int = 30) -> FeedEntry:
    return FeedEntry(
        WIRE_TITLE,
        WIRE_LINK,
        summary=f"<p>{WIRE_LEAD}</p>",
        published=NOW - timedelta(minutes=minutes),
    )


def copy(host: str, title: str = COPY_TITLE) -> FeedEntry:
    return FeedEntry(
        title,
        f"https://{host}/business/india-eu-deal.html",
        summary=f"<div><b>{COPY_LEAD}</b></div>",
        published=NOW - timedelta(minutes=10),
    )


def trap() -> FeedEntry:
    return FeedEntry(
        TRAP_TITLE,
        "https://farm.example/punjab-protest",
        summary=TRAP_LEAD,
        published=NOW - timedelta(minutes=5),
    )


def poll(config: Path, db: Path) -> str:
    result = run_cli("--config", str(config), "--db", str(db), "poll", "--once", "--all")
    assert result.code == 0, result.err
    return result.out


def console_alert_titles(out: str) -> list[str]:
    return re.findall(r"^== alert -> .*\n(.*)$", out, re.MULTILINE)


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)


def two_feeds(server: FeedServer, tmp_path: Path, **settings: Any) -> Path:
    server.set("/wire.xml", rss([wire()], title="Wire"))
    server.set("/outlet.xml", rss([], title="Outlet B"))
    return write_config(
        tmp_path / "feeds.yaml",
        [
            {"url": server.url("/wire.xml"), "name": "Wire"},
            {"url": server.url("/outlet.xml"), "name": "Outlet B"},
        ],
        [{"channel": CHANNEL, "terms": ["trade deal"]}],
        **settings,
    )


def test_a_wire_copy_on_another_outlet_is_a_follow_up_and_a_same_topic_story_alerts(
    db_url: str,
    feed_server: FeedServer,
    tmp_path: Path,
    console: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config, db = two_feeds(feed_server, tmp_path), db_url
    first = poll(config, db)
    assert console_alert_titles(first) == [WIRE_TITLE]

    feed_server.set("/outlet.xml", rss([copy("outlet-b.example"), trap()], title="Outlet B"))
    with caplog.at_level(logging.INFO, logger="bot.poll"):
        second = poll(config, db)
    assert console_alert_titles(second) == [TRAP_TITLE]  # the copy alerts nothing new
    assert "== follow-up -> " in second
    assert f"Also reported by: Outlet B — {COPY_TITLE}" in second
    assert "1 near-duplicate copies merged" in second
    merged = [r.getMessage() for r in caplog.records if "merged into story" in r.getMessage()]
    assert len(merged) == 1 and "outlet-b.example/business/india-eu-deal.html" in merged[0]
    assert re.search(r"\(score 1\.00\)$", merged[0])

    # Explainable later: which item merged into which, and why.
    shown = run_cli(
        "--db", str(db), "status", "--story", "https://outlet-b.example/business/india-eu-deal.html"
    )
    assert shown.code == 0, shown.err
    assert WIRE_TITLE in shown.out and "copies merged into it: 1" in shown.out
    assert "as a copy of link:wire.example/world/india-eu-trade-deal-2026-12-05" in shown.out
    assert re.search(
        r"score 1\.00: lead overlap 1\.00 \(\d+/\d+\), \d+ names/numbers agree", shown.out
    )
    assert "also reported by Outlet B" in shown.out

    # Polling again changes nothing: the copy is the known story now.
    third = poll(config, db)
    assert console_alert_titles(third) == [] and "== follow-up" not in third
    assert run_cli("--db", str(db), "status", "--story", "nope://x").code == 2


def test_an_updated_headline_in_the_same_feed_alerts_nothing(
    db_url: str, feed_server: FeedServer, tmp_path: Path, console: None
) -> None:
    config, db = two_feeds(feed_server, tmp_path), db_url
    poll(config, db)
    updated = FeedEntry(
        "UPDATE 2-India, EU seal trade deal after 18 years of talks - Reuters",
        WIRE_LINK + "?update=2",
        summary=WIRE_LEAD,
        published=NOW,
    )
    feed_server.set("/wire.xml", rss([updated], title="Wire"))
    out = poll(config, db)
    assert console_alert_titles(out) == []
    assert "== follow-up" not in out  # the same outlet is no new source


def test_the_index_is_rebuilt_from_the_database_after_a_restart(
    db_url: str, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Each cycle is its own process here: the second knows the story only
    from the signatures the first one stored."""
    config, db = two_feeds(feed_server, tmp_path), db_url
    env: dict[str, str] = {}
    first = run_subprocess(
        "--config", str(config), "--db", str(db), "poll", "--once", "--all", env=env
    )
    assert first.code == 0, first.err
    assert console_alert_titles(first.out) == [WIRE_TITLE]
    feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
    second = run_subprocess(
        "--config", str(config), "--db", str(db), "poll", "--once", "--all", env=env
    )
    assert second.code == 0, second.err
    assert console_alert_titles(second.out) == []
    assert "Also reported by: Outlet B" in second.out
    with Store(db) as store:
        assert len(store.stories.copies(1)) == 1


def test_a_story_first_seen_in_an_unwatched_feed_still_alerts_a_channel_watching_the_copy(
    db_url: str, feed_server: FeedServer, tmp_path: Path, console: None
) -> None:
    feed_server.set("/wire.xml", rss([wire()], title="Wire"))
    feed_server.set("/outlet.xml", rss([], title="Outlet B"))
    config = write_config(
        tmp_path / "feeds.yaml",
        [
            {"url": feed_server.url("/wire.xml"), "name": "Wire"},
            {"url": feed_server.url("/outlet.xml"), "name": "Outlet B"},
        ],
        [
            {"channel": CHANNEL, "terms": ["trade deal"], "feeds": ["Wire"]},
            {"channel": OTHER, "terms": ["trade deal"], "feeds": ["Outlet B"]},
        ],
    )
    db = db_url
    first = poll(config, db)
    assert re.findall(r"^== alert -> (\S+)", first, re.M) == [CHANNEL]
    feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
    second = poll(config, db)
    # OTHER never saw the story: the copy in its feed alerts it, once.
    assert re.findall(r"^== alert -> (\S+)", second, re.M) == [OTHER]
    assert console_alert_titles(second) == [COPY_TITLE]
    # CHANNEL does not watch Outlet B: no follow-up there either.
    assert "== follow-up" not in second
    assert console_alert_titles(poll(config, db)) == []


def test_followups_none_keeps_the_channel_quiet(
    db_url: str, feed_server: FeedServer, tmp_path: Path, console: None
) -> None:
    config, db = two_feeds(feed_server, tmp_path, followups="none"), db_url
    poll(config, db)
    feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
    out = poll(config, db)
    assert console_alert_titles(out) == [] and "== follow-up" not in out


def test_followups_none_on_one_watch_only(
    db_url: str, feed_server: FeedServer, tmp_path: Path, console: None
) -> None:
    feed_server.set("/wire.xml", rss([wire()], title="Wire"))
    feed_server.set("/outlet.xml", rss([], title="Outlet B"))
    config = write_config(
        tmp_path / "feeds.yaml",
        [
            {"url": feed_server.url("/wire.xml"), "name": "Wire"},
            {"url": feed_server.url("/outlet.xml"), "name": "Outlet B"},
        ],
        [
            {"channel": CHANNEL, "terms": ["trade deal"]},
            {"channel": OTHER, "terms": ["trade deal"], "followups": "none"},
        ],
    )
    db = db_url
    poll(config, db)
    feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
    out = poll(config, db)
    assert re.findall(r"^== follow-up -> (\w+):", out, re.M) == [CHANNEL]


@pytest.fixture
def fake_slack(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        yield fake


def test_slack_follow_ups_are_one_batched_thread_reply_per_story_and_cycle(
    db_url: str, feed_server: FeedServer, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """chat.postMessage `thread_ts` = the alert's stored `ts`
    (https://docs.slack.dev/reference/methods/chat.postMessage); seven new
    sources in one cycle make one reply listing five, then "+2 more"."""
    outlets = [f"Outlet <{n}> & @here" for n in range(7)]
    feed_server.set("/wire.xml", rss([wire()], title="Wire"))
    for n in range(7):
        feed_server.set(f"/o{n}.xml", rss([], title=outlets[n]))
    feeds: list[str | dict[str, Any]] = [{"url": feed_server.url("/wire.xml"), "name": "Wire"}]
    feeds += [{"url": feed_server.url(f"/o{n}.xml"), "name": outlets[n]} for n in range(7)]
    config = write_config(
        tmp_path / "feeds.yaml", feeds, [{"channel": CHANNEL, "terms": ["trade deal"]}]
    )
    db = db_url
    poll(config, db)
    [alert] = fake_slack.posts(CHANNEL)
    for n in range(7):
        feed_server.set(f"/o{n}.xml", rss([copy(f"outlet{n}.example")], title=outlets[n]))
    poll(config, db)
    replies = fake_slack.replies(CHANNEL, alert["ts"])
    assert len(replies) == 1 and len(fake_slack.posts(CHANNEL)) == 2
    text = replies[0]["text"]
    assert text.count("Also reported by: ") == 5 and text.endswith("+2 more")
    # Feed strings escaped for Slack: no raw <, > or & from a feed name.
    listed = re.findall(r"Also reported by: (.*?) — <https://outlet\d\.example/", text)
    assert len(listed) == 5
    assert all(re.fullmatch(r"Outlet &lt;\d&gt; &amp; @here", name) for name in listed)
    assert f"|{COPY_TITLE}>" in text
    assert fake_slack.calls("chat.postMessage")[-1].args.get("thread_ts") == alert["ts"]
    # Nothing more next cycle; a new source later makes one more reply.
    poll(config, db)
    assert len(fake_slack.replies(CHANNEL, alert["ts"])) == 1


def test_a_follow_up_waits_for_its_alert_and_goes_with_it_if_it_dies(
    db_url: str, feed_server: FeedServer, tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """Both the alert and its copy arrive in one cycle while Slack refuses
    the alert for good: the follow-up is never sent before (or without) it."""
    from fakeslack import Fault

    feed_server.set("/wire.xml", rss([wire()], title="Wire"))
    feed_server.set("/outlet.xml", rss([], title="Outlet B"))
    config = two_feeds(feed_server, tmp_path)
    db = db_url
    fake_slack.fail_next("chat.postMessage", Fault(error="invalid_blocks"))
    poll(config, db)
    feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
    poll(config, db)
    assert fake_slack.posts(CHANNEL) == []  # the alert died: no orphan reply
    with Store(db) as store:
        dead = store.outbox.in_state("dead")
    assert [m.kind for m in dead] == ["alert"]  # no follow-up to a dead alert was queued


def test_discord_webhook_follow_up_edits_the_alert(
    db_url: str, feed_server: FeedServer, tmp_path: Path, console: None
) -> None:
    """The alert is posted with `?wait=true` so Discord returns its id; the
    follow-up edits it (PATCH …/webhooks/{id}/{token}/messages/{message_id},
    discord.com/developers/docs/resources/webhook#edit-webhook-message)."""
    with FakeDiscord() as discord:
        hook = discord.webhook("trade")
        feed_server.set("/wire.xml", rss([wire()], title="Wire"))
        feed_server.set("/outlet.xml", rss([], title="Outlet B"))
        config = write_config(
            tmp_path / "feeds.yaml",
            [
                {"url": feed_server.url("/wire.xml"), "name": "Wire"},
                {"url": feed_server.url("/outlet.xml"), "name": "Outlet *B*"},
            ],
            [{"channel": f"discord:{hook}", "terms": ["trade deal"]}],
        )
        db = db_url
        poll(config, db)
        [posted] = discord.posts(hook)
        feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
        poll(config, db)
        [edit] = discord.edits(hook)
        assert edit.message_id == posted["id"] and edit.version == 10
        assert len(discord.posts(hook)) == 1  # edited, not posted again
        embed = edit.body["embeds"][0]
        assert edit.body["allowed_mentions"] == {"parse": []}
        assert embed["title"] == posted["embeds"][0]["title"]
        assert embed["description"].endswith(
            "Also reported by: Outlet \\*B\\* — [India and EU conclude trade deal talks after "
            "18 years](https://outlet-b.example/business/india-eu-deal.html)"
        )
        assert json.dumps(discord.posts(hook)[0]).count("Also reported by") == 1


def test_copies_in_one_cycle_alert_once_and_the_follow_up_comes_after_its_alert(
    db_url: str, feed_server: FeedServer, tmp_path: Path, console: None
) -> None:
    config, db = two_feeds(feed_server, tmp_path), db_url
    feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
    out = poll(config, db)
    # Whichever feed finished first alerts; the other is its follow-up.
    assert len(console_alert_titles(out)) == 1
    assert out.index("== alert -> ") < out.index("== follow-up -> ")
    assert out.count("Also reported by: ") == 1


def test_a_follow_up_is_never_sent_before_its_alert(store: Store) -> None:
    """The deliverer hands a follow-up its alert's destination id; while the
    alert is unsent the follow-up waits, and it dies with a dead alert."""
    from bot.deliver import Deliverer
    from bot.messages import followup_payload
    from bot.sinks.base import DeliveryError
    from bot.sinks.console import ConsoleSink

    deliverer = Deliverer(store, lambda _channel: ConsoleSink())
    parent = store.outbox.add(CHANNEL, "alert", {"title": "T"}, 0.0)
    payload = followup_payload(parent, [{"source": "S", "title": "T2", "link": None}])
    with pytest.raises(DeliveryError) as waiting:
        deliverer.with_parent(payload)
    assert not waiting.value.permanent
    claim = store.outbox.claim(parent, owner="me", now=1.0, gate_keys=[], hold={})
    assert claim.row is not None
    store.outbox.mark_sent(parent, "1700000000.000100", 2.0, owner="me")
    sent = deliverer.with_parent(payload)
    assert sent["parent_message"] == "1700000000.000100" and sent["parent_payload"] == {
        "title": "T"
    }
    other = store.outbox.add(CHANNEL, "alert", {"title": "U"}, 0.0)
    store.outbox.claim(other, owner="me", now=3.0, gate_keys=[], hold={})
    store.outbox.mark_dead(other, "invalid_blocks", 4.0, owner="me")
    with pytest.raises(DeliveryError) as dead:
        deliverer.with_parent(followup_payload(other, []))
    assert dead.value.permanent


def test_discord_bot_channel_follow_up_is_a_reply_to_the_alert(
    db_url: str,
    feed_server: FeedServer,
    tmp_path: Path,
    console: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`discord:<channel id>`: the follow-up is posted with
    `message_reference: {"message_id": <the alert's id>}` (discord-api-docs
    developers/resources/message.mdx, Create Message: "Include to make your
    message a reply") and pings nobody (`replied_user` false)."""
    from fakediscord_api import BOT_TOKEN, FakeDiscordApi

    channel_id = "1300000000000000001"
    with FakeDiscordApi() as api:
        api.channel(channel_id)
        monkeypatch.setenv("DISCORD_BOT_TOKEN", BOT_TOKEN)
        monkeypatch.setenv("DISCORD_API_URL", api.api_url)
        feed_server.set("/wire.xml", rss([wire()], title="Wire"))
        feed_server.set("/outlet.xml", rss([], title="Outlet B"))
        config = write_config(
            tmp_path / "feeds.yaml",
            [
                {"url": feed_server.url("/wire.xml"), "name": "Wire"},
                {"url": feed_server.url("/outlet.xml"), "name": "Outlet @everyone"},
            ],
            [{"channel": f"discord:{channel_id}", "terms": ["trade deal"]}],
        )
        db = db_url
        poll(config, db)
        [alert] = api.posts(channel_id)
        feed_server.set("/outlet.xml", rss([copy("outlet-b.example")], title="Outlet B"))
        poll(config, db)
        alert_msg, reply = api.posts(channel_id)
        assert alert_msg["id"] == alert["id"]
        assert reply["type"] == 19 and reply["message_reference"]["message_id"] == alert["id"]
        [call] = api.calls_to("POST", f"/channels/{channel_id}/messages")[1:]
        assert call.body["allowed_mentions"] == {"parse": [], "replied_user": False}
        assert call.body["content"].startswith("Also reported by: Outlet @\u200beveryone — [")
        assert "(https://outlet-b.example/business/india-eu-deal.html)" in call.body["content"]


def test_a_webhook_edit_goes_where_the_post_went() -> None:
    """The edit of a forum-thread webhook keeps `thread_id`, is on v10, and
    a discord.com webhook goes through DISCORD_API_URL like its posts."""
    from bot.sinks.discord import webhook_edit_url

    hook = "https://discord.com/api/webhooks/1/tok?thread_id=5"
    assert str(webhook_edit_url(hook, "99")) == (
        "https://discord.com/api/v10/webhooks/1/tok/messages/99?thread_id=5"
    )
    assert str(webhook_edit_url(hook, "99", "http://127.0.0.1:9/api/v10")) == (
        "http://127.0.0.1:9/api/v10/webhooks/1/tok/messages/99?thread_id=5"
    )
