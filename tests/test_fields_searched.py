"""SPEC §3 "Fields searched", end to end: loopback feeds -> `newshound poll --once`
-> console sink. Title, summary/content (HTML removed, entities decoded) and
categories are searched; URLs and markup never are, whichever element they
came from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedserver import FeedServer

CHANNEL = "C0FIELDS001"
WHEN = datetime.now(UTC) - timedelta(hours=1)
RFC822 = format_datetime(WHEN, usegmt=True)
RFC3339 = WHEN.isoformat().replace("+00:00", "Z")
ATOM = "application/atom+xml; charset=utf-8"


@dataclass(frozen=True)
class Alert:
    title: str
    link: str
    matched: tuple[str, ...]
    snippet: str


def alerts(out: str) -> list[Alert]:
    """The alert blocks the console sink printed."""
    found = []
    for block in re.split(r"^== alert -> .*$", out, flags=re.MULTILINE)[1:]:
        lines = block.strip("\n").splitlines()
        fields = dict(line.strip().split(": ", 1) for line in lines[1:5])
        after = lines[5] if len(lines) > 5 else ""
        found.append(
            Alert(
                title=lines[0],
                link=fields["link"].strip(),
                matched=tuple(fields["matched"].strip().split(", ")),
                snippet=after.strip() if after.startswith("  ") else "",
            )
        )
    return found


@pytest.fixture
def poll(db_url: str, tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch):
    """`poll(paths, terms)` runs one `poll --once --all` over the given feed paths."""
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    config, db = tmp_path / "feeds.yaml", db_url

    def run(paths: list[str], terms: list[str]) -> list[Alert]:
        write_config(
            config,
            [feed_server.url(p) for p in paths],
            [{"channel": CHANNEL, "terms": terms}],
            max_alerts_per_poll=100,
        )
        result = run_cli("--config", str(config), "--db", str(db), "poll", "--once", "--all")
        assert result.code == 0, result.err
        assert "(0 failed)" in result.out, result.out
        return alerts(result.out)

    return run


def assert_plain(alert: Alert) -> None:
    for markup in ("<", ">", "href", "&nbsp", "&amp;", "https://", "www."):
        assert markup not in alert.snippet, alert


def rss_doc(*items: str, title: str = "Wire") -> str:
    """An RSS 2.0 document (with the content: namespace) around `items`."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{title}</title><link>https://ex.org/</link><description>d</description>\n"
        + "\n".join(f"<item>{item}<pubDate>{RFC822}</pubDate></item>" for item in items)
        + "\n</channel></rss>"
    )


