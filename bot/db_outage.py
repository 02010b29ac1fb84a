"""What a worker does while its database cannot be reached: wait with a
growing pause between tries (up to a minute), log the outage once when it
starts and once when it ends, and let /healthz say so meanwhile. Nothing is
lost: a cycle commits feed by feed and an alert is stored before it is sent,
so work cut off by the outage is simply done again once the database is back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0


class DatabaseOutage:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.since: float | None = None
        self.error: str | None = None
        self._pause = 0.0
        self._retry_at = 0.0
        self._back_at = float("-inf")  # when the last outage ended

    @property
    def down(self) -> bool:
        return self.since is not None

    def may_try(self) -> bool:
        """False while the pause after the last failed try lasts."""
        with self._lock:
            return self.since is None or self.clock() >= self._retry_at

    def wait_for(self) -> float:
        """Seconds until the next try is due (0 when the database is up)."""
        with self._lock:
            return 0.0 if self.since is None else max(0.0, self._retry_at - self.clock())

    def failed(self, error: str, what: str, started: float | None = None) -> None:
        """started: when the failed try began. One that began before the
        database was seen working again (it waited for a connection all
        along) is no new outage: ignored."""
        now = self.clock()
        with self._lock:
            if started is not None and started < self._back_at:
                return
            if self.since is None:
                self.since = now
                log.error("database unreachable (%s): %s; retrying with backoff", what, error)
            self.error = error
            self._pause = min(LONGEST_PAUSE, max(FIRST_PAUSE, self._pause * 2))
            self._retry_at = now + self._pause

    def worked(self) -> None:
        with self._lock:
            if self.since is None:
                return
            log.warning(
                "database reachable again after %.0f s; carrying on", self.clock() - self.since
            )
            self.since = self.error = None
            self._pause = 0.0
            self._back_at = self.clock()
