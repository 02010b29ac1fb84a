"""Outbox -> sinks: ordering, shared rate limits, retries, dead letters.

The rules (README "Delivery guarantees"):

* Oldest first per channel. Only the oldest open message of a channel may
  be sent; a message waiting for a retry holds back its own channel and no
  other. A permanent error makes it `dead` and the channel moves on.
* A message is claimed (`pending` -> `sending`, committed) before the sink is
  called and marked `sent` only after the destination accepted it. The
  claim is one transaction that also checks and closes the send gates, so
  two senders (say `run` and a manual `poll --once`) never send the same
  message and never exceed one message per `send_interval` per channel.
* Gates live in the database (`send_gates`): per channel (`send_interval`),
  per destination method/webhook (Slack 429 `Retry-After`, Discord
  `retry_after` and `X-RateLimit-*`). A restart or another process honours them.
* A `sending` message whose sender died (or whose lease ran out), and a
  message whose last attempt went unanswered (timeout, dropped connection,
  5xx), is looked for at the destination before it is sent again (Slack:
  message metadata in the channel history), so a crash neither loses nor
  duplicates an alert.
"""

from __future__ import annotations

import enum
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.channels import channel_kind, display_channel
from bot.messages import FOLLOWUP
from bot.sinks.base import DeliveryError, HistoryLookup, Sink, remote_id_of
from bot.store import DEAD, SENDING, SENT, DatabaseUnavailable, OutboxRow, Store

log = logging.getLogger(__name__)

RETRY_START = 5.0  # first retry after a transient failure, doubling
RETRY_CAP = 3600.0  # never wait more than an hour between two attempts
LEASE = 120.0  # a `sending` message held longer than this is presumed orphaned
# A request its sender put on the wire just before dying can still reach the
# destination a moment later: an orphan is looked for only once its attempt
# is this old, so the lookup never runs ahead of the request it looks for.
IN_FLIGHT = 5.0
RATE_LIMITED_TRIES = 3  # 429s one message may take within one deliver() call
# History requests spent looking for one uncertain attempt (pages and 429s
# alike) before it is sent again as a possible duplicate.
LOOKUP_TRIES = 20


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    recovered: int = 0  # of `sent`: found already delivered when checked after a crash/timeout
    errors: list[str] = field(default_factory=list)


class Outcome(enum.Enum):
    SENT = "sent"
    DEAD = "dead"
    RETRY = "retry"  # transient failure: backoff
    RATE_LIMITED = "rate_limited"  # destination asked us to wait: a gate closed
    SKIPPED = "skipped"  # could not claim it (gate closed, taken by another sender)
    PAUSED = "paused"  # its whole destination is broken (e.g. the Slack token)


