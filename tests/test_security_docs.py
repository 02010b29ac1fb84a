"""SECURITY.md and the README's Security/configuration text stay true."""

from __future__ import annotations

import re

from cli_helpers import REPO

from bot.config import Settings, parse_config


def _readme_config() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert found
    return found.group(1)


SAFETY_SETTINGS = (
    "allow_networks",
    "fetch_timeout",
    "max_body_mb",
    "max_items_per_feed",
    "failure_threshold",
    "parse_timeout",
)


def test_readme_config_example_is_valid_and_lists_the_safety_settings() -> None:
    example = _readme_config()
    config = parse_config(example, "README.md")
    assert config.settings.parse_timeout == Settings().parse_timeout
    for name in SAFETY_SETTINGS:
        assert re.search(rf"^\s+{name}:", example, re.MULTILINE), name


def test_security_docs_present() -> None:
    security = (REPO / "SECURITY.md").read_text(encoding="utf-8")
    for heading in ("Threat model", "What is defended", "Remaining risks", "Reporting"):
        assert heading in security
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Security", 1)[1].split("<!-- section boundary: security -->")[0]
    assert "SECURITY.md" in section and "to be written" not in section
