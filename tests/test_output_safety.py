"""No feed markup reaches Slack or Discord as markup (SPEC §4, §6)."""

from __future__ import annotations

import json
import re

from bot.match import Span
from bot.messages import ALERT, DIGEST, NOTICE, SNIPPET_CHARS, TITLE_CHARS, alert_payload
from bot.models import Item
from bot.parse import parse_feed
from bot.sinks import discord, slack

EVIL_TITLE = (
    "**bold** <!channel> <@U123> @everyone @here <https://evil.example|click> "
    "[x](https://evil.example) `code` ~strike~ _it_ > quote \x07\x1b[31m\u202eevil" * 30
)
EVIL_LINK = "https://ok.example/a) [evil](https://evil.example/b"
EVIL_SUMMARY = "<script>alert(1)</script><b>trade deal</b> &lt;!here&gt; " * 100


def evil_feed() -> bytes:
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>{escape(EVIL_TITLE)}</title><link>{escape(EVIL_LINK)}</link>"
        f"<description>{escape(EVIL_SUMMARY)}</description></item></channel></rss>"
    ).encode()


def payload() -> dict[str, object]:
    item = parse_feed(evil_feed(), url="https://feed.example/").items[0]
    return alert_payload(item, "<!channel> Source *x*", ["trade deal"], [])


def test_parsed_item_is_plain_capped_text() -> None:
    item = parse_feed(evil_feed(), url="https://feed.example/").items[0]
    assert len(item.title) <= 500
    assert not re.search(r"[\x00-\x1f\x7f\u202e]", item.title + item.summary)
    assert "<script" not in item.summary and "alert(1)" not in item.summary
    p = alert_payload(item, "src", ["trade deal"], [Span("summary", 0, 5)])
    assert len(str(p["title"])) <= TITLE_CHARS
    assert sum(len(t) for t, _ in p["snippet"]) <= SNIPPET_CHARS + 1  # type: ignore[attr-defined]


def _slack_texts(message: dict[str, object]) -> list[str]:
    texts = [str(message["text"])]
    for block in message["blocks"]:  # type: ignore[attr-defined]
        if "text" in block:
            texts.append(block["text"]["text"])
        for element in block.get("elements", []):
            texts.append(element["text"])
    return texts


def test_slack_alert_has_no_feed_controlled_markup() -> None:
    message = slack.format_message(ALERT, payload())
    for text in _slack_texts(message):
        assert "<!" not in text and "<@" not in text
        # The only angle-bracket construct is our own title link.
        for link in re.findall(r"<([^>]*)>", text):
            url, _, _label = link.partition("|")
            assert url.startswith("https://ok.example/a")
            assert " " not in url and "<" not in url  # "|" / ">" would end it early
    assert "*bold*" not in json.dumps(message)


def test_slack_notice_and_digest_escaped() -> None:
    notice = slack.format_message(NOTICE, {"text": "feed <!channel> failed *x*"})
    assert "<!channel>" not in json.dumps(notice)
    digest = slack.format_message(
        DIGEST, {"items": [{"title": "<@U1> *b*", "link": EVIL_LINK, "source": "<!here>"}]}
    )
    dumped = json.dumps(digest)
    assert "<@U1>" not in dumped and "<!here>" not in dumped


def test_discord_alert_has_no_feed_controlled_markup() -> None:
    body = discord.format_message(ALERT, payload())
    assert body["allowed_mentions"] == {"parse": []}
    embed = body["embeds"][0]
    for field in (embed["title"], embed["description"]):
        assert "@everyone" not in field and "@here" not in field
        assert "](http" not in field
        assert not re.search(r"(?<!\\)\*\*bold", field)
    assert len(embed["title"]) <= 256
    assert "(" not in embed.get("url", "") and " " not in embed.get("url", "")


def test_discord_digest_link_cannot_break_out() -> None:
    body = discord.format_message(
        DIGEST, {"items": [{"title": "**x** @everyone", "link": EVIL_LINK, "source": "s"}]}
    )
    description = body["embeds"][0]["description"]
    # Exactly one markdown link: ours. The feed's ")" cannot end it early.
    assert len(re.findall(r"\]\(", description)) == 1
    assert "evil.example" not in description.split("](", 1)[0]
    assert re.fullmatch(r"• \[.*\]\(https://ok\.example/[^()\s]*\)", description)
    assert "@everyone" not in description


def test_discord_notice_escaped() -> None:
    body = discord.format_message(NOTICE, {"text": "feed @everyone **x**"})
    assert "@everyone" not in body["embeds"][0]["description"]
    assert body["allowed_mentions"] == {"parse": []}


def test_item_defaults_are_plain() -> None:
    assert Item(title="x").summary == ""