def retry_delay(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with jitter (half to full of the nominal delay)."""
    doublings = min(max(0, attempts - 1), 30)  # 2 ** 1024 would not fit in a float
    nominal = min(RETRY_CAP, RETRY_START * 2**doublings)
    return nominal * (0.5 + rng.random() / 2)


def channel_gate(channel: str) -> str:
    return "channel:" + channel


def new_owner() -> str:
    """Identifies one Deliverer: host, process id and a random tag."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str | None) -> bool | None:
    """True/False when we can tell whether the owning process lives (same
    host), None when we cannot (another host, unknown format)."""
    if not owner:
        return False
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return None
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return None
    return True


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
        lease: float = LEASE,
        owner: str | None = None,
        is_alive: Callable[[str | None], bool | None] = owner_alive,
    ) -> None:
        self.store = store
        self.sink_for = sink_for
        self.send_interval = send_interval
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.on_result = on_result  # metrics hook: (channel kind, outcome)
        self.lease = lease
        self.owner = owner or new_owner()
        self.is_alive = is_alive
        # Messages this deliverer may have left `sending` when the database
        # went away mid-send (see recover_interrupted).
        self._unrecorded: set[int] = set()

    # -- the loop ----------------------------------------------------------

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
        max_wait: longest we sleep for a gate (rate limit) before leaving the
        rest for the next call.
        """
        report = DeliveryReport()
        self.recover_interrupted()
        given_up: set[int] = set()  # failed (or were taken) during this call
        limited: Counter[int] = Counter()
        while not should_stop():
            now = self.clock()
            ready, wake_at = self._ready(now, retry_now, given_up)
            if not ready:
                if wake_at == float("inf") or wake_at - now > max_wait:
                    break
                self.sleep(max(0.0, wake_at - now))
                continue
            for message in ready:
                if should_stop():
                    break
                try:
                    outcome = self._send(message, report)
                except DatabaseUnavailable:
                    self._unrecorded.add(message.id)
                    raise
                if outcome is Outcome.PAUSED:
                    break  # the rest of this round may be behind the same pause
                if outcome is Outcome.RETRY:
                    given_up.add(message.id)
                elif outcome is Outcome.RATE_LIMITED:
                    limited[message.id] += 1
                    if limited[message.id] >= RATE_LIMITED_TRIES:
                        given_up.add(message.id)
        return report

    def _ready(
        self, now: float, retry_now: bool, given_up: set[int]
    ) -> tuple[list[OutboxRow], float]:
        """Channel heads that may be sent now, and when the next gate opens."""
        gates = self.store.gates.all()
        paused = self.store.gates.paused()
        ready: list[OutboxRow] = []
        wake_at = float("inf")
        for head in self.store.outbox.channel_heads():
            if head.state == SENDING or head.id in given_up:
                continue  # in flight elsewhere (or orphaned: next call recovers it)
            if paused and self._pause_key(head.channel) in paused:
                continue  # its destination is broken until `newshound retry`
            if not retry_now and head.next_attempt_at > now:
                continue  # in backoff: a later call sends it
            keys = self._gate_keys(head, self.sink_for(head.channel))
            not_before = max((gates.get(k, 0.0) for k in keys), default=0.0)
            if not_before <= now:
                ready.append(head)
            else:
                wake_at = min(wake_at, not_before)
        return ready, wake_at

    def _pause_key(self, channel: str) -> str | None:
        pause_key = getattr(self.sink_for(channel), "pause_key", None)
        return None if pause_key is None else str(pause_key(channel))

    def _gate_keys(self, message: OutboxRow, sink: Sink) -> list[str]:
        """Gates that must be open to send `message`; the last one is the
        destination's own (closed by its 429 answers)."""
        keys = [channel_gate(message.channel)]
        shared_keys = getattr(sink, "shared_gate_keys", None)
        if shared_keys is not None:  # e.g. Discord's global rate limit
            keys.extend(str(key) for key in shared_keys(message.channel))
        lookup_key = getattr(sink, "lookup_key", None)
        looking = message.verify_since is not None and message.verify_tries < LOOKUP_TRIES
        if looking and lookup_key is not None:
            keys.append(str(lookup_key(message.channel)))
        rate_key = getattr(sink, "rate_key", None)
        if rate_key is not None:
            keys.append(str(rate_key(message.channel)))
        return keys

    # -- one message ---------------------------------------------------------

    def send_one(self, message: OutboxRow, report: DeliveryReport) -> bool:
        """Send one message; True if it left the queue (sent or dead)."""
        return self._send(message, report) in (Outcome.SENT, Outcome.DEAD)

    def _send(self, message: OutboxRow, report: DeliveryReport) -> Outcome:
        sink = self.sink_for(message.channel)
        keys = self._gate_keys(message, sink)
        now = self.clock()
        claim = self.store.outbox.claim(
            message.id,
            owner=self.owner,
            now=now,
            gate_keys=keys,
            hold={channel_gate(message.channel): now + self.send_interval},
        )
        if claim.row is None:
            return Outcome.SKIPPED
        message = claim.row
        kind = channel_kind(message.channel)
        try:
            if message.verify_since is not None:
                found = self._look_up(sink, message, report)
                if found is not None:
                    return found
            payload = message.payload
            if message.kind == FOLLOWUP:
                payload = self.with_parent(payload)
            result = sink.send(message.channel, message.kind, payload, message.id)
        except DeliveryError as exc:
            return self._failed(message, exc, keys[-1], kind, report)
        except Exception as exc:  # a sink bug must not leave the message stuck in `sending`
            log.exception("unexpected error sending message %s", message.id)
            error = DeliveryError(f"internal error: {type(exc).__name__}", maybe_delivered=True)
            return self._failed(message, error, keys[-1], kind, report)
        finally:
            # The next message to this channel waits a full interval after
            # this call ended, so arrivals are never closer than the interval.
            self.store.gates.push(channel_gate(message.channel), self.clock() + self.send_interval)
        remote_id, wait = remote_id_of(result)
        done = self.clock()
        if wait:
            self.store.gates.push(keys[-1], done + wait)
        if not self.store.outbox.mark_sent(message.id, remote_id, done, owner=self.owner):
            return self._taken_over(message, "sent")
        report.sent += 1
        self._count(kind, "sent")
        return Outcome.SENT

    def with_parent(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A follow-up's payload with the alert it answers: that message's
        destination id (Slack ts, Discord message id) and content. Never
        before its parent: an alert not yet sent makes the follow-up wait
        (per-channel order sends it first anyway); one that died takes its
        follow-ups with it."""
        parent = self.store.outbox.get(int(payload["parent"]))
        if parent is None or parent.state == DEAD:
            raise DeliveryError("the alert this follows up was never delivered", permanent=True)
        if parent.state != SENT:
            raise DeliveryError("waiting for the alert it follows up to be sent")
        return {**payload, "parent_message": parent.remote_id, "parent_payload": parent.payload}

    def _look_up(self, sink: Sink, message: OutboxRow, report: DeliveryReport) -> Outcome | None:
        """Did an earlier attempt arrive? SENT if so, None to go on sending.
        Raises DeliveryError when the destination cannot tell us yet; where
        the lookup got to is kept for the next try."""
        lookup = HistoryLookup(
            message.verify_since,
            message.verify_until,
            message.verify_cursor,
            message.verify_tries,
        )
        if lookup.tries >= LOOKUP_TRIES:
            # Rate-limited hard, or a very busy channel: one possible
            # duplicate is better than a channel that never gets anything again.
            log.warning(
                "could not check within %d history requests whether message %s reached %s; "
                "sending it again, a duplicate is possible",
                lookup.tries,
                message.id,
                display_channel(message.channel),
            )
            return None
        try:
            find_posted = getattr(sink, "find_posted", None)
            if find_posted is not None:  # recognises the message by its content
                remote_id = find_posted(message, lookup)
            else:
                remote_id = sink.find_sent(
                    message.channel, message.id, since=message.verify_since, lookup=lookup
                )
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            # We cannot look (e.g. no history scope). Losing the alert is
            # worse than a possible repeat: send it again.
            log.warning(
                "cannot check whether message %s reached %s (%s); sending it again, "
                "a duplicate is possible",
                message.id,
                display_channel(message.channel),
                exc.message,
            )
            return None
        finally:
            if lookup.tries != message.verify_tries:  # resume here after a 429 or restart
                self.store.outbox.save_lookup(
                    message.id, lookup.cursor, lookup.tries, owner=self.owner
                )
        if remote_id is None:
            return None
        if not self.store.outbox.mark_sent(message.id, remote_id, self.clock(), owner=self.owner):
            return self._taken_over(message, "found already sent")
        report.sent += 1
        report.recovered += 1
        self._count(channel_kind(message.channel), "recovered")
        log.info("message %s had arrived before an interruption", message.id)
        return Outcome.SENT

    def _failed(
        self,
        message: OutboxRow,
        exc: DeliveryError,
        rate_key: str,
        kind: str,
        report: DeliveryReport,
    ) -> Outcome:
        now = self.clock()
        where = display_channel(message.channel)
        exhausted = exc.give_up_after is not None and message.attempts >= exc.give_up_after
        if exc.permanent or exhausted:
            reason = exc.message
            if exhausted:
                reason += f" (after {message.attempts} attempts)"
            if not self.store.outbox.mark_dead(message.id, reason, now, owner=self.owner):
                return self._taken_over(message, f"dead: {reason}")
            report.dead += 1
            report.errors.append(f"{where}: {reason} (gave up)")
            log.warning("message %s to %s is dead: %s", message.id, where, reason)
            self._count(kind, "dead")
            return Outcome.DEAD
        if exc.pause_key is not None:
            # Not this message's fault either, and nothing gets through until
            # someone fixes the destination: pause it, keep the message.
            if self.store.gates.pause(exc.pause_key, exc.message, now):
                log.error(
                    "%s: delivery paused until the cause is fixed and `newshound retry` "
                    "is run; messages stay pending",
                    exc.message,
                )
            if not self._back_to_pending(message, exc, now):
                return self._taken_over(message, exc.message)
            report.failed += 1
            report.errors.append(f"{where}: {exc.message} (paused)")
            self._count(kind, "paused")
            return Outcome.PAUSED
        if exc.retry_after is not None:
            # Not the message's fault: the destination paces us. Close the
            # gate for everyone; the message keeps its place and goes first.
            self.store.gates.push(exc.gate_key or rate_key, now + exc.retry_after)
            if not self._back_to_pending(message, exc, now):
                return self._taken_over(message, exc.message)
            log.info("%s asked us to wait %.1fs", where, exc.retry_after)
            self._count(kind, "rate_limited")
            return Outcome.RATE_LIMITED
        if not self._back_to_pending(message, exc, now + retry_delay(message.attempts, self.rng)):
            return self._taken_over(message, exc.message)
        report.failed += 1
        report.errors.append(f"{where}: {exc.message} (will retry)")
        log.info("message %s to %s failed, will retry: %s", message.id, where, exc.message)
        self._count(kind, "retry")
        return Outcome.RETRY

    def _back_to_pending(self, message: OutboxRow, exc: DeliveryError, next_at: float) -> bool:
        if exc.maybe_delivered:
            return self.store.outbox.mark_uncertain(
                message.id, exc.message, next_at, owner=self.owner, now=self.clock()
            )
        return self.store.outbox.mark_retry(message.id, exc.message, next_at, owner=self.owner)

    def _taken_over(self, message: OutboxRow, result: str) -> Outcome:
        """Our lease ran out and another sender took the message over while
        we were sending: its state is theirs now, our late result is dropped."""
        log.warning(
            "message %s to %s was taken over by another sender while we sent it "
            "(lease expired); not recording our result (%s)",
            message.id,
            display_channel(message.channel),
            result,
        )
        return Outcome.SKIPPED

    # -- crash recovery ------------------------------------------------------

    def recover_interrupted(self) -> int:
        """Release `sending` messages whose sender died (or held them past the
        lease) back to pending, marked to be looked for before resending.
        Messages of a live sender are left alone. Returns how many were released."""
        now = self.clock()
        released = 0
        # Ours, but whether the destination got them is unknown: the database
        # went away before the outcome was recorded. Looked for now, not
        # after our own lease runs out (their channels would wait till then).
        for outbox_id in sorted(self._unrecorded):
            released += self.store.outbox.release_orphan(outbox_id, self.owner, now)
            self._unrecorded.discard(outbox_id)
        for message in self.orphans(self.store.outbox.in_state(SENDING, limit=1000), now):
            if self.store.outbox.release_orphan(message.id, message.sending_owner, now):
                released += 1
                log.info(
                    "message %s to %s was interrupted mid-send; checking before resending",
                    message.id,
                    display_channel(message.channel),
                )
        return released

    def orphans(self, sending: Sequence[OutboxRow], now: float) -> list[OutboxRow]:
        found = []
        for message in sending:
            sent_at = message.sending_at or 0.0
            expired = sent_at + self.lease < now
            if message.sending_owner == self.owner:
                alive: bool | None = True  # ours: another thread of this deliverer
            else:
                alive = self.is_alive(message.sending_owner)
            if (alive is False and sent_at + IN_FLIGHT <= now) or expired:
                found.append(message)
        return found

    def _count(self, kind: str, outcome: str) -> None:
        if self.on_result is not None:
            self.on_result(kind, outcome)
