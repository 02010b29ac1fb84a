"""What every sink promises the deliverer."""

from __future__ import annotations

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
    broken: the destination itself refused us (Discord 401/403/404: webhook
    deleted, bot removed, permission missing). Its messages wait and it is
    not called again until its `fingerprint` changes or `newshound retry` runs
    (Discord bans IPs that keep making invalid requests).
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
        broken: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        self.gate_key = gate_key
        self.give_up_after = give_up_after
        self.broken = broken


@dataclass(frozen=True)
class Delivered:
    """A successful send that also asks for a pause before the next call to
    the same destination (e.g. Discord's `X-RateLimit-Remaining: 0`)."""

    remote_id: str | None
    wait: float = 0.0


class Sink(Protocol):
    def send(
        self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int
    ) -> str | Delivered | None:
        """Deliver one message; return the destination's message id if it has one."""
        ...

    def find_sent(self, channel: str, outbox_id: int, since: float | None = None) -> str | None:
        """After a crash or an unanswered attempt: the id of a message already
        delivered for this outbox row (posted at or after `since`, epoch
        seconds), or None when it provably was not (or cannot be known)."""
        ...


def remote_id_of(result: str | Delivered | None) -> tuple[str | None, float]:
    """(destination message id, seconds to wait before the next call)."""
    if isinstance(result, Delivered):
        return result.remote_id, max(0.0, result.wait)
    return result, 0.0
