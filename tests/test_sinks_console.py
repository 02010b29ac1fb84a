"""bot/sinks/console.py: readable blocks on stdout."""

from __future__ import annotations

import pytest

from bot.messages import DIGEST
from bot.sinks.console import format_console


@pytest.mark.parametrize(
    ("count", "header"), [(1, "1 more matching story"), (2, "2 more matching stories")]
)
def test_digest_header_counts_stories(count: int, header: str) -> None:
    items = [
        {"title": f"S{n}", "link": f"https://n.example/{n}", "source": "Feed"} for n in range(count)
    ]
    lines = format_console("C0CONSOLE01", DIGEST, {"items": items}).splitlines()
    assert lines[0] == f"== digest -> C0CONSOLE01: {header} ======"
    assert lines[1] == "  - S0 (Feed)  https://n.example/0"
    assert len(lines) == 1 + count
