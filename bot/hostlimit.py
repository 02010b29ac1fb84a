"""Per-host concurrency limit, so a cycle with many feeds on one site never
opens more than a few connections to it at once (politeness, and fewer 429s)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

DEFAULT_PER_HOST = 4


class HostLimiter:
    def __init__(self, per_host: int = DEFAULT_PER_HOST) -> None:
        self.per_host = per_host
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    def _semaphore(self, url: str) -> threading.BoundedSemaphore:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            semaphore = self._slots.get(host)
            if semaphore is None:
                semaphore = self._slots[host] = threading.BoundedSemaphore(self.per_host)
            return semaphore

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        semaphore = self._semaphore(url)
        with semaphore:
            yield
