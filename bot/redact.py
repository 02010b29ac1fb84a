"""Keeping secrets out of logs (SPEC §1: no secret ever appears in logs).

Our own code never logs a token or a webhook URL, but libraries do: httpx
logs every request URL at INFO ("HTTP Request: POST https://discord.com/api/
webhooks/ID/TOKEN ..."), and a traceback can quote one. `install` puts a
`RedactingFilter` on the root logger's handlers, so every record that reaches
them - ours, httpx's, httpcore's, slack_sdk's - is scrubbed of:

* the exact values of secret environment variables (Slack tokens, signing
  secret, any *_TOKEN / *_SECRET / *_WEBHOOK / *_PASSWORD variable);
* exact secrets registered later (`add_secrets`: webhook URLs from feeds.yaml);
* anything shaped like a Slack token (`xoxb-…`, `xapp-…`), the token part of
  a Discord webhook path (`/api/webhooks/ID/***`), and credential-looking
  query parameters (`?token=…`, `&key=…`, …).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import weakref
from collections.abc import Iterable, Mapping

from bot.channels import DISCORD_PREFIX, resolve_discord_webhook

MASK = "***"
MIN_SECRET_LEN = 6  # shorter values would mask ordinary words

_SECRET_NAME = re.compile(r"TOKEN|SECRET|WEBHOOK|PASSWORD|PASSWD|API_?KEY|PRIVATE", re.IGNORECASE)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/api/webhooks/[^/\s]+/)[^/?#\s\"'<>]+"), r"\1" + MASK),
    (re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+"), r"\1-" + MASK),
    (
        re.compile(
            r"(?i)([?&](?:access_token|token|api_key|apikey|key|secret|password|sig|signature)=)"
            r"[^&#\s\"'<>]+"
        ),
        r"\1" + MASK,
    ),
)


def secrets_from_env(env: Mapping[str, str]) -> list[str]:
    """Values of environment variables whose names say they are secret."""
    found = []
    for name, value in env.items():
        value = value.strip()
        if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LEN:
            found.append(value)
    return found


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    # Longest first, so a URL is masked whole before a token inside it.
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with secrets masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LEN)

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = self._secrets | {s for s in secrets if len(s) >= MIN_SECRET_LEN}

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template
            message = str(record.msg)
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets)
        return True


_installed: weakref.WeakSet[RedactingFilter] = weakref.WeakSet()


def install(env: Mapping[str, str] | None = None, logger: logging.Logger | None = None) -> None:
    """Attach a RedactingFilter to every handler of `logger` (default: root)."""
    target = logger or logging.getLogger()
    secrets = secrets_from_env(os.environ if env is None else env)
    for handler in target.handlers:
        if any(isinstance(f, RedactingFilter) for f in handler.filters):
            continue
        flt = RedactingFilter(secrets)
        handler.addFilter(flt)
        _installed.add(flt)


def add_secrets(secrets: Iterable[str]) -> None:
    """Register more exact secrets (e.g. webhook URLs read from feeds.yaml)."""
    values = list(secrets)
    for flt in _installed:
        flt.add(values)


def webhook_secrets(channels: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """The webhook URLs behind `discord:` channels (each one holds a token)."""
    found = []
    for channel in channels:
        if not channel.startswith(DISCORD_PREFIX):
            continue
        try:
            found.append(resolve_discord_webhook(channel, env))
        except ValueError:
            continue
    return found
