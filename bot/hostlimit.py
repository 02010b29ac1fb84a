"""Per-host concurrency limit, so a cycle with many feeds on one site never
opens more than a few connections to it at once (politeness, and fewer 429s).

Used on the fetcher's event loop: slots are asyncio semaphores, so a feed
waiting for its host costs no thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

DEFAULT_PER_HOST = 4


class HostLimiter:
    def __init__(self, per_host: int = DEFAULT_PER_HOST) -> None:
        self.per_host = per_host
        self._slots: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        key = host.lower()
        semaphore = self._slots.get(key)
        if semaphore is None:
            semaphore = self._slots[key] = asyncio.Semaphore(self.per_host)
        async with semaphore:
            yield
