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

A secret that is a URL (a webhook) is not always logged the way it was
configured: httpx logs its own normalised form (lower-case scheme and host,
no default port, `..` segments resolved, `?wait=true` merged into the query).
So for URL secrets the filter also registers those spellings and, above all,
masks everything after the origin (scheme://host:port) of *any* URL in a
log line on the same origin as a secret URL, whatever its spelling: e.g.
`https://discord.com/api/webhooks/ID/***` or `https://hooks.example/***`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

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


# Any URL in a log line: scheme, authority (up to the first / ? # or space),
# then the rest up to a space or a quote.
_ANY_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://([^\s/?#\"'<>\\]*)([^\s\"'<>]*)")
_WEBHOOK_PATH = re.compile(r"/api/webhooks/[0-9]{1,30}/")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, authority: str) -> str | None:
    """`scheme://host:port` in one canonical spelling, None if unparsable."""
    scheme = scheme.lower()
    hostport = authority.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    else:
        host, _, port_text = hostport.partition(":")
    host = unquote(host).lower().rstrip(".")
    if not host:
        return None
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii")
    if port_text:
        if not port_text.isdigit():
            return None
        port: int | None = int(port_text)
    else:
        port = _DEFAULT_PORTS.get(scheme)
    return f"{scheme}://{host}:{port}"


def url_origin(url: str) -> str | None:
    """The canonical origin of an absolute URL, None if it has none."""
    match = _ANY_URL.match(url.strip())
    return _origin(match.group(1), match.group(2)) if match else None


def url_variants(url: str) -> set[str]:
    """Spellings in which a configured URL may show up in a log line."""
    import httpx  # only when a secret URL is configured: a noticeable import

    url = url.strip()
    found = {url}
    try:
        parsed = httpx.URL(url)
        forms = [parsed, parsed.copy_with(query=None), parsed.copy_merge_params({"wait": "true"})]
    except Exception:  # not a URL httpx accepts: the exact string is all we have
        forms = []
    for form in forms:
        found.add(str(form))
        found.add(form.raw_path.decode("ascii", "replace"))
    parts = urlsplit(url)
    found.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    found.add(url.split("?", 1)[0].split("#", 1)[0])
    return {f for f in found if len(f) >= MIN_SECRET_LEN and f not in ("/", "/api/webhooks/")}


def _mask_urls(text: str, origins: frozenset[str]) -> str:
    """Everything after the origin of each URL on a secret URL's origin."""

    def mask(match: re.Match[str]) -> str:
        rest = match.group(3)
        if not rest or _origin(match.group(1), match.group(2)) not in origins:
            return match.group(0)
        keep = _WEBHOOK_PATH.match(rest)  # the webhook ID is not secret: keep it
        return f"{match.group(1)}://{match.group(2)}{keep.group(0) if keep else '/'}{MASK}"

    return _ANY_URL.sub(mask, text)


def secrets_from_env(env: Mapping[str, str]) -> list[str]:
    """Values of environment variables whose names say they are secret."""
    found = []
    for name, value in env.items():
        value = value.strip()
        if _SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LEN:
            found.append(value)
    return found


def expand_secrets(secrets: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(exact strings to mask, origins whose URLs to mask) for `secrets`:
    URL secrets add their other spellings and their origin."""
    exact: set[str] = set()
    origins: set[str] = set()
    for secret in secrets:
        secret = secret.strip()
        if len(secret) < MIN_SECRET_LEN:
            continue
        exact.add(secret)
        origin = url_origin(secret) if "://" in secret else None
        if origin is not None:
            origins.add(origin)
            exact |= url_variants(secret)
    return frozenset(exact), frozenset(origins)


def redact(text: str, secrets: Iterable[str] = (), origins: Iterable[str] | None = None) -> str:
    """`text` with `secrets` masked; `origins` (default: those of the URL
    secrets) have every URL on them masked after the origin."""
    if origins is None:
        secrets, origins = expand_secrets(secrets)
    origins = frozenset(origins)
    if origins:
        text = _mask_urls(text, origins)
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
        self._secrets, self._origins = expand_secrets(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        exact, origins = expand_secrets(secrets)
        with self._lock:
            self._secrets = self._secrets | exact
            self._origins = self._origins | origins

    def filter(self, record: logging.LogRecord) -> bool:
        secrets, origins = self._secrets, self._origins
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template
            message = str(record.msg)
        record.msg = redact(message, secrets, origins)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets, origins)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, secrets, origins)
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