def atom_doc(*entries: str, title: str = "Atom Wire") -> str:
    """An Atom 1.0 document around `entries` (each gets an <updated>)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{title}</title><id>urn:{title}</id><updated>{RFC3339}</updated>\n"
        + "\n".join(f"<entry>{entry}<updated>{RFC3339}</updated></entry>" for entry in entries)
        + "\n</feed>"
    )


def test_content_only_entries_are_searched_as_plain_text(feed_server: FeedServer, poll) -> None:
    # No <summary>/<description>: feedparser hands the raw content markup over
    # as the summary. None of tariff/href/nbsp/strong is in the visible text.
    atom_html = (
        '<title>Markets wrap</title><id>urn:w:1</id><link href="https://ex.org/story1"/>'
        '<content type="html">&lt;p&gt;Stocks rose &amp;nbsp;today. '
        '&lt;a href="https://ex.org/tags/tariff"&gt;More&lt;/a&gt;&lt;/p&gt;</content>'
    )
    atom_xhtml = (
        '<title>Bonds wrap</title><id>urn:w:2</id><link href="https://ex.org/story2"/>'
        '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Stocks '
        '<strong>fell</strong> <a href="https://ex.org/tariff">sharply</a>&#160;again</p>'
        "</div></content>"
    )
    rss_encoded = (
        "<title>Content only</title><link>https://ex.org/u3</link><content:encoded><![CDATA["
        '<p>Stocks <strong>x</strong> <a href="https://ex.org/tariff">y</a>&nbsp;z</p>'
        "]]></content:encoded>"
    )
    feed_server.set("/atom.xml", atom_doc(atom_html, atom_xhtml), content_type=ATOM)
    feed_server.set("/rss.xml", rss_doc(rss_encoded))

    found = poll(["/atom.xml", "/rss.xml"], ["tariff", "href", "nbsp", "strong", "stocks"])
    assert sorted(a.title for a in found) == ["Bonds wrap", "Content only", "Markets wrap"]
    for alert in found:
        assert alert.matched == ("stocks",), alert
        assert_plain(alert)
    snippets = {a.title: a.snippet for a in found}
    assert snippets["Markets wrap"] == "**Stocks** rose today. More"
    assert snippets["Bonds wrap"] == "**Stocks** fell sharply again"
    assert snippets["Content only"] == "**Stocks** x y z"


def test_urls_and_double_escaped_markup_in_text_are_not_searched(
    feed_server: FeedServer, poll
) -> None:
    url_in_text = (
        "<title>Markets at www.tariff-watch.example/today</title><link>https://ex.org/u1</link>"
        "<description>Read more at https://example.org/tariff-news today</description>"
    )
    double_escaped = (
        "<title>Markets double-escaped</title><link>https://ex.org/u2</link><description>"
        "&amp;lt;a href=&amp;quot;https://ex.org/x&amp;quot;&amp;gt;Story "
        "&amp;lt;strong&amp;gt;here&amp;lt;/strong&amp;gt;&amp;lt;/a&amp;gt;</description>"
    )
    feed_server.set("/text.xml", rss_doc(url_in_text, double_escaped))

    found = poll(["/text.xml"], ["tariff", "href", "strong", "quot", "markets"])
    by_title = {a.title: a for a in found}
    assert sorted(by_title) == ["Markets at", "Markets double-escaped"]
    for alert in found:
        assert alert.matched == ("markets",), alert
        assert_plain(alert)
    assert by_title["Markets at"].snippet == "Read more at today"
    assert by_title["Markets double-escaped"].snippet == "Story here"


def test_atom_categories_search_the_label_never_a_url_term(feed_server: FeedServer, poll) -> None:
    entries = [
        '<title>Category one</title><id>urn:q:1</id><link href="https://ex.org/q1"/>'
        '<category term="https://ex.org/topics/tariff" label="Economy"/>',
        '<title>Category two</title><id>urn:q:2</id><link href="https://ex.org/q2"/>'
        '<category term="https://ex.org/topics/x" label="Trade"/>',
        '<title>Category three</title><id>urn:q:3</id><link href="https://ex.org/q3"/>'
        '<category term="https://ex.org/topics/chips"/><category term="Semis"/>',
    ]
    feed_server.set("/cats.xml", atom_doc(*entries), content_type=ATOM)

    found = poll(["/cats.xml"], ["tariff", "trade", "economy", "chips", "semis"])
    assert {a.title: a.matched for a in found} == {
        "Category one": ("economy",),
        "Category two": ("trade",),
        "Category three": ("semis",),
    }


def test_non_url_guid_is_no_link_and_a_changed_guid_does_not_alert_again(
    feed_server: FeedServer, poll
) -> None:
    def feed(guid: str) -> str:
        return rss_doc(
            f"<title>Tariff talks resume</title><guid>{guid}</guid>"
            "<description>Same body text.</description>",
            "<title>Tariff permalink</title><guid>https://ex.org/perma/1</guid>",
            title="No-link feed",
        )

    # Before the fix the first item's link was made up from the feed URL
    # (http://127.0.0.1:PORT/feeds/story-000123), and a new GUID alerted again.
    feed_server.set("/feeds/rss.xml", feed("story-000123"))
    found = poll(["/feeds/rss.xml"], ["tariff"])
    assert {a.title: a.link for a in found} == {
        "Tariff talks resume": "(no link)",
        "Tariff permalink": "https://ex.org/perma/1",
    }

    feed_server.set("/feeds/rss.xml", feed("story-000123-v2"))
    assert poll(["/feeds/rss.xml"], ["tariff"]) == []


def test_double_escaped_ampersand_in_an_atom_href_is_the_same_story(
    feed_server: FeedServer, poll
) -> None:
    atom_entry = (
        "<title>Tariff story</title><id>urn:a:1</id>"
        '<link href="https://ex.org/s?id=1&amp;amp;utm_source=atom"/>'
    )
    rss_item = "<title>Tariff story</title><link>https://ex.org/s?id=1</link>"
    feed_server.set("/a.xml", atom_doc(atom_entry, title="Atom A"), content_type=ATOM)
    feed_server.set("/b.xml", rss_doc(rss_item, title="RSS B"))

    found = poll(["/a.xml"], ["tariff"])
    assert [a.link for a in found] == ["https://ex.org/s?id=1&utm_source=atom"]
    assert poll(["/a.xml", "/b.xml"], ["tariff"]) == []  # same story: no second alert
