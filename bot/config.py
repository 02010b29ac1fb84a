"""feeds.yaml: parsing and validation.

The file is read once into frozen dataclasses. Every value is checked up
front and every problem found is reported together, each with the line it
is on (``FILE:LINE: message``), so an operator can fix the whole file in one
go. YAML is composed into a node tree (not loaded into Python objects) so
that every key and value keeps its line number, duplicate keys can be seen,
and no YAML tag can construct anything but plain values.

Discord webhook channels written as ``discord:$VAR`` are not resolved here:
the URL is read from the environment when a message is sent.
`config_warnings` reports variables that are not set.
"""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.channels import (
    discord_channel_id,
    display_channel,
    env_var_name,
    validate_channel,
    webhook_env_warning,
)
from bot.durations import format_duration, parse_duration
from bot.query import term_key

__all__ = [
    "Config",
    "ConfigError",
    "FeedConfig",
    "Problem",
    "Settings",
    "WatchConfig",
    "config_warnings",
    "empty_config",
    "feed_url_key",
    "load_config",
    "parse_config",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_TERM_LENGTH = 200
MAX_TERMS_PER_CHANNEL = 500

_MINUTE = 60.0
_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True)
class Limit:
    """The allowed range of one numeric setting (README: "Allowed values").

    ``above_minimum``: the value must be more than *minimum*, not equal to it.
    """

    minimum: float
    maximum: float
    above_minimum: bool = False


# Durations, in seconds. The maxima keep every value far from float and
# datetime overflow and catch typos (``interval: 10d`` meant as 10m) early.
DURATION_LIMITS: dict[str, Limit] = {
    "interval": Limit(_MINUTE, 7 * _DAY),  # settings and per feed
    "max_age": Limit(0.0, 3650 * _DAY),  # 0 = no limit
    "retention": Limit(0.0, 3650 * _DAY, above_minimum=True),
    "fetch_timeout": Limit(0.0, 5 * _MINUTE, above_minimum=True),
    "parse_timeout": Limit(0.0, 5 * _MINUTE, above_minimum=True),
    "send_interval": Limit(0.0, _HOUR),
    "merge_window": Limit(0.0, 30 * _DAY),  # 0 = near-duplicate merging off
}
# Follow-ups to an alert when later copies of its story arrive (SPEC §8).
FOLLOWUPS = ("thread", "none")
# Counts (whole numbers) and the body cap in MiB.
NUMBER_LIMITS: dict[str, Limit] = {
    "max_alerts_per_poll": Limit(1, 1000),
    "max_items_per_feed": Limit(1, 100_000),
    "failure_threshold": Limit(1, 1000),
    "max_body_mb": Limit(0.0, 1024.0, above_minimum=True),
}
MIN_INTERVAL = DURATION_LIMITS["interval"].minimum

_TAG_STR = "tag:yaml.org,2002:str"
_TAG_INT = "tag:yaml.org,2002:int"
_TAG_FLOAT = "tag:yaml.org,2002:float"
_TAG_BOOL = "tag:yaml.org,2002:bool"
_TAG_NULL = "tag:yaml.org,2002:null"
_TAG_MERGE = "tag:yaml.org,2002:merge"

