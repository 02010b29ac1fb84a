"""Prometheus metrics for `newshound run`, in a registry of their own.

Counters are fed from the reports the poll cycle and the deliverer already
return; the outbox and feed gauges are read from the database at scrape time
so they are right even after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from bot.deliver import DeliveryReport
from bot.poll import CycleReport
from bot.records import ASSEMBLING, DEAD, PENDING, SENDING, SENT

CONTENT_TYPE = CONTENT_TYPE_LATEST
CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _StoreCollector(Collector):
    """Gauges computed from the database on every scrape."""

    def __init__(self, snapshot: Callable[[], dict[str, int]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        try:
            values = self.snapshot()
        except Exception:  # a scrape must never fail because the db is busy
            return []
        alerts = GaugeMetricFamily(
            "newshound_alerts", "Alert messages in the outbox by state", labels=["state"]
        )
        for state in (PENDING, SENT, DEAD):
            alerts.add_metric([state], values.get(state, 0))
        feeds = GaugeMetricFamily("newshound_feeds", "Configured feeds")
        feeds.add_metric([], values.get("feeds", 0))
        failing = GaugeMetricFamily("newshound_feeds_failing", "Feeds whose last poll failed")
        failing.add_metric([], values.get("feeds_failing", 0))
        return [alerts, feeds, failing]


class Metrics:
    def __init__(self, snapshot: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.feeds_polled = Counter(
            "newshound_feeds_polled", "Feed polls by outcome", ["status"], registry=r
        )
        self.fetch_errors = Counter(
            "newshound_fetch_errors", "Failed feed polls by kind of error", ["kind"], registry=r
        )
        self.items_parsed = Counter("newshound_items_parsed", "Items read from feeds", registry=r)
        self.new_items = Counter(
            "newshound_new_items", "Stories seen for the first time", registry=r
        )
        self.matches = Counter(
            "newshound_matches", "Alerts queued (story x channel matches)", registry=r
        )
        self.duplicates = Counter(
            "newshound_duplicates",
            "Stories suppressed as already seen via another feed",
            registry=r,
        )
        self.deliveries = Counter(
            "newshound_deliveries", "Delivery attempts by outcome", ["outcome"], registry=r
        )
        self.cycles = Counter(
            "newshound_cycles", "Poll cycles that polled at least one feed", registry=r
        )
        self.cycle_duration = Histogram(
            "newshound_cycle_duration_seconds",
            "Duration of poll cycles that polled at least one feed",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.commands = Counter(
            "newshound_slash_commands", "/watch commands handled by subcommand", ["sub"], registry=r
        )
        r.register(_StoreCollector(snapshot))

    def observe_cycle(self, report: CycleReport) -> None:
        if not report.feeds:
            return
        self.cycles.inc()
        self.cycle_duration.observe(report.duration)
        for feed in report.feeds:
            self.feeds_polled.labels(feed.status).inc()
            if feed.status == "error":
                self.fetch_errors.labels(feed.error_kind or "unknown").inc()
        self.items_parsed.inc(report.items)
        self.new_items.inc(report.new_items)
        self.matches.inc(report.alerts)
        self.duplicates.inc(report.duplicates)

    def observe_delivery(self, report: DeliveryReport) -> None:
        for outcome, count in (
            ("sent", report.sent),
            ("retry", report.failed),
            ("dead", report.dead),
        ):
            if count:
                self.deliveries.labels(outcome).inc(count)

    def observe_command(self, sub: str) -> None:
        known = {"add", "remove", "list", "help", "test", "feeds"}
        self.commands.labels(sub if sub in known else "other").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def outbox_snapshot(counts: dict[str, int]) -> dict[str, int]:
    """Outbox states as the metrics report them (in flight counts as pending)."""
    return {
        PENDING: counts.get(PENDING, 0) + counts.get(SENDING, 0) + counts.get(ASSEMBLING, 0),
        SENT: counts.get(SENT, 0),
        DEAD: counts.get(DEAD, 0),
    }
