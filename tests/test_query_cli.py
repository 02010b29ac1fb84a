"""End-to-end: the query language (SPEC §3) through the real command line.

Terms come from feeds.yaml and from `newshound watch add`; items come from a
loopback feed server; `newshound poll --once --all` prints the alerts (console
sink, no Slack token). One feed holds every case of the audit's "Repro Q"
that belongs to the query language: English plurals, soft hyphens, ZWNJ,
letters without a Unicode decomposition and French elision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import run_cli, write_config
from feedgen import FeedEntry, atom, rss
from feedserver import FeedServer

CHANNEL = "C0QUERY0001"
PERSIAN = "می\u200cخواهد"  # "wants", with the ZWNJ Persian spelling requires
NOW = datetime.now(UTC)

# (title, summary) -> the terms that must match it; an empty set: no alert.
CASES: list[tuple[str, str, set[str]]] = [
    ("[1] Company uses new chips", "", set()),
    ("[2] Interest rates rise again", "", set()),
    ("[3] Dow Jones closes higher", "", set()),
    ("[4] Financial Times report", "", set()),
    ("[5] Semiconductor demand steady as rates hold", "", {"semiconductor -rat"}),
    ("[6] New ta\u00adriff on steel", "", {"tariff"}),
    ("[7] Plant opens in Łódź", "", {"lodz"}),
    ("[8] København summit", "", {"kobenhavn"}),
    ("[9] Đoković wins", "", {"djokovic"}),
    ("[10] Diyarbakır bazaar", "", {"diyarbakir"}),
    ("[11] Une Œuvre majeure", "", {"oeuvre"}),
    ("[12] Aide à l’Ukraine", "L’aide à l’Ukraine continue.", {"Ukraine"}),
    (f"[13] دولت {PERSIAN}", "", {PERSIAN}),
    ("[14] Weekly wrap", "<p>New <b>ta&shy;riffs</b> and L’OTAN’s reply</p>", {"tariff", "OTAN"}),
    ("[15] Soutien d’Israël", "", {"Israel"}),
    ("[16] Heroes, vetoes and taxes", "", {"veto", "tax"}),
    ("[17] Policies of companies", "", {"policy"}),
    ("[18] Lab rats and US’s chips", "", {"rat", "US"}),
]
CONFIG_TERMS = [
    "US",
    "rat",
    "Jon",
    "tim",
    "semiconductor -rat",
    "tariff",
    "lodz",
    "kobenhavn",
    "djokovic",
    "diyarbakir",
    "oeuvre",
    "Ukraine",
    "OTAN",
    "Israel",
    "veto",
    "tax",
    "policy",
]


def visible(text: str) -> str:
    """`text` without the invisible characters feed cleaning may remove."""
    return re.sub("[\u00ad\u200b-\u200f]", "", text)


def alerts(output: str) -> dict[str, set[str]]:
    """{title: matched terms} of every console alert block."""
    found: dict[str, set[str]] = {}
    for block in output.split("== alert -> ")[1:]:
        lines = block.splitlines()
        matched = next(line for line in lines if line.startswith("  matched: "))
        found[lines[1]] = set(matched.removeprefix("  matched: ").split(", "))
    return found


@pytest.fixture
def common(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return ("--config", str(tmp_path / "feeds.yaml"), "--db", db_url)


@pytest.mark.parametrize("make_feed", [atom, rss])
def test_repro_q_through_the_cli(
    feed_server: FeedServer,
    tmp_path: Path,
    common: tuple[str, ...],
    make_feed: Callable[..., bytes],
) -> None:
    entries = [
        FeedEntry(
            title=title,
            link=f"https://ex.org/q{index}",
            summary=summary,
            published=NOW - timedelta(minutes=index),
        )
        for index, (title, summary, _) in enumerate(CASES, start=1)
    ]
    feed_server.set("/qlang.xml", make_feed(entries, title="Q"))
    write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/qlang.xml")],
        [{"channel": CHANNEL, "terms": CONFIG_TERMS}],
        max_age=0,
        max_alerts_per_poll=100,
    )
    # The Persian term goes through `watch add`: it stays one word, as in the feed.
    added = run_cli(*common, "watch", "add", "--channel", CHANNEL, PERSIAN)
    assert added.code == 0, added.err
    assert "phrase" not in added.out and "میخواهد" in added.out

    result = run_cli(*common, "poll", "--once", "--all")
    assert result.code == 0, result.err
    got = {visible(title): set(map(visible, terms)) for title, terms in alerts(result.out).items()}
    assert got == {visible(title): set(map(visible, terms)) for title, _, terms in CASES if terms}
    # Snippets (of the summary) bold exactly the matched words.
    assert "L’aide à l’**Ukraine** continue." in result.out
    assert re.search("\\*\\*ta\u00ad?riffs\\*\\*", result.out)
    assert "L’**OTAN’s**" in result.out


def test_watch_add_shows_the_forms_a_term_matches(common: tuple[str, ...], tmp_path: Path) -> None:
    write_config(tmp_path / "feeds.yaml", [], [])
    for term, shown in [
        ("rat", "*rat* (also: rats)"),
        ("tax", "*tax* (also: taxes)"),
        ("veto", "*veto* (also: vetos, vetoes)"),
        ("l’Ukraine", "*l ukraine*"),
        ("Łódź", "*lodz*"),
    ]:
        result = run_cli(*common, "watch", "add", "--channel", CHANNEL, term)
        assert result.code == 0, result.err
        assert shown.replace("*", "") in result.out.replace("*", "")


# SPEC §3 acronyms, symbols, word forms and boilerplate: (title, summary) -> terms.
HN_FOOTER = (
    '<p>Article URL: <a href="https://example.org/pg">https://example.org/pg</a></p>'
    '<p>Comments URL: <a href="https://news.ycombinator.com/item?id=7">'
    "https://news.ycombinator.com/item?id=7</a></p><p>Points: 512</p><p># Comments: 230</p>"
)
NAME_CASES: list[tuple[str, str, set[str]]] = [
    ("[1] Lumber duties to double", "Washington raised U.S. duties on lumber.", {"US"}),
    ("[2] Let us know what you think", "Write to us below.", set()),
    ("[3] AT&T to sell DirecTV stake", "", {"AT&T"}),
    ("[4] Fans line up at T-Mobile Park", "", set()),
    ("[5] C++ 26 adds reflection", "", {"C++"}),
    ("[6] Vitamin C may not prevent colds", "", set()),
    ("[7] G-7 leaders meet in Italy", "", {"G7"}),
    ("[8] Postgres 18 released", HN_FOOTER, set()),
    ("[9] 반도체가 수출을 이끌었다", "", {"반도체"}),
    ("[10] IT outage grounds flights", "It rained, too.", {"IT"}),
    ("[11] It rained all weekend", "Its rivers rose.", set()),
]
NAME_TERMS = ["US", "AT&T", "C++", "G7", "comments", "반도체", "IT"]


def test_acronyms_symbols_and_boilerplate_through_the_cli(
    feed_server: FeedServer, tmp_path: Path, common: tuple[str, ...]
) -> None:
    entries = [
        FeedEntry(
            title=title,
            link=f"https://ex.org/n{index}",
            summary=summary,
            published=NOW - timedelta(minutes=index),
        )
        for index, (title, summary, _) in enumerate(NAME_CASES, start=1)
    ]
    feed_server.set("/names.xml", rss(entries, title="Names"))
    write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/names.xml")],
        [{"channel": CHANNEL, "terms": NAME_TERMS}],
        max_age=0,
        max_alerts_per_poll=100,
    )
    added = run_cli(*common, "watch", "add", "--channel", CHANNEL, "E.U. OR UK")
    assert added.code == 0, added.err
    assert "Acronyms (matched only where a story writes them in capitals): EU, UK." in added.out
    dotted = run_cli(*common, "watch", "test", "--channel", CHANNEL, "u.s. duties")
    assert dotted.code == 0, dotted.err
    assert "Acronyms (matched only where a story writes them in capitals): US." in dotted.out
    refused = run_cli(*common, "watch", "add", "--channel", CHANNEL, "C")
    assert refused.code == 2
    assert "single letter" in refused.err

    result = run_cli(*common, "poll", "--once", "--all")
    assert result.code == 0, result.err
    assert alerts(result.out) == {title: terms for title, _, terms in NAME_CASES if terms}
    assert "Washington raised **U.S.** duties on lumber." in result.out
    assert "Points" not in result.out and "Comments URL" not in result.out
