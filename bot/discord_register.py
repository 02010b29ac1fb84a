"""`newshound discord register [--guild ID]`: the `/watch` command on Discord.

One bulk-overwrite PUT (discord-api-docs developers/interactions/
application-commands.mdx, "Bulk Overwrite Global Application Commands" and
"Bulk Overwrite Guild Application Commands"): running it again changes
nothing, and it replaces commands an older newshound registered. A guild
command is usable at once (handy while testing); a global one in every
server the application is installed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bot.query import MAX_TERM_LENGTH
from bot.sinks.discord_bot import api_base

SUBCOMMAND, STRING = 1, 3
GUILD_CONTEXT = 0  # interaction context: server channels only (no DMs)
GUILD_INSTALL = 0


class RegisterError(Exception):
    """Registration failed; the message says why (never a token)."""


class RegisterUsageError(RegisterError):
    """Missing credentials or bad arguments: the operator must fix them (exit 2)."""


def _query(description: str) -> dict[str, Any]:
    return {
        "type": STRING,
        "name": "query",
        "description": description,
        "required": True,
        "min_length": 1,
        "max_length": MAX_TERM_LENGTH,
    }


def watch_command() -> dict[str, Any]:
    """The chat-input command with its six subcommands."""
    subcommands = [
        ("add", "Watch a term in this channel", _query('e.g. trade deal, "pax silica", a OR b')),
        ("remove", "Stop watching a term", _query("the term as listed by /watch list")),
        ("list", "Terms this channel watches", None),
        ("help", "How /watch and the query language work", None),
        ("test", "Show recent stories a query would match (adds nothing)", _query("the query")),
        ("feeds", "The feeds and their health", None),
    ]
    return {
        "name": "watch",
        "type": 1,
        "description": "Watch news feeds for terms in this channel",
        "contexts": [GUILD_CONTEXT],
        "integration_types": [GUILD_INSTALL],
        "options": [
            {
                "type": SUBCOMMAND,
                "name": name,
                "description": description,
                **({"options": [option]} if option else {}),
            }
            for name, description, option in subcommands
        ],
    }


def register(env: Mapping[str, str], guild: str | None = None, timeout: float = 15.0) -> str:
    """Register `/watch`; returns a one-line summary. Raises RegisterError."""
    token = env.get("DISCORD_BOT_TOKEN", "").strip()
    app_id = env.get("DISCORD_APPLICATION_ID", "").strip()
    missing = [
        name
        for name, value in (("DISCORD_BOT_TOKEN", token), ("DISCORD_APPLICATION_ID", app_id))
        if not value
    ]
    if missing:
        raise RegisterUsageError(
            f"set {' and '.join(missing)} (Developer Portal → your application) and run again"
        )
    if not app_id.isdigit():
        raise RegisterUsageError("DISCORD_APPLICATION_ID must be the application's numeric ID")
    if guild is not None and not guild.isdigit():
        raise RegisterUsageError(f"--guild must be a server ID (digits only), not {guild[:30]!r}")
    base = api_base(env.get("DISCORD_API_URL"))
    path = f"/applications/{app_id}" + (f"/guilds/{guild}" if guild else "") + "/commands"
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.put(
                base + path, json=[watch_command()], headers={"Authorization": f"Bot {token}"}
            )
    except httpx.HTTPError as exc:
        raise RegisterError(f"could not reach Discord: {type(exc).__name__}") from None
    if response.status_code == 401:
        raise RegisterError("Discord refused DISCORD_BOT_TOKEN (HTTP 401)")
    if response.status_code == 403:
        raise RegisterError(
            "Discord refused the registration (HTTP 403): is DISCORD_APPLICATION_ID the "
            "bot's application, and is the bot in that server?"
        )
    if response.status_code >= 300:
        raise RegisterError(f"Discord refused the registration (HTTP {response.status_code})")
    where = f"in server {guild} (usable now)" if guild else "globally (every server it is in)"
    return f"registered /watch {where}"