_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{8,}")
_DISCORD_USER_ID = re.compile(r"[1-9][0-9]{5,19}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Settings:
    interval: float = 600.0  # seconds, min 60
    max_age: float = 172800.0  # seconds; 0 = no limit
    max_alerts_per_poll: int = 10  # >= 1
    allow_networks: tuple[IPNetwork, ...] = ()
    managers: tuple[str, ...] = ()  # Slack or Discord user IDs; empty = everyone
    fetch_timeout: float = 20.0  # seconds, > 0
    max_body_mb: float = 10.0  # > 0
    max_items_per_feed: int = 500  # >= 1
    send_interval: float = 1.0  # min seconds between messages to one channel
    retention: float = 30 * 86400.0  # how long seen items are kept
    failure_threshold: int = 10  # consecutive failures before a feed is suspended
    parse_timeout: float = 30.0  # seconds one feed may take to parse, > 0
    merge_window: float = 48 * 3600.0  # near-duplicate copies within this are one story
    followups: str = "thread"  # thread | none: "Also reported by" under an alert


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str | None = None
    interval: float | None = None  # seconds; None = settings.interval
    tags: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class WatchConfig:
    channel: str
    terms: tuple[str, ...]
    feeds: tuple[str, ...] = ()  # selectors: feed names, URLs or tags; empty = all feeds
    line: int = 0
    followups: str | None = None  # thread | none; None = settings.followups


@dataclass(frozen=True)
class Config:
    path: str
    settings: Settings = field(default_factory=Settings)
    feeds: tuple[FeedConfig, ...] = ()
    watches: tuple[WatchConfig, ...] = ()

    def feeds_for_watch(
        self, watch: WatchConfig, feed_titles: Mapping[str, str] | None = None
    ) -> tuple[FeedConfig, ...]:
        """The feeds *watch* applies to, in config order.

        A selector matches a feed's name, URL (compared with `feed_url_key`)
        or one of its tags, case-insensitively. For a feed without a `name`,
        the title learned from the feed itself (``feed_titles[url]``) counts
        as its name.
        """
        if not watch.feeds:
            return self.feeds
        titles = feed_titles or {}
        return tuple(
            feed
            for feed in self.feeds
            if any(_selector_matches(sel, feed, titles.get(feed.url)) for sel in watch.feeds)
        )

    def followups_for(self, channel: str) -> bool:
        """Whether `channel` gets "Also reported by" follow-ups: its watches'
        own `followups:` (thread if any of them says so), else the setting
        (also for channels whose terms all come from /watch)."""
        own = [w.followups or self.settings.followups for w in self.watches if w.channel == channel]
        return "thread" in own if own else self.settings.followups == "thread"

    def channels(self) -> tuple[str, ...]:
        """Distinct watch channels, in the order they first appear."""
        return tuple(dict.fromkeys(watch.channel for watch in self.watches))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(Exception):
    """The config has problems; `problems` lists all of them in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- API


def empty_config(path: str | os.PathLike[str]) -> Config:
    """The config used when no config file exists yet: defaults, no feeds, no watches."""
    return Config(path=os.fspath(path))


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file at *path*.

    Raises `ConfigError` listing every problem found (a file that cannot be
    read is ``FILE:1: cannot read config: ...``). An empty file is a valid,
    empty config.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise ConfigError([Problem(name, 1, f"cannot read config: {reason}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [Problem(name, line, "cannot read config: the file is not UTF-8 text")]
        ) from None
    return parse_config(text, name)


def parse_config(text: str, path: str) -> Config:
    """Validate config *text* (the contents of *path*, used in messages)."""
    return _Parser(os.fspath(path)).parse(text)


def config_warnings(config: Config, env: Mapping[str, str]) -> list[Problem]:
    """Problems that do not stop the config from loading but will stop alerts.

    Today: ``discord:$VAR`` channels whose variable is unset or does not hold
    a usable webhook URL, and ``discord:<channel ID>`` channels without
    DISCORD_BOT_TOKEN. Messages never contain the webhook URL.
    """
    warnings: list[Problem] = []
    reported: set[str] = set()
    for watch in config.watches:
        if discord_channel_id(watch.channel) and not env.get("DISCORD_BOT_TOKEN", "").strip():
            if "DISCORD_BOT_TOKEN" not in reported:
                reported.add("DISCORD_BOT_TOKEN")
                warnings.append(
                    Problem(
                        config.path,
                        watch.line,
                        f"DISCORD_BOT_TOKEN is not set, so alerts for {watch.channel} "
                        "cannot be sent until it is",
                    )
                )
            continue
        name = env_var_name(watch.channel)
        if name is None or name in reported:
            continue
        reported.add(name)
        warning = webhook_env_warning(watch.channel, env)
        if warning is not None:
            warnings.append(Problem(config.path, watch.line, warning))
    return warnings


def feed_url_key(url: str) -> str:
    """The form of a feed URL used to spot duplicates: scheme and host in
    lower case, no trailing slash (``HTTPS://Example.org/rss/`` and
    ``https://example.org/rss`` are the same feed)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.rstrip("/")
    if not parts.scheme or not parts.netloc:
        return url.rstrip("/")
    key = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
    if parts.query:
        key += "?" + parts.query
    return key


# --------------------------------------------------------------------------- internals


_TOP_KEYS = ("settings", "feeds", "watches")
_SETTINGS_KEYS = tuple(Settings.__dataclass_fields__)
_FEED_KEYS = ("url", "name", "interval", "tags")
_WATCH_KEYS = ("channel", "terms", "feeds", "followups")

_DURATION_EXAMPLE = "a duration like 30s, 10m, 2h or 1d"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _quote(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    if len(cleaned) > 80:
        cleaned = cleaned[:77] + "..."
    if '"' in cleaned and "'" not in cleaned:
        return f"'{cleaned}'"
    return f'"{cleaned}"'


def _short(text: str, limit: int = 40) -> str:
    """*text* cut to *limit* characters, for echoing a value the user wrote."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _describe(node: Node) -> str:
    """What a node is, in words, for "must be X, not Y" messages."""
    if isinstance(node, MappingNode):
        return "a set of key: value pairs"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode):
        value = str(node.value)
        if node.tag == _TAG_NULL:
            return "empty"
        if node.tag == _TAG_BOOL:
            return f"{value} (read as true/false)"
        if node.tag in (_TAG_INT, _TAG_FLOAT):
            return f"the number {_short(value)}"
        if node.tag == _TAG_STR:
            return f"the text {_quote(value)}"
    return "a value of an unsupported type"


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG_NULL


def _is_text(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG_STR


def _suggest(word: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


# libyaml composes a 1,000-feed file ten times faster than PyYAML's pure-Python
# loader (which was most of a warm `poll --once`). Its composer recurses in C,
# so a document that could nest deeply (many brackets, very long lines) goes
# to the pure-Python loader, whose RecursionError becomes a clear message.
_C_LOADER = getattr(yaml, "CSafeLoader", None)
_C_MAX_BRACKETS = 500
_C_MAX_LINE = 2000


def _compose(text: str) -> Node | None:
    if (
        _C_LOADER is not None
        and text.count("[") + text.count("{") <= _C_MAX_BRACKETS
        and max(map(len, text.splitlines()), default=0) <= _C_MAX_LINE
    ):
        try:
            return yaml.compose(text, Loader=_C_LOADER)
        except yaml.YAMLError:
            pass  # the pure-Python loader words the error (and its line) as always
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _yaml_error_problem(path: str, text: str, exc: yaml.YAMLError) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        problem = (exc.problem or exc.context or "the file could not be read").strip()
        message = f"invalid YAML: {problem}"
        if exc.context and exc.problem:
            context = exc.context.strip()
            cmark = exc.context_mark
            if cmark is not None and int(cmark.line) + 1 != line:
                context += f" that starts on line {int(cmark.line) + 1}"
            message += f" ({context})"
        if isinstance(exc, yaml.composer.ComposerError) and "single document" in str(exc.context):
            message = (
                "invalid YAML: the file holds more than one document (a second --- line); "
                "keep everything in one"
            )
        elif "'\\t'" in problem:
            message += "; indent with spaces, not tabs"
        elif "mapping values are not allowed" in problem:
            message += "; a value that contains ': ' must be put in quotes"
        return Problem(path, line, message)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1
        char = exc.character
        code = f"U+{char:04X}" if isinstance(char, int) else "a special character"
        return Problem(path, line, f"invalid YAML: the file contains a control character ({code})")
    return Problem(path, 1, "invalid YAML: the file could not be read")


def _selector_matches(selector: str, feed: FeedConfig, title: str | None) -> bool:
    wanted = _fold(selector)
    if not wanted:
        return False
    name = feed.name if feed.name is not None else title
    if name is not None and _fold(name) == wanted:
        return True
    if any(_fold(tag) == wanted for tag in feed.tags):
        return True
    return "://" in selector and feed_url_key(selector) == feed_url_key(feed.url)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _feed_url_problem(url: str) -> str | None:
    if not url:
        return "feed URL is empty"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return f"feed URL {_quote(url)} must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return f"feed URL {_quote(_strip_userinfo(url))} is not a valid URL"
    if parts.username is not None or parts.password is not None:
        return "feed URL must not contain a user name or password"
    if parts.scheme.lower() not in ("http", "https"):
        return f"feed URL {_quote(url)} must start with http:// or https://"
    if not host:
        return f"feed URL {_quote(url)} has no host name"
    return None


def _strip_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{tail}"


def _load_query_parser() -> Callable[[str], object] | None:
    """`bot.query.parse_query`, or None while that module does not exist."""
    try:
        module = importlib.import_module("bot.query")
    except ModuleNotFoundError as exc:
        if exc.name in ("bot", "bot.query"):
            return None
        raise
    parser = getattr(module, "parse_query", None)
    return parser if callable(parser) else None


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        # Folded names/tags and URL keys of every feed entry, valid or not.
        self.selectable: set[str] = set()

    # -- reporting

    def problem(self, where: Node | int, message: str) -> None:
        line = where if isinstance(where, int) else _line(where)
        self.problems.append(Problem(self.path, line, message))

    # -- entry point

    def parse(self, text: str) -> Config:
        try:
            root = _compose(text)
        except yaml.YAMLError as exc:
            raise ConfigError([_yaml_error_problem(self.path, text, exc)]) from None
        except RecursionError:
            raise ConfigError(
                [Problem(self.path, 1, "invalid YAML: the file is nested too deeply")]
            ) from None
        if root is None or _is_null(root):
            return empty_config(self.path)
        if not isinstance(root, MappingNode):
            self.problem(
                root,
                "the config must be made of the sections settings:, feeds: and watches:, "
                f"not {_describe(root)}",
            )
            raise ConfigError(self.problems)

        sections = self.mapping(root, "the config", _TOP_KEYS)
        settings = self.settings(sections.get("settings"))
        feeds = self.feeds(sections.get("feeds"))
        watches = self.watches(sections.get("watches"), feeds)

        if self.problems:
            self.problems.sort(key=lambda p: p.line)
            raise ConfigError(self.problems)
        return Config(path=self.path, settings=settings, feeds=feeds, watches=watches)

    # -- generic helpers

    def mapping(self, node: MappingNode, where: str, allowed: Sequence[str]) -> dict[str, Node]:
        """Keys of *node* -> value nodes, reporting odd, duplicate and unknown keys.

        Only known keys are returned; for a duplicate key the first one wins.
        """
        result: dict[str, Node] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _TAG_NULL:
                self.problem(key_node, f"every key must be a plain name (in {where})")
                continue
            if key_node.tag == _TAG_MERGE:
                self.problem(key_node, f"YAML merge keys (<<) are not supported (in {where})")
                continue
            key = str(key_node.value)
            if key in first_line:
                self.problem(
                    key_node,
                    f'duplicate key "{key}" in {where} (first given on line {first_line[key]})',
                )
                continue
            first_line[key] = _line(key_node)
            if key not in allowed:
                allowed_list = ", ".join(allowed)
                self.problem(
                    key_node,
                    f"unknown key {_quote(key)} in {where}{_suggest(key, allowed)}; "
                    f"allowed keys: {allowed_list}",
                )
                continue
            result[key] = value_node
        return result

    def section_list(self, node: Node | None, name: str, example: str) -> list[Node]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{name} must be a list ({example}), not {_describe(node)}")
            return []
        return list(node.value)

    def text_list(
        self, node: Node, what: str, item: str, example: str
    ) -> list[tuple[str, Node]] | None:
        """A list of non-empty text values; problems are reported, bad items skipped."""
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{what} must be a list, e.g. {example}, not {_describe(node)}")
            return None
        values: list[tuple[str, Node]] = []
        for child in node.value:
            if not _is_text(child):
                hint = ""
                if isinstance(child, ScalarNode) and child.tag in (_TAG_INT, _TAG_FLOAT, _TAG_BOOL):
                    hint = f'; put it in quotes: "{child.value}"'
                self.problem(child, f"each {item} must be text, not {_describe(child)}{hint}")
                continue
            value = str(child.value).strip()
            if not value:
                self.problem(child, f"empty {item} in {what}; remove it or fill it in")
                continue
            values.append((value, child))
        return values

    def duration(self, node: Node, name: str, limit: Limit) -> float | None:
        """A duration value within *limit*."""
        if _is_null(node):
            self.problem(node, f"{name} has no value; give {_DURATION_EXAMPLE}")
            return None
        if not isinstance(node, ScalarNode) or node.tag not in (_TAG_STR, _TAG_INT, _TAG_FLOAT):
            self.problem(node, f"{name} must be {_DURATION_EXAMPLE}, not {_describe(node)}")
            return None
        try:
            seconds = parse_duration(str(node.value))
        except ValueError as exc:
            self.problem(node, f"{name}: {exc}")
            return None
        if limit.above_minimum and seconds <= limit.minimum:
            self.problem(node, f"{name} must be more than {format_duration(limit.minimum)}")
            return None
        if seconds < limit.minimum:
            self.problem(
                node,
                f"{name} must be at least {format_duration(limit.minimum)} "
                f"(got {format_duration(seconds)})",
            )
            return None
        if seconds > limit.maximum:
            self.problem(
                node,
                f"{name} must be at most {format_duration(limit.maximum)} "
                f"(got {_short(str(node.value).strip())})",
            )
            return None
        return seconds

    def choice(self, node: Node, name: str, allowed: Sequence[str]) -> str | None:
        """One of a few words (`followups: thread`)."""
        text = str(node.value).strip() if _is_text(node) else None
        if text not in allowed:
            shown = _quote(text) if text is not None else _describe(node)
            self.problem(node, f"{name} must be one of {', '.join(allowed)}, not {shown}")
            return None
        return text

    def whole_number(self, node: Node, name: str, limit: Limit) -> int | None:
        minimum, maximum = int(limit.minimum), int(limit.maximum)
        value: int | None = None
        if isinstance(node, ScalarNode) and node.tag in (_TAG_INT, _TAG_STR):
            text = str(node.value).strip()
            try:
                if node.tag == _TAG_INT:
                    value = int(yaml.constructor.SafeConstructor().construct_yaml_int(node))
                elif re.fullmatch(r"\d+", text):
                    value = int(text)
            except ValueError:
                # More digits than Python turns into a number: far too many.
                if re.fullmatch(r"\+?[\d_]+", text):
                    value = maximum + 1
        if value is None or value < minimum:
            got = f"got {_describe(node)}" if value is None else f"got {_short(str(value))}"
            self.problem(node, f"{name} must be a whole number of at least {minimum} ({got})")
            return None
        if value > maximum:
            got = _short(str(node.value).strip())
            self.problem(node, f"{name} must be at most {maximum} (got {got})")
            return None
        return value

    def positive_number(self, node: Node, name: str, limit: Limit) -> float | None:
        """A number within *limit*, whose minimum is 0 and excluded."""
        value: float | None = None
        if isinstance(node, ScalarNode) and node.tag in (_TAG_INT, _TAG_FLOAT, _TAG_STR):
            try:
                value = float(str(node.value).replace("_", ""))
            except ValueError:
                value = None
        if value is None or math.isnan(value):
            self.problem(node, f"{name} must be a number, not {_describe(node)}")
            return None
        if value <= limit.minimum:
            self.problem(node, f"{name} must be more than 0 (got {_short(str(node.value))})")
            return None
        if value > limit.maximum:
            self.problem(
                node,
                f"{name} must be at most {limit.maximum:g} (got {_short(str(node.value))})",
            )
            return None
        return value

    # -- settings

    def settings(self, node: Node | None) -> Settings:
        defaults = Settings()
        if node is None or _is_null(node):
            return defaults
        if not isinstance(node, MappingNode):
            self.problem(
                node,
                "settings must be a set of key: value pairs (like interval: 10m), "
                f"not {_describe(node)}",
            )
            return defaults
        items = self.mapping(node, "settings", _SETTINGS_KEYS)
        values: dict[str, object] = {}
        lines: dict[str, int] = {key: _line(value) for key, value in items.items()}

        for key, value in items.items():
            parsed: object | None
            if key in DURATION_LIMITS:
                parsed = self.duration(value, key, DURATION_LIMITS[key])
            elif key == "max_body_mb":
                parsed = self.positive_number(value, key, NUMBER_LIMITS[key])
            elif key in NUMBER_LIMITS:
                parsed = self.whole_number(value, key, NUMBER_LIMITS[key])
            elif key == "allow_networks":
                parsed = self.networks(value)
            elif key == "followups":
                parsed = self.choice(value, key, FOLLOWUPS)
            else:  # managers
                parsed = self.managers(value)
            if parsed is not None:
                values[key] = parsed

        max_age = values.get("max_age", defaults.max_age)
        retention = values.get("retention", defaults.retention)
        if (
            isinstance(max_age, float)
            and isinstance(retention, float)
            and max_age > 0
            and retention < max_age
        ):
            line = lines.get("retention", lines.get("max_age", _line(node)))
            self.problem(
                line,
                f"retention ({format_duration(retention)}) must be at least max_age "
                f"({format_duration(max_age)}), or old stories could alert a second time",
            )

        settings = Settings(
            interval=_as_float(values.get("interval"), defaults.interval),
            max_age=_as_float(values.get("max_age"), defaults.max_age),
            max_alerts_per_poll=_as_int(
                values.get("max_alerts_per_poll"), defaults.max_alerts_per_poll
            ),
            allow_networks=_as_networks(values.get("allow_networks"), defaults.allow_networks),
            managers=_as_strings(values.get("managers"), defaults.managers),
            fetch_timeout=_as_float(values.get("fetch_timeout"), defaults.fetch_timeout),
            max_body_mb=_as_float(values.get("max_body_mb"), defaults.max_body_mb),
            max_items_per_feed=_as_int(
                values.get("max_items_per_feed"), defaults.max_items_per_feed
            ),
            send_interval=_as_float(values.get("send_interval"), defaults.send_interval),
            retention=_as_float(values.get("retention"), defaults.retention),
            failure_threshold=_as_int(values.get("failure_threshold"), defaults.failure_threshold),
            parse_timeout=_as_float(values.get("parse_timeout"), defaults.parse_timeout),
            merge_window=_as_float(values.get("merge_window"), defaults.merge_window),
            followups=str(values.get("followups", defaults.followups)),
        )
        return settings

    def networks(self, node: Node) -> tuple[IPNetwork, ...] | None:
        if _is_null(node):
            return ()
        items = self.text_list(node, "allow_networks", "network", '["10.0.0.0/8", "127.0.0.1/32"]')
        if items is None:
            return None
        networks: list[IPNetwork] = []
        for text, child in items:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                self.problem(
                    child,
                    f"allow_networks: {_quote(text)} is not a valid network; "
                    "write it as an address range like 10.0.0.0/8 or 192.168.1.5/32",
                )
        return tuple(dict.fromkeys(networks))

    def managers(self, node: Node) -> tuple[str, ...] | None:
        if _is_null(node):
            return ()
        items = self.text_list(node, "managers", "manager", '["U0123456789"]')
        if items is None:
            return None
        managers: list[str] = []
        for text, child in items:
            if not (_SLACK_USER_ID.fullmatch(text) or _DISCORD_USER_ID.fullmatch(text)):
                self.problem(
                    child,
                    f"managers: {_quote(text)} is not a Slack user ID "
                    "(upper-case letters and digits starting with U or W, like U0123456789) "
                    "or a Discord user ID (digits only, like 80351110224678912)",
                )
                continue
            managers.append(text)
        return tuple(dict.fromkeys(managers))

    # -- feeds

    def feeds(self, node: Node | None) -> tuple[FeedConfig, ...]:
        entries = self.section_list(node, "feeds", "each entry starting with - url: https://…")
        feeds: list[FeedConfig] = []
        seen_urls: dict[str, int] = {}
        seen_names: dict[str, int] = {}
        for entry in entries:
            parsed = self.feed(entry)
            if parsed is None:
                continue
            feed, ok, url_line, name_line = parsed
            key = feed_url_key(feed.url)
            if key in seen_urls:
                self.problem(
                    url_line,
                    f"duplicate feed {_quote(_strip_userinfo(feed.url))}: the same feed is "
                    f"already listed on line {seen_urls[key]}",
                )
                ok = False
            else:
                seen_urls[key] = url_line
            if feed.name is not None:
                folded = _fold(feed.name)
                if folded in seen_names:
                    self.problem(
                        name_line,
                        f"duplicate feed name {_quote(feed.name)}: already used on line "
                        f"{seen_names[folded]}",
                    )
                    ok = False
                else:
                    seen_names[folded] = name_line
            if ok:
                feeds.append(feed)
        return tuple(feeds)

    def feed(self, entry: Node) -> tuple[FeedConfig, bool, int, int] | None:
        """One feed entry -> (feed, has no problems, URL line, name line).

        None when the entry has no usable URL at all. A feed with other
        problems is still returned so duplicate checks can see it.
        """
        if _is_text(entry):
            bare_url = str(entry.value).strip()
            self.selectable.add(feed_url_key(bare_url))
            bare_problem = _feed_url_problem(bare_url)
            if bare_problem is not None:
                self.problem(entry, bare_problem)
            line = _line(entry)
            return FeedConfig(url=bare_url, line=line), bare_problem is None, line, line
        if not isinstance(entry, MappingNode):
            self.problem(
                entry,
                "each feed must be a set of key: value pairs starting with url:, "
                f"not {_describe(entry)}",
            )
            return None
        items = self.mapping(entry, "this feed", _FEED_KEYS)
        ok = True
        entry_line = _line(entry)

        url: str | None = None
        url_node = items.get("url")
        if url_node is None or _is_null(url_node):
            self.problem(
                url_node if url_node is not None else entry,
                "feed has no url; add e.g. url: https://example.org/rss.xml",
            )
            ok = False
        elif not _is_text(url_node):
            self.problem(url_node, f"feed url must be text, not {_describe(url_node)}")
            ok = False
        else:
            url = str(url_node.value).strip()
            problem = _feed_url_problem(url)
            if problem is not None:
                self.problem(url_node, problem)
                ok = False

        name: str | None = None
        name_node = items.get("name")
        if name_node is not None and not _is_null(name_node):
            if not _is_text(name_node):
                hint = ""
                if isinstance(name_node, ScalarNode):
                    hint = f'; put it in quotes: name: "{name_node.value}"'
                self.problem(name_node, f"feed name must be text, not {_describe(name_node)}{hint}")
                ok = False
            else:
                name = " ".join(str(name_node.value).split())
                if not name:
                    self.problem(name_node, "feed name is empty; remove it or give a name")
                    ok = False
                    name = None

        interval: float | None = None
        interval_node = items.get("interval")
        if interval_node is not None and not _is_null(interval_node):
            interval = self.duration(interval_node, "feed interval", DURATION_LIMITS["interval"])
            ok = ok and interval is not None

        tags: tuple[str, ...] = ()
        tags_node = items.get("tags")
        if tags_node is not None and not _is_null(tags_node):
            tag_items = self.text_list(tags_node, "tags", "tag", "tags: [india, trade]")
            if tag_items is None or (
                isinstance(tags_node, SequenceNode) and len(tag_items) != len(tags_node.value)
            ):
                ok = False
            unique: dict[str, str] = {}
            for tag, _child in tag_items or []:
                unique.setdefault(_fold(tag), " ".join(tag.split()))
            tags = tuple(unique.values())

        # Remember what watches may select this feed by even when the feed
        # itself has a problem, so a watch does not get a second, misleading
        # "matches no feed" error for it.
        if url is not None:
            self.selectable.add(feed_url_key(url))
        if name is not None:
            self.selectable.add(_fold(name))
        self.selectable.update(_fold(tag) for tag in tags)

        if url is None:
            return None
        # Unknown keys alone do not make the feed unusable for the other
        # checks: mapping() has already reported them.
        feed = FeedConfig(url=url, name=name, interval=interval, tags=tags, line=entry_line)
        url_line = _line(url_node) if url_node is not None else entry_line
        name_line = _line(name_node) if name_node is not None else entry_line
        return feed, ok, url_line, name_line

    # -- watches

    def watches(self, node: Node | None, feeds: tuple[FeedConfig, ...]) -> tuple[WatchConfig, ...]:
        entries = self.section_list(
            node, "watches", "each entry starting with - channel: C0123456789"
        )
        parse_query = _load_query_parser() if entries else None
        watches: list[WatchConfig] = []
        terms_per_channel: dict[str, set[str]] = {}
        for entry in entries:
            watch = self.watch(entry, feeds, parse_query)
            if watch is None:
                continue
            channel_terms = terms_per_channel.setdefault(watch.channel, set())
            before = len(channel_terms)
            channel_terms.update(_fold(term) for term in watch.terms)
            if len(channel_terms) > MAX_TERMS_PER_CHANNEL >= before:
                self.problem(
                    watch.line,
                    f"{display_channel(watch.channel)} has more than {MAX_TERMS_PER_CHANNEL} "
                    "watch terms",
                )
            watches.append(watch)
        return tuple(watches)

    def watch(
        self,
        entry: Node,
        feeds: tuple[FeedConfig, ...],
        parse_query: Callable[[str], object] | None,
    ) -> WatchConfig | None:
        if not isinstance(entry, MappingNode):
            self.problem(
                entry,
                "each watch must be a set of key: value pairs with channel: and terms:, "
                f"not {_describe(entry)}",
            )
            return None
        items = self.mapping(entry, "this watch", _WATCH_KEYS)
        ok = True

        channel: str | None = None
        channel_node = items.get("channel")
        if channel_node is None or _is_null(channel_node):
            self.problem(
                channel_node if channel_node is not None else entry,
                "watch has no channel; add e.g. channel: C0123456789 (a Slack channel ID) "
                "or channel: discord:$MY_WEBHOOK",
            )
            ok = False
        elif not _is_text(channel_node):
            self.problem(
                channel_node,
                f"watch channel must be text, not {_describe(channel_node)}",
            )
            ok = False
        else:
            channel = str(channel_node.value).strip()
            error = validate_channel(channel)
            if error is not None:
                self.problem(channel_node, f"invalid channel: {error}")
                ok = False

        terms = self.terms(entry, items.get("terms"), parse_query)
        if terms is None:
            ok = False

        selectors: list[str] = []
        feeds_node = items.get("feeds")
        if feeds_node is not None and not _is_null(feeds_node):
            selector_items = self.text_list(
                feeds_node, "feeds", "feed selector", "feeds: [india, Example World]"
            )
            if selector_items is None:
                ok = False
            else:
                for selector, child in selector_items:
                    matched = any(_selector_matches(selector, feed, None) for feed in feeds)
                    if not matched and (
                        _fold(selector) in self.selectable
                        or feed_url_key(selector) in self.selectable
                    ):
                        ok = False  # selects a feed that has its own problem
                        continue
                    if not matched:
                        known = [f.name for f in feeds if f.name] + [
                            t for f in feeds for t in f.tags
                        ]
                        self.problem(
                            child,
                            f"feeds: {_quote(selector)} matches no feed name, URL or tag"
                            f"{_suggest(selector, known)}",
                        )
                        ok = False
                        continue
                    if selector not in selectors:
                        selectors.append(selector)

        followups: str | None = None
        followups_node = items.get("followups")
        if followups_node is not None:
            followups = self.choice(followups_node, "followups", FOLLOWUPS)
            ok = ok and followups is not None

        if not ok or channel is None or terms is None:
            return None
        return WatchConfig(
            channel=channel,
            terms=terms,
            feeds=tuple(selectors),
            line=_line(entry),
            followups=followups,
        )

    def terms(
        self,
        entry: Node,
        node: Node | None,
        parse_query: Callable[[str], object] | None,
    ) -> tuple[str, ...] | None:
        example = 'terms: ["trade deal", tariff]'
        if node is None:
            self.problem(entry, f"watch has no terms; add e.g. {example}")
            return None
        if _is_null(node) or (isinstance(node, SequenceNode) and not node.value):
            self.problem(node, f"terms is empty; list at least one watch term, e.g. {example}")
            return None
        items = self.text_list(node, "terms", "watch term", example)
        if items is None:
            return None
        ok = len(items) == len(node.value) if isinstance(node, SequenceNode) else False
        terms: list[str] = []
        first_line: dict[str, int] = {}
        for term, child in items:
            if len(term) > MAX_TERM_LENGTH:
                self.problem(
                    child,
                    f"watch term {_quote(term)} is too long "
                    f"({len(term)} characters, at most {MAX_TERM_LENGTH})",
                )
                ok = False
                continue
            # The store's term key: spellings that differ only in case,
            # punctuation or spacing are one term.
            key = term_key(term)
            if key in first_line:
                self.problem(
                    child,
                    f"duplicate watch term {_quote(term)} (already listed on line "
                    f"{first_line[key]})",
                )
                ok = False
                continue
            first_line[key] = _line(child)
            if parse_query is not None:
                try:
                    parse_query(term)
                except ValueError as exc:
                    reason = " ".join(str(exc).split()) or "it could not be understood"
                    self.problem(child, f"watch term {_quote(term)}: {reason}")
                    ok = False
                    continue
            terms.append(term)
        return tuple(terms) if ok else None


def _as_float(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


def _as_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _as_strings(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return value
    return default


def _as_networks(value: object, default: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
    if isinstance(value, tuple) and all(
        isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network) for v in value
    ):
        return value
    return default
