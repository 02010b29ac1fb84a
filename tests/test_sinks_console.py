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


def test_a_webhook_channel_is_never_printed_with_its_token() -> None:
    from bot.sinks.console import format_console

    hook = "discord:https://discord.com/api/webhooks/123456/SeCrEtToKeN-abc"
    text = format_console(hook, "notice", {"text": "hello"})
    assert "SeCrEtToKeN" not in text and "123456" in text
