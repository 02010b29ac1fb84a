"""Slack sink against fake Slack over real HTTP: what each answer means."""

from __future__ import annotations

import pytest
from fakeslack import FakeSlack, Fault

from bot.messages import ALERT
from bot.sinks.base import DeliveryError
from bot.sinks.slack import HISTORY_GATE, METADATA_EVENT, POST_GATE, SlackSink

PAYLOAD = {
    "title": "Tariff <!channel> story",
    "link": "https://news.example/1",
    "source": "Example",
    "published": 1_760_000_000.0,
    "terms": ["tariff"],
    "snippet": [["about ", False], ["tariff", True]],
}
CHANNEL = "C0AAAAAAAA1"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


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


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "is_archived", "invalid_auth"]
)
def test_permanent_errors(slack: FakeSlack, error: str):
    exc = send_error(slack, Fault(error=error))
    assert exc.permanent and exc.message == error


def test_429_gives_fractional_retry_after_for_the_method(slack: FakeSlack):
    exc = send_error(slack, Fault(status=429, error="ratelimited", retry_after=0.25))
    assert exc.retry_after == 0.25 and exc.gate_key == POST_GATE and not exc.permanent


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
