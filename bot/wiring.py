"""Builds the real objects from the environment: config, store, fetcher, sinks.

Secrets are read from the environment only, here, and never logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from bot import redact
from bot.channels import channel_kind, discord_channel_id, webhook_env_warnings
from bot.config import Config, Settings, empty_config, load_config
from bot.fetch import FetchPolicy
from bot.sinks.base import Sink
from bot.sinks.console import ConsoleSink
from bot.sinks.slack import DEFAULT_API_URL, SlackSink
from bot.store import Store, location_password

log = logging.getLogger(__name__)

DEFAULT_CONFIG = "feeds.yaml"
DEFAULT_DB = "newshound.db"


@dataclass(frozen=True)
class Paths:
    config: str
    db: str


def resolve_paths(
    config: str | None, db: str | None, env: Mapping[str, str] | None = None
) -> Paths:
    env = os.environ if env is None else env
    paths = Paths(
        config=config or env.get("NEWSHOUND_CONFIG") or DEFAULT_CONFIG,
        db=db or env.get("NEWSHOUND_DB") or DEFAULT_DB,
    )
    password = location_password(paths.db)
    if password:  # e.g. quoted by a driver's traceback: never in a log line
        redact.add_secrets({password, unquote(password)})
    return paths


def load_or_empty(path: str) -> Config:
    """The config if the file exists (errors raise ConfigError), else an empty one."""
    if not Path(path).exists():
        return empty_config(path)
    return load_config(path)


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        timeout=settings.fetch_timeout,
        max_body_bytes=int(settings.max_body_mb * 1024 * 1024),
        allow_networks=settings.allow_networks,
    )


CONFIG_STAMP_META = "config_stamp"


def config_stamp(config: Config) -> str:
    """Identifies the config's content (not its file's comments or layout)."""
    return hashlib.sha256(
        repr((config.settings, config.feeds, config.watches)).encode()
    ).hexdigest()


def note_config(store: Store, config: Config) -> bool:
    """Record the config in use. When it changed since the last run or
    reload, paused Discord destinations (webhooks and channels that answered
    401/403/404) are called again (README: "until the config changes or
    `newshound retry` runs"). True if it changed."""
    stamp = config_stamp(config)
    if store.meta.get(CONFIG_STAMP_META) == stamp:
        return False
    store.meta.set(CONFIG_STAMP_META, stamp)
    store.gates.resume("discord:")
    return True


def config_terms(config: Config) -> list[tuple[str, str]]:
    return [(watch.channel, term) for watch in config.watches for term in watch.terms]


# -- the one setup path of `poll`, `run` and `demo` ---------------------------


def mirror_config(config: Config, store: Store, now: float) -> bool:
    """Mirror the config's feeds and terms into the database and record the
    config in use; True if it changed since the last run or reload."""
    store.feeds.sync([f.url for f in config.feeds])
    store.terms.sync_config(config_terms(config), now)
    return note_config(store, config)


def register_channel_secrets(config: Config, store: Store, env: Mapping[str, str]) -> None:
    """Webhook URLs hold tokens: the log filter must know every channel's,
    from the config and from `/watch`. A `discord:$VAR` channel whose
    variable is unset is warned about: its alerts wait (pending)."""
    channels = [*config.channels(), *(row.channel for row in store.terms.all())]
    redact.add_secrets(redact.webhook_secrets(channels, env))
    for warning in webhook_env_warnings(channels, env):
        log.warning("%s", warning)


def sinks_for(
    store: Store, env: Mapping[str, str] | None = None, *, console_only: bool = False
) -> SinkRouter:
    """Where messages go, tagged with this database's instance tag (Discord nonces)."""
    return SinkRouter(env, console_only=console_only, nonce_tag=store.meta.instance_tag())


class SinkRouter:
    """Picks the sink for a channel: Slack (or the console when no bot token
    is configured) for Slack IDs, the Discord bot for `discord:<channel ID>`,
    a webhook for other `discord:` channels."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        console_only: bool = False,
        nonce_tag: str = "",
    ) -> None:
        env = dict(os.environ if env is None else env)
        self.console = ConsoleSink()
        token = env.get("SLACK_BOT_TOKEN", "").strip()
        self.slack: Sink | None = None
        if token and not console_only:
            self.slack = SlackSink(token, env.get("SLACK_API_URL") or DEFAULT_API_URL)
        self._env = env
        self._console_only = console_only
        self._nonce_tag = nonce_tag
        # The Discord sinks (and httpx, their HTTP client) are made for the
        # first Discord channel routed: most runs and every quiet
        # `poll --once` have none, and building a client reads the CA bundle.
        self._discord: Sink | None = None
        self._discord_bot: Sink | None = None
        self._making = threading.Lock()

    @property
    def discord(self) -> Sink | None:
        if self._console_only:
            return None
        with self._making:
            if self._discord is None:
                from bot.sinks.discord import DiscordSink

                self._discord = DiscordSink(self._env)
            return self._discord

    @property
    def discord_bot(self) -> Sink | None:
        if self._console_only:
            return None
        with self._making:
            if self._discord_bot is None:
                from bot.sinks.discord_bot import DiscordBotSink

                self._discord_bot = DiscordBotSink(
                    self._env.get("DISCORD_BOT_TOKEN"),
                    self._env.get("DISCORD_API_URL"),
                    nonce_tag=self._nonce_tag,
                )
            return self._discord_bot

    def __call__(self, channel: str) -> Sink:
        if discord_channel_id(channel) is not None and (bot_sink := self.discord_bot) is not None:
            return bot_sink
        if channel_kind(channel) == "discord" and (webhook_sink := self.discord) is not None:
            return webhook_sink
        if channel_kind(channel) == "slack" and self.slack is not None:
            return self.slack
        return self.console

    @property
    def describe(self) -> str:
        return "slack" if self.slack is not None else "console"


SinkFor = Callable[[str], Sink]
