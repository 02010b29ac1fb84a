from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeslack import FakeSlack
from feedserver import FeedServer

from bot.store import Store


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A started loopback `FeedServer` (stopped after the test)."""
    with FeedServer() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in the test's temporary folder."""
    with Store(tmp_path / "newshound.db") as s:
        yield s


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A started fake Slack Web API on loopback (modules may override it)."""
    with FakeSlack() as fake:
        yield fake
