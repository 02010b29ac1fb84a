"""feeds.yaml parsing and validation (bot.config) and durations (bot.durations)."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from pathlib import Path

import pytest

from bot.config import (
    DURATION_LIMITS,
    NUMBER_LIMITS,
    Config,
    ConfigError,
    FeedConfig,
    Problem,
    Settings,
    WatchConfig,
    config_warnings,
    empty_config,
    feed_url_key,
    load_config,
    parse_config,
)
from bot.durations import format_duration, parse_duration

README = Path(__file__).resolve().parent.parent / "README.md"

FILE = "feeds.yaml"

SPEC_EXAMPLE = """\
settings:
  interval: 10m          # default poll interval per feed (min 1m)
  max_age: 2d            # items published earlier are never alerted; 0 = no limit
  max_alerts_per_poll: 10  # per channel per cycle; the rest go into one digest message
  allow_networks: []     # private/loopback CIDRs the fetcher may reach (default: none)
  managers: []           # Slack user IDs allowed to change terms; empty = everyone
  fetch_timeout: 20s     # overall deadline per feed fetch
  max_body_mb: 10        # body cap, counted after decompression
  max_items_per_feed: 500
feeds:
  - url: https://example.org/world/rss.xml
    name: Example World      # optional, defaults to the feed's own title
    interval: 5m             # optional override
    tags: [india]            # optional
watches:
  - channel: C0123456789     # Slack channel ID
    terms: ["trade deal", "Pax Silica", tariff]
    feeds: [india]           # optional: feed names, URLs or tags; default all feeds
  - channel: discord:https://discord.com/api/webhooks/ID/TOKEN
    terms: [semiconductor -rumor]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), FILE)
    return [str(p) for p in info.value.problems]


