"""A loopback farm of generated feeds for the benchmarks (never the internet).

It runs in its own process (like real feed servers, it must not share the
poller's interpreter lock); the bodies are generated in both processes from
the same seed, so they are identical.

Every feed is RSS 2.0 with realistic ~300-byte HTML summaries; the server
supports ETag / If-None-Match so a second cycle over unchanged feeds is cheap,
and counts the requests for each feed (`FeedFarm.requests`): a benchmark of
several workers checks from it that each feed was fetched exactly once.
With `syndicated` > 0 that share of the items are wire copies: one of a pool
of wire stories, each carried by about `COPIES` feeds under its own link, the
outlet's name after the headline and the same lead (SPEC §8: one story).
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

WORDS = (  # noqa: SIM905 - a readable word list
    "trade deal tariff export import semiconductor chip supply chain minister talks "
    "negotiation agreement market shares growth inflation bank rate policy energy "
    "oil gas climate summit election court ruling budget deficit tax reform union "
    "strike factory output jobs wages housing prices retail sales bond yields "
    "currency rupee dollar euro yen steel aluminium copper farm wheat rice shipping "
    "port logistics airline travel tourism health vaccine hospital research "
    "university startup funding software cloud data privacy security cyber attack "
    "defence treaty border sanctions "
).split()
PLACES = (  # noqa: SIM905 - a readable word list
    "India Delhi Mumbai Washington Brussels Beijing Tokyo London Berlin Paris "
).split()


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words)), rng.choice(PLACES))
    return " ".join(words).capitalize()


COPIES = 4  # feeds that carry one wire story, on average


def wire_story(story: int) -> tuple[str, str]:
    """Headline and lead of wire story `story` (the same in every feed)."""
    rng = random.Random(7_000_001 + story)
    place = rng.choice(PLACES)
    title = f"{sentence(rng, 7)} in {place}"
    lead = (
        f"{place.upper()} (Reuters) - {sentence(rng, 16)} {rng.randrange(10, 999)} "
        f"{rng.choice(PLACES)} {sentence(rng, 14)}, {rng.choice(PLACES)} said on Friday."
    )
    return title, lead


def make_feed(
    index: int, items: int, seed: int = 0, syndicated: float = 0.0, feeds: int = 1
) -> bytes:
    rng = random.Random(seed * 1_000_003 + index)
    wire_pool = max(1, int(feeds * items * syndicated / COPIES))
    now = datetime.now(UTC)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
        f"<title>Bench Feed {index}</title><link>http://bench.example/{index}</link>",
        "<description>generated</description>",
    ]
    for n in range(items):
        title = escape(sentence(rng, 8))
        summary = (
            f"<p>{sentence(rng, 14)}. <b>{sentence(rng, 4)}</b> "
            f'<a href="http://bench.example/{index}/{n}/more">{sentence(rng, 3)}</a> '
            f"{sentence(rng, 12)}.</p>"
        )
        if syndicated and rng.random() < syndicated:
            wire_title, lead = wire_story(rng.randrange(wire_pool))
            title = escape(f"{wire_title} - Bench Feed {index}")
            summary = f"<p>{lead}</p>"
        published = format_datetime(now - timedelta(minutes=index % 60 + n * 7))
        parts.append(
            f"<item><title>{title}</title>"
            f"<link>http://bench.example/{index}/{n}</link>"
            f"<guid>http://bench.example/{index}/{n}</guid>"
            f"<pubDate>{published}</pubDate>"
            f"<description>{escape(summary)}</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


COMMON_PHRASES = 8  # terms built from the feeds' everyday vocabulary (the rest are names)


def make_terms(count: int, seed: int = 1) -> list[str]:
    """Watch terms like a real watch list: a few phrases that news text uses
    often (at most COMMON_PHRASES, some with an exclusion), the rest specific
    names ("Pax Silica"-like) that rarely occur. Keeping the common part fixed
    makes 10 vs 10,000 terms compare the matcher, not the number of alerts."""
    rng = random.Random(seed)
    common: set[str] = set()
    wanted_common = min(COMMON_PHRASES, count)
    while len(common) < wanted_common:
        first, second = rng.choice(WORDS), rng.choice(WORDS)
        if rng.random() < 0.25:
            common.add(f"{first} {second} -{rng.choice(PLACES)}")
        else:
            common.add(f"{first} {second}")
    names: set[str] = set()
    while len(common) + len(names) < count:
        name = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        names.add(f"{name.capitalize()} {rng.choice(['Corp', 'Silica', 'Accord', 'Pact'])}")
    return sorted(common) + sorted(names)


def _serve(feeds: int, items: int, syndicated: float, port_queue: Any, counts: Any) -> None:
    asyncio.run(_serve_async(_Bodies(feeds, items, syndicated), port_queue, counts))


async def _serve_async(farm: _Bodies, port_queue: Any, counts: Any) -> None:
    """A minimal keep-alive HTTP/1.1 server on asyncio: fast enough that the
    farm, not the poller, is never what a benchmark measures."""
    ok = [
        (
            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
            f'Content-Length: {len(body)}\r\nETag: "{etag}"\r\n\r\n'
        ).encode()
        + body
        for body, etag in zip(farm.bodies, farm.etags, strict=True)
    ]
    not_modified = [
        f'HTTP/1.1 304 Not Modified\r\nETag: "{etag}"\r\nContent-Length: 0\r\n\r\n'.encode()
        for etag in farm.etags
    ]
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if " " in lines[0] else ""
                etag = next(
                    (
                        ln.split(":", 1)[1].strip()
                        for ln in lines
                        if ln.lower().startswith("if-none-match:")
                    ),
                    None,
                )
                try:
                    index = int(path.rsplit("/", 1)[-1].split(".")[0])
                    counts[index] += 1  # one event loop: no lock needed
                    response = (
                        not_modified[index] if etag == f'"{farm.etags[index]}"' else ok[index]
                    )
                except (ValueError, IndexError):
                    response = missing
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    # Real feeds live on many hosts; the poller limits connections per host,
    # so the farm answers on HOSTS loopback addresses (feed i on host i % HOSTS).
    first = await asyncio.start_server(handle, _host(0), 0, backlog=1024)
    port = first.sockets[0].getsockname()[1]
    servers = [first] + [
        await asyncio.start_server(handle, _host(n), port, backlog=1024) for n in range(1, HOSTS)
    ]
    port_queue.put(port)
    await asyncio.gather(*(server.serve_forever() for server in servers))


HOSTS = 16


def _host(index: int) -> str:
    return f"127.0.0.{1 + index % HOSTS}"


class _Bodies:
    def __init__(self, feeds: int, items: int, syndicated: float = 0.0) -> None:
        self.bodies = [
            make_feed(i, items, syndicated=syndicated, feeds=feeds) for i in range(feeds)
        ]
        self.etags = [hashlib.sha1(b).hexdigest() for b in self.bodies]


class FeedFarm(_Bodies):
    """Serves /feed/<i>.xml for i in range(feeds) from a separate process."""

    def __init__(self, feeds: int, items: int, syndicated: float = 0.0) -> None:
        super().__init__(feeds, items, syndicated)
        self._args = (feeds, items, syndicated)
        self.port = 0
        self._process: Any = None
        # Requests per feed, shared with the serving process.
        self._counts: Any = multiprocessing.get_context("spawn").Array("i", feeds, lock=False)

    @property
    def pid(self) -> int:
        return int(self._process.pid) if self._process is not None else 0

    def url(self, index: int) -> str:
        return f"http://{_host(index)}:{self.port}/feed/{index}.xml"

    def urls(self) -> list[str]:
        return [self.url(i) for i in range(len(self.bodies))]

    def requests(self) -> list[int]:
        """Requests served for each feed since the start or the last reset."""
        return list(self._counts)

    def reset_requests(self) -> None:
        for index in range(len(self._counts)):
            self._counts[index] = 0

    def __enter__(self) -> FeedFarm:
        ctx = multiprocessing.get_context("spawn")
        ports = ctx.Queue()
        self._process = ctx.Process(
            target=_serve, args=(*self._args, ports, self._counts), daemon=True
        )
        self._process.start()
        self.port = ports.get(timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.kill()
        self._process.join()


CHANNELS = 10


def write_config(path: Path, urls: list[str], terms: list[str]) -> None:
    """A feeds.yaml for the benchmarks: every feed, the terms spread over
    CHANNELS channels (more when one would pass the per-channel limit)."""
    from bot.commands import MAX_TERMS_PER_CHANNEL

    channels = max(CHANNELS, -(-len(terms) // MAX_TERMS_PER_CHANNEL))
    per_channel = [terms[i::channels] for i in range(channels)]
    document = {
        "settings": {
            "allow_networks": ["127.0.0.0/8"],
            "max_age": "0",
            "fetch_timeout": "60s",
            "send_interval": "0s",
        },
        "feeds": [{"url": u} for u in urls],
        "watches": [
            {"channel": f"C0BENCH{n:04d}", "terms": chunk}
            for n, chunk in enumerate(per_channel)
            if chunk
        ],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
