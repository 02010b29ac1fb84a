"""What every sink promises the deliverer."""

from __future__ import annotations

from typing import Any, Protocol


class DeliveryError(Exception):
    """The destination did not accept a message.

    permanent: retrying cannot help (channel gone, bad token, webhook deleted);
    retry_after: the destination asked us to wait this many seconds.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


class Sink(Protocol):
    def send(self, channel: str, kind: str, payload: dict[str, Any], outbox_id: int) -> str | None:
        """Deliver one message; return the destination's message id if it has one."""
        ...

    def find_sent(self, channel: str, outbox_id: int) -> str | None:
        """After a crash mid-send: the id of a message already delivered for this
        outbox row, or None when it provably was not (or cannot be known)."""
        ...
