"""What every sink promises the deliverer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class DeliveryError(Exception):
    """The destination did not accept a message.

    permanent: retrying cannot help (channel gone, bad token, webhook deleted);
    retry_after: the destination asked us to wait this many seconds before
    the next call to `gate_key` (default: the sink's `rate_key` for the channel);
    maybe_delivered: we never heard an answer (timeout, dropped connection,
    5xx), so the message may have arrived: look for it before resending;
    give_up_after: an answer we do not know (neither an outage nor a known
    permanent error) is retried this many attempts, then the message is dead;
    pause_key: the whole destination is broken, not this message (a revoked
    Slack token): every message behind this key waits, pending, until
    `newshound retry` clears the pause.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
        gate_key: str | None = None,
        give_up_after: int | None = None,
        pause_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        self.gate_key = gate_key
        self.give_up_after = give_up_after
        self.pause_key = pause_key


@dataclass(frozen=True)
class Delivered:
    """A successful send that also asks for a pause before the next call to
    the same destination (e.g. Discord's `X-RateLimit-Remaining: 0`)."""

    remote_id: str | None
    wait: float = 0.0


@dataclass
class HistoryLookup:
    """A search for an attempt that may have arrived, resumable across rate
    limits and restarts: `find_sent` advances `cursor` and counts `tries`
    (one per history request) as it goes, also when it raises."""

    since: float | None  # the first attempt that may have arrived
    until: float | None = None  # when the last such attempt was recorded
    cursor: str | None = None  # the next page to read (None: the first)
    tries: int = 0


class Sink(Protocol):
    def send(
        self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int
    ) -> str | Delivered | None:
        """Deliver one message; return the destination's message id if it has one."""
        ...

    def find_sent(
        self,
        channel: str,
        outbox_id: int,
        since: float | None = None,
        lookup: HistoryLookup | None = None,
    ) -> str | None:
        """After a crash or an unanswered attempt: the id of a message already
        delivered for this outbox row (posted at or after `since`, epoch
        seconds; or within `lookup`'s window, resuming where it left off),
        or None when it provably was not (or cannot be known)."""
        ...


def remote_id_of(result: str | Delivered | None) -> tuple[str | None, float]:
    """(destination message id, seconds to wait before the next call)."""
    if isinstance(result, Delivered):
        return result.remote_id, max(0.0, result.wait)
    return result, 0.0


def build_or_refuse(
    build: Callable[[str, dict[str, Any]], dict[str, Any]], kind: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """The destination's message for a payload. A payload that cannot be
    built never will be: the message is dead with the reason, never retried
    as a transport error that "may have been delivered" (which would hold
    back its channel for good)."""
    try:
        return build(kind, payload)
    except Exception as exc:
        raise DeliveryError(
            f"message could not be built ({type(exc).__name__}: {str(exc)[:200]})", permanent=True
        ) from None
