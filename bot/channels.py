"""Watch destinations: Slack channel IDs and Discord webhooks.

A channel string in feeds.yaml (and in the database) is one of:

* a Slack channel ID: ``C0123456789`` (public), ``G…`` (private) or ``D…``
  (direct message) — upper-case letters and digits, at least 9 characters;
* ``discord:<channel ID>`` — a Discord channel or thread (a snowflake,
  digits only), posted to with the application's bot token;
* ``discord:<http(s) webhook URL>``;
* ``discord:$ENV_VAR`` — the webhook URL is read from that environment
  variable when a message is sent, so the secret need not be in the file.

A webhook URL is a secret (its last path segment is the token), so nothing
in this module ever puts it into an error message, and `display_channel`
gives a form that is safe for logs and status output: what the user wrote,
quoted, unless it looks like a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

__all__ = [
    "DISCORD_PREFIX",
    "MASK",
    "SHOWN_LENGTH",
    "channel_kind",
    "discord_channel_id",
    "display_channel",
    "env_var_name",
    "is_slack_channel_id",
    "looks_secret",
    "resolve_discord_webhook",
    "validate_channel",
    "validate_webhook_url",
    "webhook_env_warning",
    "webhook_env_warnings",
]

DISCORD_PREFIX = "discord:"

_SLACK_ID = re.compile(r"[CGD][A-Z0-9]{8,}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WEBHOOK_ID = re.compile(r"[0-9]{1,30}")
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_SAFE_PLAIN = re.compile(r"[A-Za-z0-9_#.-]{1,80}")

MASK = "***"
SHOWN_LENGTH = 40  # characters of a channel value shown in messages

# What a secret pasted where a channel belongs looks like.
_SLACK_TOKEN = re.compile(r"(?i)(?<![a-z0-9])x(?:ox[a-z]|app)-")
_SECRET_WORD = re.compile(
    r"(?i)token|secret|passw(?:or)?d|api[\s_-]?key|private[\s_-]?key|credential|bearer"
)
_QUERY_SECRET = re.compile(
    r"(?i)[?&](?:access_token|token|api_key|apikey|key|secret|password|sig|signature)="
)
_USERINFO = re.compile(r"[^\s/@:]+:[^\s/@]+@")  # user:password@host
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")


def is_slack_channel_id(channel: str) -> bool:
    return _SLACK_ID.fullmatch(channel) is not None


def channel_kind(channel: str) -> str:
    """``"discord"`` for ``discord:…`` channels, otherwise ``"slack"``."""
    return "discord" if channel.startswith(DISCORD_PREFIX) else "slack"


def discord_channel_id(channel: str) -> str | None:
    """The channel ID of a ``discord:<snowflake>`` channel (bot delivery), else None."""
    if not channel.startswith(DISCORD_PREFIX):
        return None
    rest = channel[len(DISCORD_PREFIX) :]
    return rest if _SNOWFLAKE.fullmatch(rest) and int(rest) > 0 else None


def env_var_name(channel: str) -> str | None:
    """The variable named by a ``discord:$VAR`` (or ``discord:${VAR}``) channel, else None.

    The name is returned even when it is not a valid variable name, so
    callers can report it; `validate_channel` checks it.
    """
    if not channel.startswith(DISCORD_PREFIX):
        return None
    rest = channel[len(DISCORD_PREFIX) :].strip()
    if not rest.startswith("$"):
        return None
    name = rest[1:]
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1]
    return name


def validate_webhook_url(url: str) -> str | None:
    """Why *url* cannot be used as a webhook URL, or None when it can.

    The message never contains the URL itself (it holds a secret token).
    """
    if not url:
        return "the Discord webhook URL is empty"
    if any(ch.isspace() for ch in url) or any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "the Discord webhook URL must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return "the Discord webhook URL is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "the Discord webhook URL must start with https:// (or http://)"
    if not host:
        return "the Discord webhook URL has no host name"
    if parts.username is not None or parts.password is not None:
        return "the Discord webhook URL must not contain a user name or password"
    return None


def validate_channel(channel: str) -> str | None:
    """Why *channel* is not a usable watch channel, or None when it is."""
    if not isinstance(channel, str) or not channel.strip():
        return (
            "the channel is empty; use a Slack channel ID like C0123456789, "
            "discord:<channel ID> or discord:<webhook URL>"
        )
    if channel.startswith(DISCORD_PREFIX):
        rest = channel[len(DISCORD_PREFIX) :].strip()
        if not rest:
            return (
                "discord: must be followed by a channel ID, a webhook URL or $ENVIRONMENT_VARIABLE"
            )
        if discord_channel_id(channel) is not None:
            return None
        if rest.isdigit():
            return f"{_quote(rest)} is not a Discord channel ID (a number of up to 20 digits)"
        name = env_var_name(channel)
        if name is not None:
            if not _ENV_NAME.fullmatch(name):
                return (
                    f"{_quote(name)} is not a valid environment variable name "
                    "(use letters, digits and _, not starting with a digit), "
                    "e.g. discord:$TRADE_WEBHOOK"
                )
            return None
        if "/" not in rest and ":" not in rest:  # no URL at all, e.g. a mistyped ID
            return (
                "after discord: comes a Discord channel ID (digits only), "
                "a webhook URL (https://…) or $ENVIRONMENT_VARIABLE"
            )
        return validate_webhook_url(rest)
    if channel.lower().startswith(DISCORD_PREFIX):
        return "write the discord: prefix in lower case"
    if "://" in channel:
        return (
            "a URL alone is not a channel; write discord:<webhook URL> for a Discord webhook "
            "or use a Slack channel ID like C0123456789"
        )
    if channel.startswith("#"):
        return (
            f"{_shown(channel)} is a channel name; use the Slack channel ID "
            "instead (like C0123456789, shown under the channel's details in Slack)"
        )
    if not is_slack_channel_id(channel):
        return (
            f"{_shown(channel)} is not a Slack channel ID "
            "(upper-case letters and digits starting with C, G or D, like C0123456789), "
            "discord:<channel ID> or discord:<webhook URL>"
        )
    return None


def resolve_discord_webhook(channel: str, env: Mapping[str, str]) -> str:
    """The webhook URL to post to for a ``discord:`` channel.

    For ``discord:$VAR`` the URL is read from *env* now. Raises `ValueError`
    with a message that never contains the URL.
    """
    if not channel.startswith(DISCORD_PREFIX):
        raise ValueError(f"{display_channel(channel)} is not a Discord channel")
    if discord_channel_id(channel) is not None:
        raise ValueError(f"{channel} is a Discord channel ID, not a webhook")
    name = env_var_name(channel)
    if name is not None:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{_quote(name)} is not a valid environment variable name")
        value = env.get(name, "").strip()
        if not value:
            raise ValueError(f"environment variable {name} is not set")
        problem = validate_webhook_url(value)
        if problem is not None:
            raise ValueError(f"environment variable {name}: {problem}")
        return value
    url = channel[len(DISCORD_PREFIX) :].strip()
    problem = validate_webhook_url(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def webhook_env_warning(channel: str, env: Mapping[str, str]) -> str | None:
    """Why a ``discord:$VAR`` channel cannot be sent to right now (its
    variable is unset or not a webhook URL), else None.

    Used by `check` and logged when `poll`/`run` start; its alerts are not
    lost meanwhile, they stay pending and are retried. Never contains the URL.
    """
    name = env_var_name(channel)
    if name is None or not _ENV_NAME.fullmatch(name):
        return None  # not an env channel, or a bad name (a config error)
    value = env.get(name, "").strip()
    if not value:
        return (
            f"environment variable {name} is not set, so alerts for "
            f"{display_channel(channel)} cannot be sent until it is"
        )
    problem = validate_webhook_url(value)
    if problem is not None:
        return f"environment variable {name}: {problem}"
    return None


def webhook_env_warnings(channels: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """`webhook_env_warning` for each distinct channel that has one."""
    warnings: list[str] = []
    for channel in dict.fromkeys(channels):
        warning = webhook_env_warning(channel, env)
        if warning is not None and warning not in warnings:
            warnings.append(warning)
    return warnings


def display_channel(channel: str) -> str:
    """A form of *channel* that is safe to log or show: never a secret.

    Slack IDs are returned unchanged, ``discord:$VAR`` as written and
    webhook URLs as ``discord:…/ID/***`` (only the numeric webhook ID kept);
    any other URL as ``…/***``. Other text is shown as the user wrote it:
    plain names like ``general`` or ``#news`` as they are, anything else
    quoted with `repr` (control characters escaped) and cut to
    `SHOWN_LENGTH` characters, unless it looks like a secret (see
    `looks_secret`), which is shown as ``***``.
    """
    if channel.startswith(DISCORD_PREFIX):
        if discord_channel_id(channel) is not None:
            return channel
        name = env_var_name(channel)
        if name is not None:
            if _ENV_NAME.fullmatch(name):
                return f"{DISCORD_PREFIX}${name}"
            return f"{DISCORD_PREFIX}${MASK}"
        return DISCORD_PREFIX + _redact_url(channel[len(DISCORD_PREFIX) :].strip())
    if is_slack_channel_id(channel):
        return channel
    if "://" in channel or "/webhooks/" in channel:
        return _redact_url(channel)
    if looks_secret(channel):
        return MASK
    if _SAFE_PLAIN.fullmatch(channel):
        return channel
    if len(channel) > SHOWN_LENGTH:
        return repr(channel[:SHOWN_LENGTH]) + "…"
    return repr(channel)


def looks_secret(text: str) -> bool:
    """Whether *text* (typed where a channel belongs) may hold a secret: a
    Slack token (``xoxb-…``, ``xapp-…``), credentials (``user:pass@``,
    ``?token=``), a word such as token, secret, password or API key, or a
    long random-looking string (mixed-case letters and digits, or hex)."""
    if (
        _SLACK_TOKEN.search(text)
        or _SECRET_WORD.search(text)
        or _QUERY_SECRET.search(text)
        or _USERINFO.search(text)
    ):
        return True
    for run in _TOKEN_RUN.findall(text):
        has_digit = any(ch.isdigit() for ch in run)
        mixed_case = any(ch.isupper() for ch in run) and any(ch.islower() for ch in run)
        if has_digit and (mixed_case or _HEX.search(run)):
            return True
    return False


def _redact_url(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return "…/***"
    segments = [s for s in path.split("/") if s]
    webhook_id: str | None = None
    if "webhooks" in segments:
        idx = segments.index("webhooks")
        if idx + 1 < len(segments):
            webhook_id = segments[idx + 1]
    elif len(segments) >= 2:
        webhook_id = segments[-2]
    if webhook_id is not None and _WEBHOOK_ID.fullmatch(webhook_id):
        return f"…/{webhook_id}/***"
    return "…/***"


def _shown(channel: str) -> str:
    """`display_channel` in quotes, for messages (repr-quoted text already is)."""
    shown = display_channel(channel)
    return shown if shown[:1] in ("'", '"') else _quote(shown)


def _quote(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    if len(cleaned) > 60:
        cleaned = cleaned[:57] + "..."
    return f'"{cleaned}"'