def parse(text: str) -> Config:
    return parse_config(textwrap.dedent(text), FILE)


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1d2h3m4s", 93784.0),
        ("1.5h", 5400.0),
        ("10 minutes", 600.0),
        ("2 hours", 7200.0),
        ("1w", 604800.0),
        (" 5M ", 300.0),
        ("0", 0.0),
        ("0s", 0.0),
        (0, 0.0),
        (0.0, 0.0),
    ],
)
def test_parse_duration_accepts(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a duration cannot be empty"),
        ("   ", "a duration cannot be empty"),
        ("10", '"10" has no unit'),
        (600, '"600" has no unit'),
        ("-5m", "a duration cannot be negative"),
        (-1, "a duration cannot be negative"),
        ("5x", '"5x" is not a valid duration'),
        ("m", '"m" is not a valid duration'),
        ("5m garbage", '"5m garbage" is not a valid duration'),
        ("1h1h", '"1h1h" is not a valid duration: a unit appears twice'),
        ("5mm", '"5mm" is not a valid duration'),
        (True, '"True" is not a duration'),
        (float("nan"), '"nan" is not a duration'),
    ],
)
def test_parse_duration_rejects(text: str | int | float, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (600, "10m"),
        (5400, "1h30m"),
        (90, "1m30s"),
        (86400, "1d"),
        (172800, "2d"),
        (93784, "1d2h3m4s"),
        (0.5, "500ms"),
        (1.25, "1s250ms"),
        (-60, "-1m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3599, 3600, 86399, 90061, 0.001, 2592000])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


# --------------------------------------------------------------------------- valid configs


def test_spec_example_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    config = load_config(path)
    assert config == Config(
        path=str(path),
        settings=Settings(
            interval=600.0,
            max_age=172800.0,
            max_alerts_per_poll=10,
            allow_networks=(),
            managers=(),
            fetch_timeout=20.0,
            max_body_mb=10.0,
            max_items_per_feed=500,
        ),
        feeds=(
            FeedConfig(
                url="https://example.org/world/rss.xml",
                name="Example World",
                interval=300.0,
                tags=("india",),
                line=11,
            ),
        ),
        watches=(
            WatchConfig(
                channel="C0123456789",
                terms=("trade deal", "Pax Silica", "tariff"),
                feeds=("india",),
                line=16,
            ),
            WatchConfig(
                channel="discord:https://discord.com/api/webhooks/ID/TOKEN",
                terms=("semiconductor -rumor",),
                feeds=(),
                line=19,
            ),
        ),
    )
    assert config.channels() == (
        "C0123456789",
        "discord:https://discord.com/api/webhooks/ID/TOKEN",
    )
    assert config.feeds_for_watch(config.watches[0]) == config.feeds
    assert config.feeds_for_watch(config.watches[1]) == config.feeds
    assert config_warnings(config, {}) == []


def test_all_settings() -> None:
    config = parse(
        """\
        settings:
          interval: 1h30m
          max_age: 0
          max_alerts_per_poll: 3
          allow_networks: [127.0.0.0/8, "::1", 10.1.2.3/8]
          managers: [U0123456789, W0123456789]
          fetch_timeout: 5s
          max_body_mb: 0.5
          max_items_per_feed: 50
          send_interval: 0
          retention: 7d
          failure_threshold: 3
          parse_timeout: 5s
        """
    )
    assert config.settings == Settings(
        interval=5400.0,
        max_age=0.0,
        max_alerts_per_poll=3,
        allow_networks=(
            ipaddress.ip_network("127.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
            ipaddress.ip_network("10.0.0.0/8"),
        ),
        managers=("U0123456789", "W0123456789"),
        fetch_timeout=5.0,
        max_body_mb=0.5,
        max_items_per_feed=50,
        send_interval=0.0,
        retention=7 * 86400.0,
        failure_threshold=3,
        parse_timeout=5.0,
    )
    assert config.feeds == ()
    assert config.watches == ()


@pytest.mark.parametrize(
    "text", ["", "\n", "# nothing yet\n", "---\n", "settings:\nfeeds:\nwatches:\n"]
)
def test_empty_file_is_an_empty_config(text: str) -> None:
    assert parse_config(text, FILE) == empty_config(FILE)


def test_empty_config_defaults(tmp_path: Path) -> None:
    config = empty_config(tmp_path / "x.yaml")
    assert config.path == str(tmp_path / "x.yaml")
    assert config.settings == Settings()
    assert config.feeds == () and config.watches == () and config.channels() == ()


def test_feed_forms_and_optional_fields() -> None:
    config = parse(
        """\
        feeds:
          - https://a.example/rss
          - url: http://b.example/feed.json
            name: "  B   News "
            tags: [Trade, trade, India]
          - {url: "https://c.example/atom", name: null, interval: ~, tags: []}
        """
    )
    assert config.feeds == (
        FeedConfig(url="https://a.example/rss", name=None, interval=None, tags=(), line=2),
        FeedConfig(
            url="http://b.example/feed.json",
            name="B News",
            interval=None,
            tags=("Trade", "India"),
            line=3,
        ),
        FeedConfig(url="https://c.example/atom", name=None, interval=None, tags=(), line=6),
    )


def test_feeds_for_watch_selectors() -> None:
    config = parse(
        """\
        feeds:
          - url: https://a.example/rss
            name: Alpha
            tags: [india]
          - url: https://b.example/rss
            tags: [India, trade]
          - url: https://c.example/rss
        watches:
          - channel: C0123456789
            terms: [tariff]
            feeds: [alpha]
          - channel: C0123456789
            terms: [yen]
            feeds: [INDIA]
          - channel: G0123456789
            terms: [zinc]
            feeds: ["HTTPS://C.example/rss/", trade]
          - channel: D0123456789
            terms: [wheat]
        """
    )
    a, b, c = config.feeds
    w1, w2, w3, w4 = config.watches
    assert config.feeds_for_watch(w1) == (a,)
    assert config.feeds_for_watch(w2) == (a, b)
    assert config.feeds_for_watch(w3) == (b, c)
    assert config.feeds_for_watch(w4) == (a, b, c)
    assert config.channels() == ("C0123456789", "G0123456789", "D0123456789")
    # A feed without a configured name is known by the title it publishes.
    selector = WatchConfig(channel="C0123456789", terms=("x",), feeds=("Gamma Daily",), line=1)
    assert config.feeds_for_watch(selector) == ()
    assert config.feeds_for_watch(selector, {"https://c.example/rss": "Gamma  daily"}) == (c,)
    # ...but a configured name wins over the published title.
    alpha_title = WatchConfig(channel="C0123456789", terms=("x",), feeds=("Alpha Wire",), line=1)
    assert config.feeds_for_watch(alpha_title, {"https://a.example/rss": "Alpha Wire"}) == ()


def test_feed_url_key() -> None:
    assert feed_url_key("HTTPS://Example.ORG/News/") == "https://example.org/News"
    assert feed_url_key("https://example.org/rss?a=1") == "https://example.org/rss?a=1"
    assert feed_url_key("https://example.org/") == feed_url_key("https://example.org")


def test_discord_env_channel_loads_and_warns_when_unset() -> None:
    config = parse(
        """\
        watches:
          - channel: discord:$TRADE_WEBHOOK
            terms: [tariff]
          - channel: discord:$TRADE_WEBHOOK
            terms: [trade]
          - channel: discord:$OTHER_HOOK
            terms: [tariff]
        """
    )
    assert config.watches[0].channel == "discord:$TRADE_WEBHOOK"
    warnings = [str(w) for w in config_warnings(config, {})]
    assert warnings == [
        "feeds.yaml:2: environment variable TRADE_WEBHOOK is not set, so alerts for "
        "discord:$TRADE_WEBHOOK cannot be sent until it is",
        "feeds.yaml:6: environment variable OTHER_HOOK is not set, so alerts for "
        "discord:$OTHER_HOOK cannot be sent until it is",
    ]
    env = {
        "TRADE_WEBHOOK": "https://discord.com/api/webhooks/1/SECRET",
        "OTHER_HOOK": "ftp://SECRET@x",
    }
    warnings = [str(w) for w in config_warnings(config, env)]
    assert warnings == [
        "feeds.yaml:6: environment variable OTHER_HOOK: the Discord webhook URL must start "
        "with https:// (or http://)"
    ]
    assert "SECRET" not in "".join(warnings)


def test_discord_channel_ids_load_and_warn_without_a_bot_token() -> None:
    config = parse(
        """\
        settings:
          managers: [U0123456789, "80351110224678912"]
        watches:
          - channel: "discord:1234567890123456789"
            terms: [tariff]
          - channel: "discord:1234567890123456780"
            terms: [trade]
        """
    )
    assert config.settings.managers == ("U0123456789", "80351110224678912")
    assert config.watches[0].channel == "discord:1234567890123456789"
    assert [str(w) for w in config_warnings(config, {})] == [
        "feeds.yaml:4: DISCORD_BOT_TOKEN is not set, so alerts for "
        "discord:1234567890123456789 cannot be sent until it is"
    ]
    assert config_warnings(config, {"DISCORD_BOT_TOKEN": "t"}) == []


# --------------------------------------------------------------------------- problems

# (case id, config text, expected "LINE: message" prefixes, exactly these, in order)
PROBLEM_CASES: list[tuple[str, str, list[str]]] = [
    (
        "unknown top-level key",
        """\
        settings: {}
        feed:
          - https://a.example/rss
        """,
        [
            '2: unknown key "feed" in the config (did you mean "feeds"?); '
            "allowed keys: settings, feeds, watches"
        ],
    ),
    (
        "unknown settings key",
        """\
        settings:
          interval: 10m
          colour: blue
        """,
        ['3: unknown key "colour" in settings; allowed keys: interval, max_age, '],
    ),
    (
        "unknown feed key",
        """\
        feeds:
          - url: https://a.example/rss
            title: A
        """,
        ['3: unknown key "title" in this feed; allowed keys: url, name, interval, tags'],
    ),
    (
        "unknown watch key",
        """\
        watches:
          - channel: C0123456789
            term: [x]
        """,
        [
            "2: watch has no terms",
            '3: unknown key "term" in this watch (did you mean "terms"?); '
            "allowed keys: channel, terms, feeds",
        ],
    ),
    (
        "duplicate key",
        """\
        settings:
          interval: 10m
          max_age: 1d
          interval: 20m
        """,
        ['4: duplicate key "interval" in settings (first given on line 2)'],
    ),
    (
        "top level is not a mapping",
        """\
        - https://a.example/rss
        """,
        ["1: the config must be made of the sections settings:, feeds: and watches:, not a list"],
    ),
    (
        "settings not a mapping",
        """\
        settings: [interval]
        """,
        ["1: settings must be a set of key: value pairs (like interval: 10m), not a list"],
    ),
    (
        "feeds not a list",
        """\
        feeds: https://a.example/rss
        """,
        ["1: feeds must be a list (each entry starting with - url: https://…), not the text"],
    ),
    (
        "bad duration",
        """\
        settings:
          max_age: 2 days ago
        """,
        ['2: max_age: "2 days ago" is not a valid duration; use a number with a unit'],
    ),
    (
        "duration without unit",
        """\
        settings:
          fetch_timeout: 20
        """,
        ['2: fetch_timeout: "20" has no unit; use a number with a unit, e.g. 30s'],
    ),
    (
        "duration of the wrong type",
        """\
        settings:
          interval: [10m]
        """,
        ["2: interval must be a duration like 30s, 10m, 2h or 1d, not a list"],
    ),
    (
        "interval below one minute",
        """\
        settings:
          interval: 30s
        """,
        ["2: interval must be at least 1m (got 30s)"],
    ),
    (
        "feed interval below one minute",
        """\
        feeds:
          - url: https://a.example/rss
            interval: 59s
        """,
        ["3: feed interval must be at least 1m (got 59s)"],
    ),
    (
        "zero fetch timeout",
        """\
        settings:
          fetch_timeout: 0s
        """,
        ["2: fetch_timeout must be more than 0s"],
    ),
    (
        "zero parse timeout",
        """\
        settings:
          parse_timeout: 0s
        """,
        ["2: parse_timeout must be more than 0s"],
    ),
    (
        "retention shorter than max_age",
        """\
        settings:
          max_age: 7d
          retention: 1d
        """,
        ["3: retention (1d) must be at least max_age (7d), or old stories could alert"],
    ),
    (
        "not a positive whole number",
        """\
        settings:
          max_alerts_per_poll: 0
          max_items_per_feed: 2.5
          failure_threshold: many
        """,
        [
            "2: max_alerts_per_poll must be a whole number of at least 1 (got 0)",
            "3: max_items_per_feed must be a whole number of at least 1 (got the number 2.5)",
            '4: failure_threshold must be a whole number of at least 1 (got the text "many")',
        ],
    ),
    (
        "bad body cap",
        """\
        settings:
          max_body_mb: 0
        """,
        ["2: max_body_mb must be more than 0 (got 0)"],
    ),
    (
        "durations above their maximum",
        """\
        settings:
          interval: 8d
          max_age: 3651d
          retention: 99999999999999999999d
          fetch_timeout: 301s
          parse_timeout: 1h
          send_interval: 61m
        feeds:
          - url: https://a.example/rss
            interval: 99999999999999999999d
        """,
        [
            "2: interval must be at most 7d (got 8d)",
            "3: max_age must be at most 3650d (got 3651d)",
            "4: retention must be at most 3650d (got 99999999999999999999d)",
            "5: fetch_timeout must be at most 5m (got 301s)",
            "6: parse_timeout must be at most 5m (got 1h)",
            "7: send_interval must be at most 1h (got 61m)",
            "10: feed interval must be at most 7d (got 99999999999999999999d)",
        ],
    ),
    (
        "numbers above their maximum",
        """\
        settings:
          max_alerts_per_poll: 1001
          max_items_per_feed: "100001"
          failure_threshold: 0x7fffffffffffffffffff
          max_body_mb: 1e308
        """,
        [
            "2: max_alerts_per_poll must be at most 1000 (got 1001)",
            "3: max_items_per_feed must be at most 100000 (got 100001)",
            "4: failure_threshold must be at most 1000 (got 0x7fffffffffffffffffff)",
            "5: max_body_mb must be at most 1024 (got 1e308)",
        ],
    ),
    (
        "overflowing and non-finite values",
        f"""\
        settings:
          interval: {"9" * 400}d
          max_age: .inf
          retention: nan
          max_items_per_feed: {"9" * 5000}
          failure_threshold: -{"9" * 5000}
          max_body_mb: .nan
          max_alerts_per_poll: inf
        """,
        [
            f'2: interval: "{"9" * 37}..." is too long',
            '3: max_age: ".inf" is not a valid duration',
            '4: retention: "nan" is not a valid duration',
            f"5: max_items_per_feed must be at most 100000 (got {'9' * 37}...)",
            f"6: failure_threshold must be a whole number of at least 1 "
            f"(got the number -{'9' * 36}...)",
            "7: max_body_mb must be a number, not the number .nan",
            '8: max_alerts_per_poll must be a whole number of at least 1 (got the text "inf")',
        ],
    ),
    (
        "bad network",
        """\
        settings:
          allow_networks:
            - 10.0.0.0/8
            - 10.0.0.0/33
            - localhost
        """,
        [
            '4: allow_networks: "10.0.0.0/33" is not a valid network',
            '5: allow_networks: "localhost" is not a valid network',
        ],
    ),
    (
        "bad manager",
        """\
        settings:
          managers: [alice]
        """,
        ['2: managers: "alice" is not a Slack user ID'],
    ),
    (
        "feed url not http",
        """\
        feeds:
          - url: ftp://a.example/rss
        """,
        ['2: feed URL "ftp://a.example/rss" must start with http:// or https://'],
    ),
    (
        "feed url without host",
        """\
        feeds:
          - url: https:///rss
        """,
        ['2: feed URL "https:///rss" has no host name'],
    ),
    (
        "feed url with credentials",
        """\
        feeds:
          - url: https://bob:hunter2@a.example/rss
        """,
        ["2: feed URL must not contain a user name or password"],
    ),
    (
        "feed without url",
        """\
        feeds:
          - name: A
        """,
        ["2: feed has no url; add e.g. url: https://example.org/rss.xml"],
    ),
    (
        "duplicate feed",
        """\
        feeds:
          - url: https://a.example/rss/
          - url: https://b.example/rss
          - url: HTTPS://A.Example/rss
        """,
        ['4: duplicate feed "HTTPS://A.Example/rss": the same feed is already listed on line 2'],
    ),
    (
        "duplicate feed name",
        """\
        feeds:
          - url: https://a.example/rss
            name: World News
          - url: https://b.example/rss
            name: world news
        """,
        ['5: duplicate feed name "world news": already used on line 3'],
    ),
    (
        "feed name not text",
        """\
        feeds:
          - url: https://a.example/rss
            name: 2024
        """,
        ['3: feed name must be text, not the number 2024; put it in quotes: name: "2024"'],
    ),
    (
        "tags not a list",
        """\
        feeds:
          - url: https://a.example/rss
            tags: india
        """,
        ['3: tags must be a list, e.g. tags: [india, trade], not the text "india"'],
    ),
    (
        "watch without channel",
        """\
        watches:
          - terms: [tariff]
        """,
        ["2: watch has no channel; add e.g. channel: C0123456789"],
    ),
    (
        "invalid slack channel",
        """\
        watches:
          - channel: general
            terms: [tariff]
        """,
        ['2: invalid channel: "general" is not a Slack channel ID'],
    ),
    (
        "channel with a space is shown as typed",
        """\
        watches:
          - channel: bad chan
            terms: [tariff]
        """,
        ["2: invalid channel: 'bad chan' is not a Slack channel ID"],
    ),
    (
        "channel that looks like a token is masked",
        """\
        watches:
          - channel: xoxb-1234-5678-abcdefABCDEF
            terms: [tariff]
        """,
        ['2: invalid channel: "***" is not a Slack channel ID'],
    ),
    (
        "channel name instead of id",
        """\
        watches:
          - channel: "#general"
            terms: [tariff]
        """,
        ['2: invalid channel: "#general" is a channel name; use the Slack channel ID'],
    ),
    (
        "discord webhook with bad scheme",
        """\
        watches:
          - channel: discord:ftp://discord.com/api/webhooks/1/TOKEN
            terms: [tariff]
        """,
        ["2: invalid channel: the Discord webhook URL must start with https:// (or http://)"],
    ),
    (
        "discord webhook with credentials",
        """\
        watches:
          - channel: discord:https://me:TOKEN@discord.com/api/webhooks/1/TOKEN
            terms: [tariff]
        """,
        ["2: invalid channel: the Discord webhook URL must not contain a user name or password"],
    ),
    (
        "discord bad variable name",
        """\
        watches:
          - channel: discord:$MY-HOOK
            terms: [tariff]
        """,
        ['2: invalid channel: "MY-HOOK" is not a valid environment variable name'],
    ),
    (
        "terms missing",
        """\
        watches:
          - channel: C0123456789
        """,
        ['2: watch has no terms; add e.g. terms: ["trade deal", tariff]'],
    ),
    (
        "terms empty list",
        """\
        watches:
          - channel: C0123456789
            terms: []
        """,
        ["3: terms is empty; list at least one watch term"],
    ),
    (
        "terms with no value",
        """\
        watches:
          - channel: C0123456789
            terms:
        """,
        ["3: terms is empty; list at least one watch term"],
    ),
    (
        "terms not a list",
        """\
        watches:
          - channel: C0123456789
            terms: trade deal
        """,
        ['3: terms must be a list, e.g. terms: ["trade deal", tariff], not the text'],
    ),
    (
        "empty term",
        """\
        watches:
          - channel: C0123456789
            terms:
              - tariff
              - "  "
        """,
        ["5: empty watch term in terms; remove it or fill it in"],
    ),
    (
        "non-string term",
        """\
        watches:
          - channel: C0123456789
            terms:
              - 2024
              - [a, b]
              - yes
        """,
        [
            '4: each watch term must be text, not the number 2024; put it in quotes: "2024"',
            "5: each watch term must be text, not a list",
            "6: each watch term must be text, not yes (read as true/false)",
        ],
    ),
    (
        "term too long",
        f"""\
        watches:
          - channel: C0123456789
            terms: [{"x" * 201}]
        """,
        ['3: watch term "xxxxxxxx'],
    ),
    (
        "duplicate term",
        """\
        watches:
          - channel: C0123456789
            terms:
              - trade deal
              - tariff
              - Trade  Deal
        """,
        ['6: duplicate watch term "Trade  Deal" (already listed on line 4)'],
    ),
    (
        "selector matching no feed",
        """\
        feeds:
          - url: https://a.example/rss
            name: Alpha
            tags: [india]
        watches:
          - channel: C0123456789
            terms: [tariff]
            feeds: [india, indai, https://b.example/rss]
        """,
        [
            '8: feeds: "indai" matches no feed name, URL or tag (did you mean "india"?)',
            '8: feeds: "https://b.example/rss" matches no feed name, URL or tag',
        ],
    ),
    (
        "watch not a mapping",
        """\
        watches:
          - C0123456789
        """,
        ["2: each watch must be a set of key: value pairs with channel: and terms:, not the text"],
    ),
    (
        "yaml syntax error",
        """\
        settings:
          interval: 10m
        feeds: [https://a.example/rss
        watches: []
        """,
        ["4: invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence"],
    ),
    (
        "yaml tab indentation",
        "settings:\n\tinterval: 10m\n",
        ["2: invalid YAML: found character '\\t' that cannot start any token"],
    ),
    (
        "two yaml documents",
        "settings: {}\n---\nfeeds: []\n",
        ["2: invalid YAML: the file holds more than one document"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in PROBLEM_CASES],
)
def test_problem_is_reported_with_its_line(text: str, expected: list[str]) -> None:
    found = problems_of(text)
    assert len(found) == len(expected), found
    for got, want in zip(found, expected, strict=True):
        assert got.startswith(f"{FILE}:{want}"), (got, want)
        assert "Traceback" not in got


def test_several_problems_reported_at_once() -> None:
    text = """\
    settings:
      interval: 5
      max_age: forever
      unknown: 1
    feeds:
      - url: gopher://a.example/rss
      - url: https://b.example/rss
        name: B
      - url: https://b.example/rss/
    watches:
      - channel: nope
        terms: []
      - channel: discord:https://x:SECRET@discord.com/api/webhooks/123/SECRET
        terms: [tariff, tariff]
        feeds: [missing]
    """
    found = problems_of(text)
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
    assert lines == [2, 3, 4, 6, 9, 11, 12, 13, 14, 15]
    joined = "\n".join(found)
    assert "SECRET" not in joined
    assert "Traceback" not in joined


def test_config_error_lists_every_problem_in_str() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("settings:\n  interval: 1s\n  max_age: x\n", "my.yaml")
    error = info.value
    assert all(isinstance(p, Problem) for p in error.problems)
    assert error.problems[0] == Problem("my.yaml", 2, "interval must be at least 1m (got 1s)")
    assert str(error).splitlines() == [str(p) for p in error.problems]


@pytest.mark.parametrize("name", sorted(DURATION_LIMITS))
def test_each_duration_is_accepted_up_to_its_maximum(name: str) -> None:
    maximum = DURATION_LIMITS[name].maximum
    highest = format_duration(maximum)
    extra = "" if name != "max_age" else f"\n  retention: {highest}"
    config = parse_config(f"settings:\n  {name}: {highest}{extra}\n", FILE)
    assert getattr(config.settings, name) == maximum
    feed = f"feeds:\n  - url: https://a.example/rss\n    interval: {highest}\n"
    if name == "interval":
        assert parse_config(feed, FILE).feeds[0].interval == maximum

    above = format_duration(maximum + 1)
    with pytest.raises(ConfigError) as info:
        parse_config(f"settings:\n  {name}: {above}\n", FILE)
    assert [str(p) for p in info.value.problems] == [
        f"{FILE}:2: {name} must be at most {highest} (got {above})"
    ]


@pytest.mark.parametrize("name", sorted(NUMBER_LIMITS))
def test_each_number_is_accepted_up_to_its_maximum(name: str) -> None:
    maximum = NUMBER_LIMITS[name].maximum
    shown = f"{maximum:g}"
    config = parse_config(f"settings:\n  {name}: {shown}\n", FILE)
    assert getattr(config.settings, name) == maximum
    above = str(int(maximum) + 1)
    with pytest.raises(ConfigError) as info:
        parse_config(f"settings:\n  {name}: {above}\n", FILE)
    assert [str(p) for p in info.value.problems] == [
        f"{FILE}:2: {name} must be at most {shown} (got {above})"
    ]


def test_defaults_are_within_the_limits() -> None:
    defaults = Settings()
    for name, limit in {**DURATION_LIMITS, **NUMBER_LIMITS}.items():
        value = getattr(defaults, name)
        assert limit.minimum <= value <= limit.maximum, name
        assert not (limit.above_minimum and value == limit.minimum), name


def test_readme_lists_the_allowed_ranges() -> None:
    readme = README.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(\w+)`[^|]* \| (.+?) \|$", readme, re.MULTILINE))
    for name, limit in {**DURATION_LIMITS, **NUMBER_LIMITS}.items():
        show = format_duration if name in DURATION_LIMITS else "{:g}".format
        low = "0" if limit.minimum == 0 else show(limit.minimum)
        low = f"more than {low}" if limit.above_minimum else low
        assert name in rows, name
        assert rows[name].startswith(f"{low} "), (name, rows[name])
        assert f" to {show(limit.maximum)}" in rows[name], (name, rows[name])


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:1: cannot read config: No such file or directory"
    ]


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(b"settings:\n  interval: 10m\nfeeds: [\xff]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: cannot read config: the file is not UTF-8 text"
    ]


def test_utf8_bom_and_accents_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes("\ufeffwatches:\n  - channel: C0123456789\n    terms: [café]\n".encode())
    assert load_config(path).watches[0].terms == ("café",)


def test_yaml_tags_do_not_construct_objects() -> None:
    found = problems_of(
        """\
        settings:
          interval: !!python/object/apply:os.system ["echo hi"]
        """
    )
    assert found == [
        "feeds.yaml:2: interval must be a duration like 30s, 10m, 2h or 1d, not a list"
    ]


def test_selector_for_a_broken_feed_is_not_reported_twice() -> None:
    found = problems_of(
        """\
        feeds:
          - url: https://a.example/rss
            name: Alpha
            interval: 1s
        watches:
          - channel: C0123456789
            terms: [tariff]
            feeds: [Alpha]
        """
    )
    assert found == ["feeds.yaml:4: feed interval must be at least 1m (got 1s)"]


def test_terms_are_checked_with_the_query_parser() -> None:
    query = pytest.importorskip("bot.query")
    candidates = ['"unclosed phrase', "-rumor", "OR", "a OR", "()", '""', "-"]
    rejected: tuple[str, str] | None = None
    for term in candidates:
        try:
            query.parse_query(term)
        except ValueError as exc:
            rejected = (term, " ".join(str(exc).split()))
            break
    if rejected is None:
        pytest.skip("bot.query accepts every candidate term")
    term, reason = rejected
    quoted = f"'{term}'" if '"' in term else f'"{term}"'
    text = f"watches:\n  - channel: C0123456789\n    terms:\n      - tariff\n      - {quoted}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, FILE)
    shown = f"'{term}'" if '"' in term and "'" not in term else f'"{term}"'
    assert [str(p) for p in info.value.problems] == [f"{FILE}:5: watch term {shown}: {reason}"]
    # The terms of the spec example are all valid queries.
    assert len(parse_config(SPEC_EXAMPLE, FILE).watches) == 2


# --------------------------------------------------------------------------- stories (SPEC §8)


def test_merge_window_and_followups_settings() -> None:
    config = parse(
        """\
        settings:
          merge_window: 12h
          followups: none
        watches:
          - channel: C0123456789
            terms: [tariff]
            followups: thread
          - channel: C0123456780
            terms: [trade]
        """
    )
    assert config.settings.merge_window == 12 * 3600 and config.settings.followups == "none"
    assert config.followups_for("C0123456789") and not config.followups_for("C0123456780")
    assert not config.followups_for("C0FROMSLACK")  # /watch-only channels use the setting
    defaults = parse("settings: {}\n")
    assert defaults.settings.merge_window == 48 * 3600 and defaults.followups_for("C0123456789")
    assert parse("settings:\n  merge_window: 0\n").settings.merge_window == 0


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("settings:\n  followups: threads\n", 2, "followups must be one of thread, none, not"),
        ("settings:\n  followups: [thread]\n", 2, "followups must be one of thread, none"),
        ("settings:\n  merge_window: 31d\n", 2, "merge_window must be at most 30d"),
        ("settings:\n  merge_window: soon\n", 2, "merge_window:"),
        (
            "watches:\n  - channel: C0123456789\n    terms: [tariff]\n    followups: yes\n",
            4,
            "followups must be one of thread, none",
        ),
    ],
)
def test_bad_merge_and_followup_values_are_reported_with_their_line(
    text: str, line: int, message: str
) -> None:
    [problem] = problems_of(text)
    assert problem.startswith(f"{FILE}:{line}: {message}"), problem
