"""Hostile feeds (SPEC §6): every attack fails cleanly for its own feed only.

Each fixture is generated in code and served from loopback. The parametrized
test runs fetch + parse (in the worker pool) per fixture, once on the default
path (fast reader first) and once on feedparser alone; the last test polls
all of them together with one healthy feed through `newshound poll --once
--all` in a subprocess and watches the process tree's memory.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

import pytest
import yaml
from cli_helpers import REPO
from hostile import (
    CanaryServer,
    HostileServer,
    billion_laughs,
    empty_body,
    gzip_bomb,
    healthy_feed,
    html_page,
    huge_title,
    invalid_utf8,
    json_wrong_types,
    loopback_alias_available,
    many_items,
    mismatched_encoding,
    quadratic_author,
    quadratic_entities,
)

from bot.fetch import Fetcher, FetchPolicy
from bot.models import FeedError, ParsedFeed
from bot.parse import parse_feed
from bot.parsepool import ParsePool

FETCH_TIMEOUT = 2.0
PARSE_TIMEOUT = 3.0
MEMORY_LIMIT_MB = 400
MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    expect: frozenset[str]  # acceptable outcome kinds; "ok" = parsed


def case(name: str, *kinds: str) -> Case:
    return Case(name, f"/{name}", frozenset(kinds))


CASES = [
    case("healthy", "ok"),
    case("drip", "timeout"),
    case("hang", "timeout"),
    case("reset", "connect", "protocol"),
    case("error500", "http_5xx"),
    case("redirect-loop", "redirect_loop"),
    case("redirect-canary", "blocked_address"),
    case("gzip-bomb", "too_large"),
    case("body-50mb", "too_large"),
    case("body-50mb-unannounced", "too_large"),
    case("billion-laughs", "parse"),
    case("quadratic-entities", "parse"),
    case("items-100k", "parse_timeout", "ok"),
    case("title-1mb", "ok"),
    case("invalid-utf8", "ok"),
    case("mismatched-encoding", "ok", "parse"),
    case("html-page", "parse"),
    case("empty-body", "parse"),
    case("json-wrong-types", "ok"),
    case("quadratic-author", "parse_timeout"),
]


@dataclass
class Servers:
    origin: HostileServer
    canary: CanaryServer | None


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    canary = CanaryServer() if loopback_alias_available() else None
    with HostileServer() as origin:
        if canary is not None:
            canary.__enter__()
        canary_url = canary.url() if canary else "http://127.0.0.2:9/feed.xml"
        origin.serve("/healthy", healthy_feed())
        origin.drip("/drip", healthy_feed(), interval=0.25)
        origin.hang("/hang")
        origin.reset("/reset")
        origin.serve("/error500", b"oops", "text/plain", status=500)
        origin.redirect("/redirect-loop", "/redirect-loop2")
        origin.redirect("/redirect-loop2", "/redirect-loop")
        origin.redirect("/redirect-canary", canary_url)
        origin.serve("/gzip-bomb", gzip_bomb(), headers={"Content-Encoding": "gzip"})
        origin.stream("/body-50mb", 50 * MB, declare_length=True)
        origin.stream("/body-50mb-unannounced", 50 * MB, declare_length=False)
        origin.serve("/billion-laughs", billion_laughs())
        origin.serve("/quadratic-entities", quadratic_entities())
        origin.serve("/items-100k", many_items())
        origin.serve("/title-1mb", huge_title())
        origin.serve("/invalid-utf8", invalid_utf8(), "application/rss+xml; charset=utf-8")
        origin.serve("/mismatched-encoding", mismatched_encoding(), "text/xml; charset=utf-8")
        origin.serve("/html-page", html_page(), "text/html; charset=utf-8")
        origin.serve("/empty-body", empty_body())
        origin.serve("/json-wrong-types", json_wrong_types(), "application/feed+json")
        origin.serve("/quadratic-author", quadratic_author())
        try:
            yield Servers(origin, canary)
        finally:
            if canary is not None:
                canary.__exit__(None, None, None)


@pytest.fixture(scope="module", params=["auto", "feedparser"])
def pool(request: pytest.FixtureRequest) -> Iterator[ParsePool]:
    """Workers on the default path (the fast reader, feedparser when it
    declines) and on feedparser alone: the protections hold on both."""
    parse = functools.partial(parse_feed, engine=request.param)
    with ParsePool(timeout=PARSE_TIMEOUT, parse_function=parse) as p:
        yield p


def fetch_and_parse(url: str, pool: ParsePool) -> ParsedFeed | FeedError:
    policy = FetchPolicy(timeout=FETCH_TIMEOUT, allow_networks=(ip_network("127.0.0.1/32"),))
    with Fetcher(policy) as fetcher:
        try:
            result = fetcher.fetch(url)
            return pool.parse(
                result.body,
                url=result.url,
                content_type=result.headers.get("content-type"),
                max_items=500,
            )
        except FeedError as exc:
            return exc


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_each_hostile_feed_fails_cleanly(c: Case, servers: Servers, pool: ParsePool) -> None:
    started = time.monotonic()
    outcome = fetch_and_parse(servers.origin.url(c.path), pool)
    elapsed = time.monotonic() - started
    kind = "ok" if isinstance(outcome, ParsedFeed) else outcome.kind
    assert kind in c.expect, f"{c.name}: {outcome!r}"
    assert elapsed < FETCH_TIMEOUT + PARSE_TIMEOUT + 2.0, f"{c.name} took {elapsed:.1f}s"
    if isinstance(outcome, FeedError):
        assert "\n" not in outcome.message and len(outcome.message) < 200
        assert "Traceback" not in outcome.message
    else:
        assert len(outcome.items) <= 500
        for item in outcome.items:
            assert len(item.title) <= 500 and len(item.summary) <= 4000
            assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", item.title + item.summary)
    if servers.canary is not None:
        assert servers.canary.connections == 0


# --- everything at once, through the real CLI ------------------------------------


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemoryWatch:
    """Samples the summed RSS of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(self.pid)
            total = sum(_rss_kb(pid) for pid in pids)
            self.peak_kb = max(self.peak_kb, total)
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_all_hostile_feeds_in_one_cycle(db_url: str, servers: Servers, tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    document = {
        "settings": {
            "allow_networks": ["127.0.0.1/32"],
            "send_interval": "0s",
            "fetch_timeout": f"{FETCH_TIMEOUT:g}s",
            "parse_timeout": f"{PARSE_TIMEOUT:g}s",
        },
        "feeds": [{"url": servers.origin.url(c.path), "name": c.name} for c in CASES],
        "watches": [{"channel": "C0TRADE0001", "terms": ["trade deal"]}],
    }
    config.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    db = db_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    base = [sys.executable, "-m", "bot", "--config", str(config), "--db", str(db)]
    started = time.monotonic()
    proc = subprocess.Popen(
        [*base, "poll", "--once", "--all"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )
    with MemoryWatch(proc.pid) as memory:
        out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err

    # Deadline: fetches overlap; at most two slow parses share the workers.
    workers = os.cpu_count() or 1
    slow_parses = 2
    budget = FETCH_TIMEOUT + PARSE_TIMEOUT * -(-slow_parses // workers) + 10.0
    assert elapsed < budget, f"cycle took {elapsed:.1f}s (budget {budget:.1f}s)\n{out}"
    assert memory.peak_kb < MEMORY_LIMIT_MB * 1024, f"peak RSS {memory.peak_kb // 1024} MB"

    # The healthy item alerted, on the console (no Slack token).
    assert "== alert -> C0TRADE0001" in out
    assert "US and India sign trade deal" in out
    assert all(len(line) < 2000 for line in out.splitlines()), "an uncapped line reached output"

    # Every feed has a line: an error with its kind, or a sane success.
    for c in CASES:
        line = next((ln for ln in out.splitlines() if ln.startswith(c.name + " ")), None)
        assert line is not None, f"{c.name} missing from\n{out}"
        found = re.search(r"error: .* \[(\w+)\]$", line)
        kind = found.group(1) if found else "ok"
        assert kind in c.expect, line
    if servers.canary is not None:
        assert servers.canary.connections == 0

    status = subprocess.run(
        [*base, "status"], capture_output=True, text=True, env=env, cwd=str(REPO), timeout=30
    )
    assert status.returncode == 0
    assert "[blocked_address]" in status.stdout and "[parse_timeout]" in status.stdout
    print(
        f"hostile cycle: {elapsed:.1f}s, peak RSS {memory.peak_kb // 1024} MB "
        f"over up to {memory.peak_processes} processes"
    )


def _any_case_pattern(word: str) -> re.Pattern[bytes]:
    """The entity guard's earlier form: a case-insensitive byte pattern for
    `word` in ASCII and UTF-16/32, built character by character."""
    alternatives = []
    for enc in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        parts = []
        for ch in word:
            forms = sorted({ch.lower().encode(enc), ch.upper().encode(enc)})
            parts.append(b"(?:" + b"|".join(re.escape(f) for f in forms) + b")")
        alternatives.append(b"".join(parts))
    return re.compile(b"|".join(alternatives))


def test_entity_guard_finds_what_a_case_insensitive_pattern_finds() -> None:
    """The guard looks for "<!DOCTYPE" and "<!ENTITY" in lower-cased bytes;
    it must agree with the per-character pattern on any bytes: mixed case,
    UTF-16/32 in both byte orders, letters next to non-ASCII bytes."""
    import random

    from bot.parse import _DOCTYPE, _ENTITY, _contains

    rng = random.Random(16)
    pieces = [b"<", b"!", b"\x00", b"\xc4", b"\x9f", b"A", b"z", b" "]
    for word in ("<!DOCTYPE", "<!doctype", "<!DocType", "<!ENTITY", "<!entity"):
        for enc in ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            pieces.append(word.encode(enc))
            pieces.append(word.encode(enc)[:-1])
    references = (
        (_DOCTYPE, _any_case_pattern("<!DOCTYPE")),
        (_ENTITY, _any_case_pattern("<!ENTITY")),
    )
    for _ in range(5000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        for forms, pattern in references:
            assert _contains(data.lower(), forms) == bool(pattern.search(data)), data
