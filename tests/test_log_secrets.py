"""No token, signing secret or webhook token ever reaches logs or output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from cli_helpers import run_subprocess, write_config
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from loopback import LoopbackServer, QuietHandler

from bot.redact import RedactingFilter, redact, secrets_from_env, webhook_secrets

BOT_TOKEN = "xoxb-1111-2222-SECRETBOTTOKEN"
APP_TOKEN = "xapp-1-A111-SECRETAPPTOKEN"
SIGNING = "f00dfacesigningsecret42"
HOOK_TOKEN = "HOOKSECRET-abcdef0123456789"
LITERAL_TOKEN = "LITERALSECRET-9876543210"
SECRETS = [BOT_TOKEN, APP_TOKEN, SIGNING, HOOK_TOKEN, LITERAL_TOKEN, "SECRETBOTTOKEN"]


def verbose_runs(config: Path, db: Path, env: dict[str, str]) -> str:
    """Everything two polls, `status` and `check` print with -v (all must succeed)."""
    outputs = []
    for args in (
        ("-v", "poll", "--once", "--all"),
        ("-v", "poll", "--once", "--all"),
        ("-v", "status"),
        ("-v", "check"),
    ):
        result = run_subprocess("--config", str(config), "--db", str(db), *args, env=env)
        assert result.code == 0, result.err
        outputs.append(result.out + result.err)
    return "\n".join(outputs)


def test_redact_patterns() -> None:
    text = (
        "POST https://discord.com/api/webhooks/123/abcDEF-ghi?wait=true token xoxb-1-2-abc "
        "xapp-1-X-y https://feed.example/rss?token=hunter2&x=1 custom-secret-value"
    )
    out = redact(text, ["custom-secret-value"])
    for leaked in ("abcDEF-ghi", "xoxb-1-2-abc", "xapp-1-X-y", "hunter2", "custom-secret-value"):
        assert leaked not in out
    assert "/api/webhooks/123/***" in out
    assert "x=1" in out


def test_secrets_from_env_and_webhooks() -> None:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        "TRADE_WEBHOOK": "https://hooks.example/x/y",
        "HOME": "/root",
        "SHORT_TOKEN": "abc",
    }
    found = secrets_from_env(env)
    assert sorted(found) == sorted([BOT_TOKEN, SIGNING, "https://hooks.example/x/y"])
    channels = [
        "C0123456789",
        "discord:$TRADE_WEBHOOK",
        "discord:$MISSING",
        "discord:https://h/1/t",
    ]
    assert webhook_secrets(channels, env) == ["https://hooks.example/x/y", "https://h/1/t"]


def test_filter_scrubs_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("newshound.test.redact")
    flt = RedactingFilter([SIGNING])
    caplog.handler.addFilter(flt)
    try:
        with caplog.at_level(logging.DEBUG, logger=logger.name):
            logger.info("secret %s and %s", SIGNING, BOT_TOKEN)
            try:
                raise RuntimeError(f"boom {SIGNING}")
            except RuntimeError:
                logger.exception("failed")
    finally:
        caplog.handler.removeFilter(flt)
    assert SIGNING not in caplog.text and "SECRETBOTTOKEN" not in caplog.text
    assert "boom ***" in caplog.text


class _FailingDestination(QuietHandler):
    """Answers every POST with HTTP 500 and remembers the path."""

    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.read_body()
        type(self).paths.append(self.path.split("?", 1)[0])
        body = b'{"ok": false, "error": "internal_error"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def destination() -> Iterator[tuple[str, list[str]]]:
    _FailingDestination.paths = []
    with LoopbackServer(_FailingDestination) as server:
        yield f"http://127.0.0.1:{server.port}", _FailingDestination.paths


@pytest.mark.slow
def test_pipeline_at_debug_logs_no_secrets(
    db_url: str, feed_server: FeedServer, destination: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, posted = destination
    now = datetime.now(UTC)
    entry = FeedEntry(
        title="Trade deal signed",
        link="https://news.example/deal",
        summary="A trade deal.",
        published=now - timedelta(hours=1),
    )
    feed_server.set("/feed.xml", rss([entry]))
    feed_server.set("/broken.xml", b"nope", status=500, content_type="text/plain")
    # Every destination fails, so errors (and their retries) get logged.
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/feed.xml"), feed_server.url("/broken.xml")],
        [
            {"channel": "C0TRADE0001", "terms": ["trade deal"]},
            {"channel": "discord:$TRADE_WEBHOOK", "terms": ["trade deal"]},
            {
                "channel": f"discord:{base}/api/webhooks/777/{LITERAL_TOKEN}",
                "terms": ["trade deal"],
            },
        ],
    )
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_API_URL": f"{base}/slack/",
        "TRADE_WEBHOOK": f"{base}/api/webhooks/123456/{HOOK_TOKEN}",
    }
    combined = verbose_runs(config, db_url, env)
    # The destinations really were called, and libraries really did log.
    assert "/slack/chat.postMessage" in posted
    # (on API v10, whatever version the configured URL names)
    assert f"/api/v10/webhooks/123456/{HOOK_TOKEN}" in posted
    assert f"/api/v10/webhooks/777/{LITERAL_TOKEN}" in posted
    assert "HTTP Request" in combined  # httpx's request log line, scrubbed
    assert "***" in combined
    for secret in SECRETS:
        assert secret not in combined, secret


SPELLING_TOKENS = [
    "UPPERSCHEME-SECRET-1111aaaa",
    "DOTSEGMENT-SECRET-2222bbbb",
    "GENERICPATH-SECRET-3333cccc",
    "DOTPATH-SECRET-4444dddd",
]


def test_url_spellings_of_a_webhook_are_masked() -> None:
    token = "SPELLING-SECRET-0000"
    configured = f"https://Discord.com/api/webhooks/42/{token}?thread_id=7"
    generic = f"http://hooks.example:8080/in/{token}x"
    flt = RedactingFilter()
    flt.add([configured, generic])
    spellings = [
        configured,
        f"HTTPS://DISCORD.COM/api/webhooks/42/{token}?thread_id=7",  # case
        f"https://discord.com:443/api/webhooks/42/{token}",  # default port, no query
        f"https://discord.com/api/webhooks/42/{token}?wait=true",  # query replaced
        f"https://discord.com/api/webhooks/42/{token}?thread_id=7&wait=true",  # merged
        f"https://discord.com/api/x/../webhooks/42/./{token}",  # dot segments
        f"https://discord.com./api/webhooks/42/{token}",  # trailing dot
        f"https://discord.com/api/webhooks/42/{token.lower()}/",  # the path pattern
        f"/api/webhooks/42/{token}?thread_id=7",  # the path alone
        f"HTTP://HOOKS.example:8080/in/{token}x?wait=true",
        "http://hooks.example:8080/in/%53PELLING-SECRET-0000x",  # percent-encoded
        f"http://hooks.example:8080//in/{token}x",
    ]
    for spelling in spellings:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST %s", (spelling,), None)
        flt.filter(record)
        message = record.getMessage()
        assert "SPELLING" not in message.upper(), message
        assert "***" in message
    # Other URLs stay readable, and the webhook ID is kept for debugging.
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "GET %s then POST %s",
        ("https://news.example/rss?page=2", f"https://discord.com/api/webhooks/42/{token}"),
        None,
    )
    flt.filter(record)
    assert record.getMessage() == (
        "GET https://news.example/rss?page=2 then POST https://discord.com/api/webhooks/42/***"
    )


@pytest.mark.slow
def test_cli_at_debug_masks_every_spelling_of_webhook_urls(
    db_url: str, feed_server: FeedServer, destination: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, posted = destination
    port = base.rsplit(":", 1)[1]
    upper, dotted, generic, dotpath = SPELLING_TOKENS
    entry = FeedEntry(
        title="Trade deal signed",
        link="https://news.example/deal",
        summary="A trade deal.",
        published=datetime.now(UTC) - timedelta(hours=1),
    )
    feed_server.set("/feed.xml", rss([entry]))
    channels = [
        f"discord:HTTP://127.0.0.1:{port}/api/webhooks/1001/{upper}",
        f"discord:http://127.0.0.1:{port}/api/hooks/../webhooks/1002/{dotted}?thread_id=5",
        "discord:$TEAM_HOOK_URL",  # a name the env scan does not take for a secret
        f"discord:http://127.0.0.1:{port}/x/./in/{dotpath}",
    ]
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/feed.xml")],
        [{"channel": channel, "terms": ["trade deal"]} for channel in channels],
    )
    env = {"TEAM_HOOK_URL": f"http://127.0.0.1:{port}/custom/{generic}"}
    combined = verbose_runs(config, db_url, env)
    # Every webhook really was called (in httpx's normalised spelling) and logged.
    assert f"/api/v10/webhooks/1001/{upper}" in posted
    assert f"/api/v10/webhooks/1002/{dotted}" in posted
    assert f"/custom/{generic}" in posted
    assert f"/x/in/{dotpath}" in posted
    assert combined.count("HTTP Request: POST") >= 8
    for token in SPELLING_TOKENS:
        assert token not in combined, token
        assert token.split("-")[0] not in combined, token
