"""`newshound demo`: the real pipeline over bundled sample feeds, offline.

The sample feeds are served from a loopback HTTP server started here, the
config is a real feeds.yaml written to a temporary folder (with the loopback
network explicitly allowed), and alerts go to the console sink.

The demo always works in a fresh database in that temporary folder, never in
the one `--db` / `NEWSHOUND_DB` name: delivering into the console there would
mark a real deployment's pending alerts as sent (and print its channels).

Every run prints the same: the sample feeds are dated relative to a fixed
moment (DEMO_NOW) that the poller also takes for now, the feeds are
processed in config order rather than as their fetches finish, and nothing
printed depends on the server's port or on timing.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from bot.config import Config, load_config
from bot.demo.explain import near_miss
from bot.durations import parse_duration
from bot.poll import CycleReport
from bot.store import Store
from bot.watchlist import watch_entries

# "Now" for the demo: the sample feeds' dates and the poller's clock.
DEMO_NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)

FEEDS = {
    "/world.xml": ("world.xml", "application/rss+xml; charset=utf-8", "rfc822"),
    "/markets.xml": ("markets.xml", "application/atom+xml; charset=utf-8", "iso"),
    "/policy.json": ("policy.json", "application/feed+json", "iso"),
}

DEMO_CONFIG = """\
settings:
  interval: 10m
  max_age: 2d
  max_alerts_per_poll: 10
  send_interval: 0s
  allow_networks: [127.0.0.1/32]   # the demo server; real feeds never need this
feeds:
  - url: {base}/world.xml
    tags: [world]
  - url: {base}/markets.xml
    tags: [markets]
  - url: {base}/policy.json
    name: Policy Notes
watches:
  - channel: C0TRADEDESK
    terms: ["trade deal", "Pax Silica", tariff]
  - channel: C0CHIPSDESK
    terms: [semiconductor -rumor]
    feeds: [markets]
"""

_PLACEHOLDER = re.compile(r"\{\{ago:([0-9a-z]+)\}\}")


def render_feed(name: str, date_style: str, now: datetime) -> bytes:
    """Sample feeds carry relative dates so the demo is always 'fresh'."""
    text = resources.files("bot.demo").joinpath(name).read_text(encoding="utf-8")

    def stamp(match: re.Match[str]) -> str:
        when = now - timedelta(seconds=parse_duration(match.group(1)))
        return format_datetime(when) if date_style == "rfc822" else when.isoformat()

    return _PLACEHOLDER.sub(stamp, text).encode("utf-8")


class _DemoHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        entry = FEEDS.get(self.path)
        if entry is None:
            self.send_error(404)
            return
        name, content_type, style = entry
        body = render_feed(name, style, DEMO_NOW)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the demo output to the alerts


def filtered_reasons(report: CycleReport, config: Config, store: Store) -> Counter[str]:
    """Why the items that came close to a watch term did not alert: held back
    by the poller (too old, ...) or decided by the matcher (an exclusion, only
    part of a word). Items that alerted somewhere are not counted."""
    reasons = Counter(report.held_back)
    stored = store.stories.recent(limit=10_000)
    alerted = {item_id for _channel, item_id in store.outbox.alerted([s.id for s in stored])}
    rows = store.feeds.all()
    urls = {row.id: row.url for row in rows}
    watches = watch_entries(config, store.terms.all(), {r.url: r.title for r in rows if r.title})
    for entry in stored:
        if entry.id not in alerted:
            reason = near_miss(entry.item, urls[entry.feed_id], watches)
            if reason is not None:
                reasons[reason] += 1
    return reasons


def filtered_text(reasons: Counter[str]) -> str:
    """e.g. "3 items filtered: 1 excluded by -rumor, 1 older than max_age, ..." """
    total = sum(reasons.values())
    if not total:
        return "no item was filtered"
    parts = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return f"{total} {'item' if total == 1 else 'items'} filtered: {parts}"


def run_demo() -> int:
    from bot.cli import print_cycle, run_poll_cycle
    from bot.wiring import sinks_for

    server = ThreadingHTTPServer(("127.0.0.1", 0), _DemoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory(prefix="newshound-demo-") as tmp:
            config_path = Path(tmp) / "feeds.yaml"
            config_path.write_text(DEMO_CONFIG.format(base=base), encoding="utf-8")
            config = load_config(config_path)
            print(
                f"newshound demo: {len(config.feeds)} sample feeds as of "
                f"{DEMO_NOW:%Y-%m-%d %H:%M} UTC, served from a loopback server, "
                "in a fresh temporary database\n"
            )
            with Store(Path(tmp) / "demo.db") as store:
                report, delivery = run_poll_cycle(
                    config,
                    store,
                    sinks_for(store, console_only=True),
                    all_feeds=True,
                    clock=DEMO_NOW.timestamp,
                    in_order=True,
                )
                print_cycle(report, delivery, store, timing=False)
                reasons = filtered_reasons(report, config, store)
            print(
                f"\ndemo summary: {len(report.feeds)} feeds, {report.items} items, "
                f"{report.alerts} matches, {delivery.sent} messages delivered, "
                f"{report.duplicates} duplicates suppressed; {filtered_text(reasons)}"
            )
    finally:
        server.shutdown()
        server.server_close()
    return 0
