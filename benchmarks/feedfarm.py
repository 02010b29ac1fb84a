"""A loopback farm of generated feeds for the benchmarks (never the internet).

Every feed is RSS 2.0 with realistic ~300-byte HTML summaries; the server
supports ETag / If-None-Match so a second cycle over unchanged feeds is cheap.
"""

from __future__ import annotations

import hashlib
import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

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


def make_feed(index: int, items: int, seed: int = 0) -> bytes:
    rng = random.Random(seed * 1_000_003 + index)
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


def make_terms(count: int, seed: int = 1) -> list[str]:
    """Watch terms like real ones: mostly specific names that rarely occur,
    some two- and three-word phrases from the feeds' vocabulary."""
    rng = random.Random(seed)
    terms: set[str] = set()
    while len(terms) < count:
        kind = rng.random()
        if kind < 0.2:
            terms.add(f"{rng.choice(WORDS)} {rng.choice(WORDS)}")
        elif kind < 0.3:
            terms.add(f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(WORDS)}")
        elif kind < 0.35:
            terms.add(f"{rng.choice(WORDS)} {rng.choice(WORDS)} -{rng.choice(PLACES)}")
        else:
            name = "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
            terms.add(f"{name.capitalize()} {rng.choice(['Corp', 'Silica', 'Accord', 'Pact'])}")
    return sorted(terms)


class FeedFarm:
    """Serves /feed/<i>.xml for i in range(feeds) from memory."""

    def __init__(self, feeds: int, items: int) -> None:
        self.bodies = [make_feed(i, items) for i in range(feeds)]
        self.etags = [hashlib.sha1(b).hexdigest() for b in self.bodies]
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    index = int(self.path.rsplit("/", 1)[-1].split(".")[0])
                    body = farm.bodies[index]
                except (ValueError, IndexError):
                    self.send_error(404)
                    return
                etag = f'"{farm.etags[index]}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 512
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/feed/{index}.xml"

    def urls(self) -> list[str]:
        return [self.url(i) for i in range(len(self.bodies))]

    def __enter__(self) -> FeedFarm:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
