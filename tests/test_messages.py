"""bot/messages.py: neutral payloads and time formatting."""

from __future__ import annotations

import pytest

from bot.messages import digest_payload, format_time


def entry(url: str, feed_title: str | None) -> dict[str, object]:
    return {
        "title": "Story",
        "link": "https://news.example/1",
        "feed_title": feed_title,
        "feed_url": url,
        "terms": '["tariff"]',
    }


def test_digest_sources_use_the_configured_name_then_title_then_host() -> None:
    entries = [
        entry("https://a.example/rss", "Own Title"),
        entry("https://b.example/rss", "B Title"),
        entry("https://c.example/feed.xml", None),
    ]
    payload = digest_payload(entries, {"https://a.example/rss": "Configured"})
    assert [i["source"] for i in payload["items"]] == ["Configured", "B Title", "c.example"]
    assert payload["items"][0]["terms"] == ["tariff"]
    assert digest_payload(entries)["items"][0]["source"] == "Own Title"


def test_digest_names_the_publisher_an_aggregator_named() -> None:
    aggregated = {**entry("https://news.google.com/rss/search?q=x", "Google News")}
    aggregated["source_name"] = "Reuters"
    payload = digest_payload([aggregated], {"https://news.google.com/rss/search?q=x": "GN"})
    assert payload["items"][0]["source"] == "Reuters"


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (None, "undated"),
        (0, "1970-01-01 00:00 UTC"),
        (1_900_000_000, "2030-03-17 17:46 UTC"),
        (1e300, "far in the future"),
        (-1e300, "long ago"),
    ],
)
def test_format_time(epoch: float | None, text: str) -> None:
    assert format_time(epoch) == text
