from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from feedgen import FeedEntry, rss

from bot.models import FeedError, Item, ParsedFeed
from bot.parse import parse_feed
from bot.parsepool import ParsePool

FEED = rss([FeedEntry(title=f"Story {i}", link=f"https://example.org/{i}") for i in range(5)])


# Module-level so the "spawn" start method can import them in the worker.
def sleepy_parse(body: bytes, **kwargs: Any) -> ParsedFeed:
    if body == b"sleep":
        time.sleep(60)
    return ParsedFeed(title=body.decode(), items=(Item(title="x"),))


def dying_parse(body: bytes, **kwargs: Any) -> ParsedFeed:
    if body == b"die":
        os._exit(3)
    return ParsedFeed(title="alive", items=())


def greedy_parse(body: bytes, **kwargs: Any) -> ParsedFeed:
    blob = bytearray(2 * 1024 * 1024 * 1024)  # 2 GiB: over the worker's limit
    return ParsedFeed(title=str(len(blob)), items=())


def pid_parse(body: bytes, **kwargs: Any) -> ParsedFeed:
    return ParsedFeed(title=str(os.getpid()), items=())


def exists(pid: int) -> bool:
    """Still in the process table (running or an unreaped zombie)."""
    return os.path.exists(f"/proc/{pid}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    with ParsePool(2, timeout=10.0) as p:
        yield p


def test_same_result_as_in_process(pool: ParsePool) -> None:
    url = "https://example.org/feed.xml"
    assert pool.parse(FEED, url=url, max_items=3) == parse_feed(FEED, url=url, max_items=3)


def test_feed_errors_come_back_as_feed_errors(pool: ParsePool) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss>&a;</rss>'
    with pytest.raises(FeedError) as info:
        pool.parse(laughs, url="https://example.org/")
    assert info.value.kind == "parse"
    assert "entit" in info.value.message
    with pytest.raises(FeedError) as info:
        pool.parse(b"", url="https://example.org/")
    assert info.value.kind == "parse"
    assert pool.replaced == 0


def test_quadratic_author_regex_is_cut_at_the_time_limit() -> None:
    author = "a" * 200_000  # feedparser's email regex needs minutes on this
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>x</title><author>{author}</author></item></channel></rss>"
    ).encode()
    with ParsePool(1, timeout=1.5) as pool:
        pool.parse(FEED, url="https://example.org/")  # worker warm
        started = time.monotonic()
        with pytest.raises(FeedError) as info:
            pool.parse(body, url="https://example.org/")
        assert time.monotonic() - started < 4.0
        assert info.value.kind == "parse_timeout"
        assert pool.replaced == 1
        # The replacement worker serves the next job.
        assert pool.parse(FEED, url="https://example.org/").title == "Test Feed"
        assert pool.started == 2


def test_timeout_costs_only_that_job() -> None:
    with ParsePool(2, timeout=2.0, parse_function=sleepy_parse) as pool:
        pool.start()  # both workers up: the quick job must not wait for a spawn
        errors: list[FeedError] = []

        def slow() -> None:
            try:
                pool.parse(b"sleep", url="u")
            except FeedError as exc:
                errors.append(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert pool.parse(b"quick", url="u").title == "quick"
        assert time.monotonic() - started < 1.5  # not stuck behind the slow job
        thread.join(10)
        assert [e.kind for e in errors] == ["parse_timeout"]


def test_dead_worker_is_replaced() -> None:
    with ParsePool(1, timeout=10.0, parse_function=dying_parse) as pool:
        with pytest.raises(FeedError) as info:
            pool.parse(b"die", url="u")
        assert info.value.kind == "parse_crash"
        assert pool.parse(b"fine", url="u").title == "alive"
        assert pool.replaced == 1


def test_worker_that_died_while_idle_is_replaced_transparently() -> None:
    with ParsePool(1, timeout=10.0, parse_function=pid_parse) as pool:
        first = int(pool.parse(b"x", url="u").title or 0)
        os.kill(first, 9)
        time.sleep(0.3)
        second = int(pool.parse(b"x", url="u").title or 0)
        assert second != first


def test_memory_limit_turns_into_a_parse_error() -> None:
    with ParsePool(1, timeout=20.0, memory_limit_mb=512, parse_function=greedy_parse) as pool:
        with pytest.raises(FeedError) as info:
            pool.parse(b"x", url="u")
        assert info.value.kind in ("parse", "parse_crash")
        assert "large" in info.value.message or "died" in info.value.message


def test_many_threads_share_a_few_workers() -> None:
    url = "https://example.org/feed.xml"
    expected = parse_feed(FEED, url=url)
    results: list[ParsedFeed] = []
    lock = threading.Lock()
    with ParsePool(2, timeout=20.0) as pool:

        def work() -> None:
            for _ in range(5):
                parsed = pool.parse(FEED, url=url)
                with lock:
                    results.append(parsed)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert pool.started <= 2
    assert len(results) == 40
    assert all(r == expected for r in results)


def test_close_leaves_no_processes_and_refuses_new_jobs() -> None:
    pool = ParsePool(2, timeout=10.0, parse_function=pid_parse)
    with pool:
        barrier = threading.Barrier(2)

        def two_at_once() -> None:
            barrier.wait()
            pool.parse(b"x", url="u")

        threads = [threading.Thread(target=two_at_once) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        pids = pool.pids()
        assert 1 <= len(pids) <= 2
        assert all(alive(pid) for pid in pids)
    assert not any(exists(pid) for pid in pids)  # stopped and reaped: no zombies
    assert not [p for p in multiprocessing.active_children() if p.name == "newshound-parser"]
    with pytest.raises(FeedError) as info:
        pool.parse(b"x", url="u")
    assert info.value.kind == "parse_unavailable"
    pool.close()  # idempotent


def test_close_kills_a_busy_worker_after_the_grace_period() -> None:
    pool = ParsePool(1, timeout=60.0, parse_function=sleepy_parse)
    errors: list[FeedError] = []

    def slow() -> None:
        try:
            pool.parse(b"sleep", url="u")
        except FeedError as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 30
    while not pool.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = pool.pids()
    time.sleep(0.3)
    started = time.monotonic()
    pool.close(grace=0.5)
    assert time.monotonic() - started < 5
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert not any(exists(pid) for pid in pids)


def test_fork_is_refused() -> None:
    with pytest.raises(ValueError):
        ParsePool(1, context="fork")


def test_start_brings_every_worker_up_front() -> None:
    from bot.parsepool import ParsePool

    with ParsePool(size=2) as pool:
        pool.start()
        assert pool.started == 2 and len(pool.pids()) == 2
        parsed = pool.parse(
            b'<rss version="2.0"><channel><title>t</title><item><title>a</title></item>'
            b"</channel></rss>",
            url="http://example.org/",
        )
        assert [item.title for item in parsed.items] == ["a"]
        assert pool.started == 2  # no new worker was needed
