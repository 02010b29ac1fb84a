"""Slack sink against fake Slack over real HTTP: what each answer means."""

from __future__ import annotations

import json
import re

import pytest
from fakeslack import FakeSlack, Fault
from slack_sdk.errors import SlackApiError

from bot.messages import ALERT, DIGEST, NOTICE
from bot.sinks.base import DeliveryError
from bot.sinks.slack import (
    HISTORY_GATE,
    MAX_BLOCKS,
    METADATA_EVENT,
    POST_GATE,
    SECTION_CHARS,
    SlackSink,
    cap,
    format_message,
)

PAYLOAD = {
    "title": "Tariff <!channel> story",
    "link": "https://news.example/1",
    "source": "Example",
    "published": 1_760_000_000.0,
    "terms": ["tariff"],
    "snippet": [["about ", False], ["tariff", True]],
}
CHANNEL = "C0AAAAAAAA1"


def send_error(slack: FakeSlack, fault: Fault, timeout: float = 5.0) -> DeliveryError:
    slack.fail_next("chat.postMessage", fault)
    with pytest.raises(DeliveryError) as caught:
        SlackSink("xoxb-test", slack.api_url, timeout=timeout).send(CHANNEL, ALERT, PAYLOAD, 7)
    return caught.value


def test_post_carries_metadata_and_returns_ts(slack: FakeSlack):
    ts = SlackSink("xoxb-test", slack.api_url).send(CHANNEL, ALERT, PAYLOAD, 7)
    (post,) = slack.posts(CHANNEL)
    assert post["ts"] == ts
    assert post["metadata"] == {"event_type": METADATA_EVENT, "event_payload": {"outbox_id": 7}}
    assert post["unfurl_links"] is False and post["unfurl_media"] is False
    assert "<!channel>" not in post["text"]


@pytest.mark.parametrize(
    ("count", "header"), [(1, "1 more matching story"), (3, "3 more matching stories")]
)
def test_digest_header_counts_stories(count: int, header: str):
    from bot.sinks.slack import format_digest

    items = [
        {"title": f"S{n}", "link": f"https://n.example/{n}", "source": "S"} for n in range(count)
    ]
    blocks = format_digest({"items": items})["blocks"]
    assert blocks[0]["text"]["text"] == f"{header} this round:"


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
def test_permanent_errors(slack: FakeSlack, error: str):
    exc = send_error(slack, Fault(error=error))
    assert exc.permanent and exc.message == error


def test_429_gives_fractional_retry_after_for_the_method(slack: FakeSlack):
    exc = send_error(slack, Fault(status=429, error="ratelimited", retry_after=0.25))
    assert exc.retry_after == 0.25 and exc.gate_key == POST_GATE and not exc.permanent


@pytest.mark.parametrize(
    ("header", "seconds"), [(float("nan"), 1.0), (float("inf"), 3600.0), (-5.0, 0.0)]
)
def test_429_with_an_odd_retry_after_gives_a_finite_wait(
    slack: FakeSlack, header: float, seconds: float
):
    exc = send_error(slack, Fault(status=429, error="ratelimited", retry_after=header))
    assert exc.retry_after == seconds and exc.gate_key == POST_GATE


@pytest.mark.parametrize(
    "fault",
    [Fault(status=500, error="internal_error"), Fault(status=503), Fault(drop=True)],
    ids=["500", "503", "dropped"],
)
def test_unanswered_or_5xx_may_have_arrived(slack: FakeSlack, fault: Fault):
    exc = send_error(slack, fault)
    assert not exc.permanent and exc.maybe_delivered


def test_timeout_may_have_arrived(slack: FakeSlack):
    exc = send_error(slack, Fault(delay=1.0), timeout=0.2)
    assert exc.maybe_delivered and "connection error" in exc.message


def test_refused_connection_did_not_arrive():
    with pytest.raises(DeliveryError) as caught:
        SlackSink("xoxb-test", "http://127.0.0.1:9/api/").send(CHANNEL, ALERT, PAYLOAD, 7)
    assert not caught.value.maybe_delivered and not caught.value.permanent


def test_history_rate_limit_closes_the_history_gate(slack: FakeSlack):
    slack.fail_next("conversations.history", Fault(status=429, error="ratelimited", retry_after=2))
    with pytest.raises(DeliveryError) as caught:
        SlackSink("xoxb-test", slack.api_url).find_sent(CHANNEL, 7, since=0.0)
    assert caught.value.retry_after == 2 and caught.value.gate_key == HISTORY_GATE


