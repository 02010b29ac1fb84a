"""Outbox -> sinks: ordering, per-channel rate limit, retries, dead letters.

A message is marked `sending` (committed) before the sink is called and
`sent` only after the destination accepted it. A row found in `sending` at
start-up means we crashed mid-send: the sink is asked whether the message
arrived (Slack: message metadata in the channel history) before it is sent
again, so a crash neither loses nor duplicates an alert.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.channels import channel_kind, display_channel
from bot.sinks.base import DeliveryError, Sink
from bot.store import SENDING, OutboxRow, Store

log = logging.getLogger(__name__)

RETRY_START = 5.0  # first retry after a transient failure, doubling
RETRY_CAP = 3600.0


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    recovered: int = 0
    errors: list[str] = field(default_factory=list)


def retry_delay(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with jitter (half to full of the nominal delay)."""
    nominal = min(RETRY_CAP, RETRY_START * 2 ** max(0, attempts - 1))
    return nominal * (0.5 + rng.random() / 2)


class Deliverer:
    def __init__(
        self,
        store: Store,
        sink_for: Callable[[str], Sink],
        *,
        send_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.sink_for = sink_for
        self.send_interval = send_interval
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.on_result = on_result  # metrics hook: (channel kind, outcome)
        self._last_send: dict[str, float] = {}
        # Destination kind -> time before which no call may be made (429 Retry-After).
        self._blocked_until: dict[str, float] = {}
        self._recovered = False

    def deliver(
        self,
        *,
        retry_now: bool = False,
        max_wait: float = 60.0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> DeliveryReport:
        """Send every due message, oldest first per channel.

        retry_now: also try messages still in their retry backoff (a manual
        `poll --once` is a request to try now), each at most once per call.
        max_wait: longest we sleep for a rate limit before leaving the rest
        for the next call.
        """
        report = DeliveryReport()
        if not self._recovered:
            # Only this process's first call: later `sending` rows are our own.
            report.recovered = self.recover_interrupted()
            self._recovered = True
        tried_failed: set[int] = set()
        while not should_stop():
            now = self.clock()
            horizon = float("inf") if retry_now else now
            heads = [m for m in self.store.due_messages(horizon) if m.id not in tried_failed]
            if not heads:
                break
            ready: list[OutboxRow] = []
            wake_at = float("inf")
            for message in heads:
                not_before = self._not_before(message.channel)
                if not_before <= now:
                    ready.append(message)
                else:
                    wake_at = min(wake_at, not_before)
            if not ready:
                if wake_at - now > max_wait:
                    break
                self.sleep(max(0.0, wake_at - now))
                continue
            for message in ready:
                if should_stop():
                    break
                if not self.send_one(message, report):
                    tried_failed.add(message.id)
        return report

    def _not_before(self, channel: str) -> float:
        last = self._last_send.get(channel, 0.0)
        blocked = self._blocked_until.get(channel_kind(channel), 0.0)
        return max(last + self.send_interval, blocked)

    def send_one(self, message: OutboxRow, report: DeliveryReport) -> bool:
        """Send one message; True if it left the queue (sent or dead)."""
        kind = channel_kind(message.channel)
        sink = self.sink_for(message.channel)
        self.store.mark_sending(message.id, self.clock())
        self._last_send[message.channel] = self.clock()
        try:
            remote_id = sink.send(message.channel, message.kind, message.payload, message.id)
        except DeliveryError as exc:
            return self._failed(message, exc, kind, report)
        self.store.mark_sent(message.id, remote_id, self.clock())
        report.sent += 1
        self._count(kind, "sent")
        return True

    def _failed(
        self, message: OutboxRow, exc: DeliveryError, kind: str, report: DeliveryReport
    ) -> bool:
        now = self.clock()
        where = display_channel(message.channel)
        if exc.permanent:
            self.store.mark_dead(message.id, exc.message, now)
            report.dead += 1
            report.errors.append(f"{where}: {exc.message} (gave up)")
            log.warning("message %s to %s is dead: %s", message.id, where, exc.message)
            self._count(kind, "dead")
            return True
        if exc.retry_after is not None:
            self._blocked_until[kind] = max(
                self._blocked_until.get(kind, 0.0), now + exc.retry_after
            )
            next_attempt = now + exc.retry_after
        else:
            next_attempt = now + retry_delay(message.attempts + 1, self.rng)
        self.store.mark_retry(message.id, exc.message, next_attempt)
        report.failed += 1
        report.errors.append(f"{where}: {exc.message} (will retry)")
        log.info("message %s to %s failed, will retry: %s", message.id, where, exc.message)
        self._count(kind, "retry")
        return False

    def recover_interrupted(self) -> int:
        """Resolve messages left in `sending` by a crash: sent, or back to pending."""
        recovered = 0
        for message in self.store.messages(SENDING, limit=1000):
            sink = self.sink_for(message.channel)
            try:
                remote_id = sink.find_sent(message.channel, message.id)
            except DeliveryError as exc:
                log.info("cannot check %s yet: %s", display_channel(message.channel), exc.message)
                continue
            if remote_id is not None:
                self.store.mark_sent(message.id, remote_id, self.clock())
                recovered += 1
            else:
                self.store.mark_retry(message.id, "interrupted; resending", self.clock())
        return recovered

    def _count(self, kind: str, outcome: str) -> None:
        if self.on_result is not None:
            self.on_result(kind, outcome)
