"""The files that install newshound: Slack manifest, Dockerfile, README's service docs."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import yaml
from cli_helpers import REPO, run_subprocess
from fakeslack import FakeSlack
from service_helpers import Service

from bot.slack_app import EVENTS_PATH


def test_manifest_declares_the_command_scopes_and_both_transports() -> None:
    text = (REPO / "slack-manifest.yaml").read_text(encoding="utf-8")
    manifest = yaml.safe_load(text)
    assert manifest["display_information"]["name"] == "newshound"
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/watch"
    assert command["url"].endswith(EVENTS_PATH)
    assert "add" in command["usage_hint"]
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert {"chat:write", "commands", "channels:read"} <= set(scopes)
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert "socket_mode_enabled: true" in text  # the Socket Mode variant is documented
    assert "connections:write" in text


def test_dockerfile_essentials() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert "pip install --no-cache-dir ." in text
    assert re.search(r"^USER (?!root|0\b)", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert "VOLUME" in text and "NEWSHOUND_DB=/data/" in text and "NEWSHOUND_CONFIG=/data/" in text
    assert 'CMD ["run"' in text
    assert "SLACK_BOT_TOKEN=" not in text  # secrets only at run time


def test_readme_documents_the_service() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running the service", 1)[1].split("<!-- section boundary", 1)[0]
    for needle in (
        "Install in Slack in 5 minutes",
        "slack-manifest.yaml",
        "newshound run",
        "/healthz",
        "/metrics",
        "SIGHUP",
        "docker run",
        "NEWSHOUND_TICK",
    ):
        assert needle in section, needle


@pytest.mark.slow
def test_run_with_a_broken_config_exits_2_with_file_and_line(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text("settings:\n  interval: soon\n", encoding="utf-8")
    result = run_subprocess(
        "--config", str(config), "--db", db_url, "run", "--port", "0", timeout=30
    )
    assert result.code == 2
    assert f"{config}:2:" in result.err
    assert "Traceback" not in result.err


@pytest.mark.slow
def test_run_without_a_config_file_starts_and_waits_for_one(db_url: str, tmp_path: Path) -> None:
    with FakeSlack() as slack:
        service = Service(tmp_path / "feeds.yaml", db_url, slack).start()
        assert service.get("/healthz").json()["feeds"] == 0
        code, _ = service.stop(signal.SIGTERM)
    assert code == 0
    assert "no config at" in service.log()