def test_token_never_in_errors(slack: FakeSlack):
    exc = send_error(slack, Fault(error="invalid_auth"))
    assert "xoxb" not in exc.message


LONG_LINK = "https://news.example/a?" + "&".join(f"k{n}=v" for n in range(1200))[:4070]


def test_long_links_and_texts_fit_block_kit(slack: FakeSlack):
    """A 4096-character link whose `&`s grow when escaped: the title is shown
    without the link, and no section exceeds 3000 characters."""
    assert len(LONG_LINK) <= 4096 and LONG_LINK.count("&") > 500
    payload = dict(
        PAYLOAD,
        link=LONG_LINK,
        title="T&C " * 60,
        snippet=[["a&b<c> " * 300, False], ["tariff", True]],
    )
    sink = SlackSink("xoxb-test", slack.api_url)
    sink.send(CHANNEL, ALERT, payload, 1)
    sink.send(CHANNEL, DIGEST, {"items": [dict(payload, link=LONG_LINK)] * 3}, 2)
    sink.send(CHANNEL, NOTICE, {"text": "&" * 5000}, 3)
    alert, digest, notice = slack.posts(CHANNEL)
    assert (
        LONG_LINK[:40] not in json.dumps(alert) and "T&amp;C" in alert["blocks"][0]["text"]["text"]
    )
    assert "&amp;" in alert["blocks"][2]["text"]["text"]
    # A link that fits is kept.
    short = dict(PAYLOAD, link="https://news.example/a?x=1&y=2")
    assert (
        "<https://news.example/a?x=1&amp;y=2|"
        in format_message(ALERT, short)["blocks"][0]["text"]["text"]
    )
    for post in (alert, digest, notice):
        for text in _texts(post):
            assert len(text) <= SECTION_CHARS
            assert not re.search(r"&[a-z]{0,3}…", text)  # no entity cut in half
            assert text.count("<") == text.count(">")  # no link cut in half


def test_cap_never_cuts_an_entity_or_a_link():
    for pad in range(0, 12):
        text = "x" * (2990 + pad) + "&amp;&lt;" * 5
        capped = cap(text)
        assert len(capped) <= SECTION_CHARS and capped.endswith("…")
        assert re.fullmatch(r"x+(&amp;|&lt;)*…", capped), capped[-12:]
        text = "x" * (2950 + pad) + "<https://a.example/" + "y" * 80 + "|label>"
        capped = cap(text)
        assert len(capped) <= SECTION_CHARS and re.fullmatch(r"x+…", capped)
    assert cap("short &amp; <https://a|b>") == "short &amp; <https://a|b>"


def test_big_digest_ends_with_and_n_more_within_50_blocks(slack: FakeSlack):
    items = [
        {
            "title": f"Story {n} " + "&" * 150,
            "link": f"https://news.example/{n}?" + "a=1&" * 200,
            "source": "Example",
        }
        for n in range(400)
    ]
    body = format_message(DIGEST, {"items": items})
    blocks = body["blocks"]
    assert len(blocks) == MAX_BLOCKS
    last = blocks[-1]["text"]["text"]
    listed = sum(t.count("• ") for t in _texts(body)[1:-1])
    assert re.fullmatch(r"…and \d+ more", last)
    assert listed + int(last.split()[1]) == 400  # nobody silently left out
    # Sections are filled: all but the last listing one hold most of 3000 chars.
    assert all(len(t) > SECTION_CHARS - 1000 for t in _texts(body)[1:-2])
    SlackSink("xoxb-test", slack.api_url).send(CHANNEL, DIGEST, {"items": items}, 9)
    assert len(slack.posts(CHANNEL)) == 1
    # A digest that fits lists everything, with no note.
    small = format_message(DIGEST, {"items": items[:5]})
    assert sum(t.count("• ") for t in _texts(small)) == 5 and "more" not in _texts(small)[-1]


def test_fake_slack_rejects_oversized_blocks(slack: FakeSlack):
    client = SlackSink("xoxb-test", slack.api_url).client
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    too_many = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 51
    for blocks in (too_long, too_many):
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)
        assert caught.value.response["error"] == "invalid_blocks"


def _texts(message: dict) -> list[str]:
    texts = []
    for block in message["blocks"]:
        for t in [block.get("text"), *block.get("elements", [])]:
            if t:
                texts.append(t["text"])
    return texts
