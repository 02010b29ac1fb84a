"""`newshound run`: scheduler + delivery loop + Slack app + /healthz + /metrics.

- APScheduler runs one recurring job that polls the feeds that are due (each
  feed's `next_check_at` lives in the database, so a restart resumes the
  schedule); `max_instances=1` and `coalesce=True` keep cycles from
  overlapping or piling up.
- A delivery thread sends pending alerts every tick, and at once after a
  cycle, so alerts committed early in a long cycle go out while it runs.
- SIGHUP reloads feeds.yaml (validated first; a broken file keeps the old
  config). SIGTERM/SIGINT stop the HTTP server, let the current cycle stop
  between feeds (each feed commits on its own) and exit 0 within 10 s.

Each worker (poller, deliverer, web) has its own database connection, so a
long poll transaction never delays an ack or a health check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.commands import CommandContext, dispatch, run_subcommand
from bot.config import Config, ConfigError, load_config
from bot.db_outage import DatabaseOutage
from bot.deliver import Deliverer
from bot.discord_app import (
    INTERACTIONS_PATH,
    BadPublicKey,
    DiscordChannelCheck,
    DiscordInteractions,
    DiscordSettings,
)
from bot.fetch import Fetcher
from bot.merging import StoryMerger
from bot.metrics import CONTENT_TYPE, Metrics, outbox_snapshot
from bot.parsepool import ParsePool
from bot.poll import Poller
from bot.reply import Reply
from bot.sinks.discord_bot import api_base
from bot.sinks.slack import DEFAULT_API_URL, TOKEN_PAUSE
from bot.slack_app import (
    EVENTS_PATH,
    ChannelCheck,
    SlackHttpEndpoint,
    SlackSettings,
    SocketModeRunner,
    build_app,
)
from bot.store import DatabaseRefused, DatabaseUnavailable, Store, WorkerRow, redact_location
from bot.web import HttpRequest, HttpResponse, Route, WebApp, WebServer
from bot.wiring import (
    config_stamp,
    fetch_policy,
    load_or_empty,
    mirror_config,
    register_channel_secrets,
    sinks_for,
)
from bot.worker import worker_id, worker_timeout

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_SETTING = 2

DEFAULT_TICK = 5.0  # seconds between checks for due feeds / pending alerts
DEFAULT_GRACE = 6.0  # how long shutdown waits for the current cycle
JITTER = 0.1  # polls spread by checking up to 10 % of a feed's interval early
# Meta key: when the service last polled at least one feed (survives restarts
# for /healthz; the poller's own last_cycle_at also moves on idle ticks).
LAST_POLL_META = "last_poll_at"


@dataclass(frozen=True)
class ServiceOptions:
    """Knobs that are not part of the product contract (tests shorten them).

    NEWSHOUND_TICK: scheduler period in seconds (default 5).
    NEWSHOUND_BIND: listen address (default 0.0.0.0).
    """

    tick: float = DEFAULT_TICK
    host: str = "0.0.0.0"
    grace: float = DEFAULT_GRACE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceOptions:
        tick = DEFAULT_TICK
        raw = env.get("NEWSHOUND_TICK", "").strip()
        if raw:
            try:
                tick = min(60.0, max(0.05, float(raw)))
            except ValueError:
                log.warning("ignoring NEWSHOUND_TICK=%r: not a number of seconds", raw)
        return cls(tick=tick, host=env.get("NEWSHOUND_BIND", "").strip() or "0.0.0.0")


def slack_settings(env: Mapping[str, str]) -> SlackSettings | None:
    """Which Slack transport the environment asks for (None: commands off)."""
    bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
    signing_secret = env.get("SLACK_SIGNING_SECRET", "").strip() or None
    app_token = env.get("SLACK_APP_TOKEN", "").strip() or None
    api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_API_URL
    if not api_url.endswith("/"):
        api_url += "/"
    if not (signing_secret or app_token):
        log.info(
            "Slack commands are off: set SLACK_SIGNING_SECRET (HTTP mode) "
            "or SLACK_APP_TOKEN (Socket Mode) to enable /watch"
        )
        return None
    if not bot_token:
        log.warning("Slack commands are off: SLACK_BOT_TOKEN is not set")
        return None
    return SlackSettings(bot_token, api_url, signing_secret, app_token)


def discord_settings(env: Mapping[str, str]) -> DiscordSettings | None:
    """Discord's /watch endpoint settings (None: DISCORD_PUBLIC_KEY unset)."""
    public_key = env.get("DISCORD_PUBLIC_KEY", "").strip()
    if not public_key:
        log.info("Discord commands are off: set DISCORD_PUBLIC_KEY to enable /watch in Discord")
        return None
    # Only a fallback here: each interaction names its application.
    application_id = env.get("DISCORD_APPLICATION_ID", "").strip() or None
    return DiscordSettings(
        public_key=public_key,
        application_id=application_id,
        api_url=api_base(env.get("DISCORD_API_URL")),
        bot_token=env.get("DISCORD_BOT_TOKEN", "").strip() or None,
    )


class ConfigHolder:
    """The current config; swapped whole on reload."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()

    def get(self) -> Config:
        with self._lock:
            return self._config

    def set(self, config: Config) -> None:
        with self._lock:
            self._config = config


class Service:
    def __init__(
        self,
        config_path: str,
        db_path: str,
        port: int,
        *,
        env: Mapping[str, str],
        options: ServiceOptions,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config_path = config_path
        self.env = env
        self.options = options
        self.clock = clock
        if not Path(config_path).exists():
            log.warning("no config at %s yet: polling nothing; add it and send SIGHUP", config_path)
        self.holder = ConfigHolder(load_or_empty(config_path))
        self.stopping = threading.Event()
        self._wake_delivery = threading.Event()
        self._cycle_lock = threading.Lock()
        self._merger: StoryMerger | None = None
        self._parse_pool: ParsePool | None = None
        self._fetcher: Fetcher | None = None
        self.last_cycle: dict[str, Any] = {}  # the last tick that polled at least one feed
        self.last_tick_at: float | None = None  # the last scheduler tick, idle or not
        self.worker = worker_id()  # this process among the workers sharing the database
        self.outage = DatabaseOutage(clock)
        self.other_configs: list[WorkerRow] = []  # live workers running another config

        self.poll_store = Store(db_path)
        self.deliver_store = Store(db_path)
        self.web_store = Store(db_path)
        self._sync(self.holder.get(), self.poll_store)
        register_channel_secrets(self.holder.get(), self.poll_store, env)

        self.sinks = sinks_for(self.deliver_store, env)
        self.deliverer = self._deliverer(self.holder.get())
        self.metrics = Metrics(self._snapshot)

        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.add_job(
            self.poll_job,
            # Ticks on multiples of `tick` since the epoch, on every worker, so
            # the workers' cycles of one period overlap and share its budget.
            IntervalTrigger(seconds=options.tick, start_date=aligned_start(clock(), options.tick)),
            id="poll",
            name="poll due feeds",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        self._delivery_thread = threading.Thread(
            target=self._delivery_loop, name="delivery", daemon=True
        )

        self.slack = slack_settings(env)
        self.socket: SocketModeRunner | None = None
        endpoint: SlackHttpEndpoint | None = None
        self.discord = discord_settings(env)
        self.discord_check: DiscordChannelCheck | None = None
        self.interactions: DiscordInteractions | None = None
        if self.discord is not None:
            self.discord_check = DiscordChannelCheck(self.discord)
            self.interactions = DiscordInteractions(
                self.discord,
                self.handle_discord_command,
                clock,
                on_command=self.metrics.observe_command,
            )
        if self.slack is not None:
            app = build_app(self.slack, self.handle_command)
            self.channel_check: Callable[[str], str | None] | None = ChannelCheck(app.client)
            if self.slack.socket_mode:
                assert self.slack.app_token
                self.socket = SocketModeRunner(app, self.slack.app_token)
            else:
                assert self.slack.signing_secret
                endpoint = SlackHttpEndpoint(app, self.slack.signing_secret, clock)
        else:
            self.channel_check = None
        self.web = WebServer(WebApp(self._routes(endpoint)), options.host, port)

    def _routes(self, slack: SlackHttpEndpoint | None) -> dict[str, Route]:
        """The one route table of the HTTP front."""
        get = ("GET", "HEAD")
        routes = {
            "/healthz": Route(get, self._health_route),
            "/metrics": Route(get, self._metrics_route),
        }
        if slack is not None:
            routes[EVENTS_PATH] = Route(
                ("POST",),
                lambda r: HttpResponse(*slack.handle(r.headers, r.body, r.query)),
                reads_body=True,
            )
        interactions = self.interactions
        if interactions is not None:
            routes[INTERACTIONS_PATH] = Route(
                ("POST",),
                lambda r: HttpResponse(*interactions.handle(r.headers, r.body)),
                reads_body=True,
            )
        return routes

    def _health_route(self, request: HttpRequest) -> HttpResponse:
        healthy, data = self.health()
        body = json.dumps(data, sort_keys=True).encode() + b"\n"
        return HttpResponse(200 if healthy else 503, {"content-type": "application/json"}, body)

    def _metrics_route(self, request: HttpRequest) -> HttpResponse:
        body, content_type = self.render_metrics()
        return HttpResponse(200, {"content-type": content_type}, body)

    # -- lifecycle -------------------------------------------------------

    @property
    def mode(self) -> str:
        if self.slack is None:
            return "off"
        return "socket" if self.slack.socket_mode else "http"

    def start(self) -> None:
        self.web.start()
        self._delivery_thread.start()
        self.scheduler.start()
        if self.socket is not None:
            self.socket.start()

    def shutdown(self) -> bool:
        """Stop everything; False if the current cycle had to be abandoned."""
        deadline = time.monotonic() + self.options.grace
        self.stopping.set()
        self._wake_delivery.set()
        self.web.stop()
        if self.socket is not None:
            self.socket.close()
        self.scheduler.shutdown(wait=False)
        fetcher = self._fetcher
        if fetcher is not None:
            fetcher.close()  # fetches in flight are abandoned; their feeds stay due
        cycle_done = self._cycle_lock.acquire(timeout=self.options.grace)
        self._delivery_thread.join(timeout=max(0.1, deadline - time.monotonic()))
        if not cycle_done or self._delivery_thread.is_alive():
            log.warning("shutting down with work in progress abandoned (nothing half-written)")
            return False
        if self._parse_pool is not None:
            self._parse_pool.close()
        if self._fetcher is not None:
            self._fetcher.close()  # one a cycle may have opened meanwhile
        for client in (self.interactions, self.discord_check):
            if client is not None:
                client.close()
        with contextlib.suppress(DatabaseUnavailable):  # else its heartbeat just stops
            self.poll_store.meta.leave(self.worker)
        for store in (self.poll_store, self.deliver_store, self.web_store):
            store.close()
        return True

    def reload(self) -> bool:
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config reload failed, keeping the old config: %s", problem)
            return False
        except OSError as exc:
            log.error("config reload failed, keeping the old config: %s", exc)
            return False
        self._sync(config, self.web_store)
        register_channel_secrets(config, self.web_store, self.env)
        old = self.holder.get()
        self.holder.set(config)
        if config.settings.send_interval != old.settings.send_interval:
            self.deliverer = self._deliverer(config)
        log.info(
            "reloaded %s: %d feeds, %d channels",
            self.config_path,
            len(config.feeds),
            len(config.channels()),
        )
        return True

    def _sync(self, config: Config, store: Store) -> None:
        if mirror_config(config, store, self.clock()):
            self._wake_delivery.set()  # held destinations may be called again

    def _deliverer(self, config: Config) -> Deliverer:
        return Deliverer(
            self.deliver_store,
            self.sinks,
            send_interval=config.settings.send_interval,
            clock=self.clock,
            sleep=self._sleep,
        )

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)  # a rate-limit wait ends early on shutdown

    # -- work --------------------------------------------------------------

    def _merger_for(self, config: Config) -> StoryMerger:
        """The near-duplicate index, kept between cycles (rebuilding it from
        the database each cycle would cost a read of the whole window); a
        reload that changes `merge_window` starts a new one."""
        window = config.settings.merge_window
        if self._merger is None or self._merger.window != window:
            self._merger = StoryMerger(self.poll_store, window)
        return self._merger

    def poll_job(self) -> None:
        if not self._cycle_lock.acquire(blocking=False):
            return
        try:
            if self.stopping.is_set() or not self.outage.may_try():
                return
            config = self.holder.get()
            self.heartbeat(config)
            poller = Poller(
                config,
                self.poll_store,
                self._fetcher_for(config),
                clock=self.clock,
                jitter=JITTER,
                pool=self._parser(config),
                merger=self._merger_for(config),
                worker=self.worker,
                cycle_period=self.options.tick,
            )
            report = poller.run_cycle(should_stop=self.stopping.is_set)
            self.outage.worked()
            self.metrics.observe_cycle(report)
            now = self.last_tick_at = self.clock()
            if report.feeds:  # an idle tick (no feed due) is not a poll cycle
                self.last_cycle = {
                    "at": now,
                    "duration": round(report.duration, 3),
                    "feeds": len(report.feeds),
                    "failed": report.failed,
                }
                self.poll_store.meta.set(LAST_POLL_META, repr(now))
            if report.alerts or report.digests:
                self._wake_delivery.set()
        except DatabaseUnavailable as exc:
            self.outage.failed(str(exc), "poll cycle")
        except Exception:
            log.exception("poll cycle failed")
        finally:
            self._cycle_lock.release()

    def heartbeat(self, config: Config) -> None:
        """Tell the database this worker lives and which config it runs; warn
        (once per change) when a live worker runs a different one: two
        workers polling with different feeds or terms disagree on what to
        alert, so the deployment should be given one config."""
        now = self.clock()
        stamp = config_stamp(config)[:12]
        meta = self.poll_store.meta
        meta.heartbeat(
            self.worker, host=socket.gethostname(), pid=os.getpid(), config_stamp=stamp, now=now
        )
        alive = meta.workers(seen_since=now - worker_timeout(self.options.tick))
        others = [w for w in alive if w.id != self.worker and w.config_stamp != stamp]
        if {w.id for w in others} - {w.id for w in self.other_configs}:
            for other in others:
                log.warning(
                    "worker %s runs another config (version %s) than this worker %s "
                    "(version %s): give every worker the same feeds.yaml",
                    other.id,
                    other.config_stamp,
                    self.worker,
                    stamp,
                )
        self.other_configs = others
        meta.forget_workers(now - 24 * 3600)

    def _fetcher_for(self, config: Config) -> Fetcher:
        """One long-lived fetcher, so keep-alive connections outlive a cycle;
        rebuilt when a reload changes the fetch settings."""
        policy = fetch_policy(config.settings)
        fetcher = self._fetcher
        if fetcher is None or fetcher.policy != policy:
            if fetcher is not None:
                fetcher.close()
            fetcher = self._fetcher = Fetcher(policy)
        return fetcher

    def _parser(self, config: Config) -> ParsePool:
        """One long-lived pool of parser processes; rebuilt if parse_timeout changes."""
        pool = self._parse_pool
        if pool is None or pool.timeout != config.settings.parse_timeout:
            if pool is not None:
                pool.close()
            pool = self._parse_pool = ParsePool(timeout=config.settings.parse_timeout)
            pool.start()
        return pool

    def _delivery_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.outage.may_try():
                    report = self.deliverer.deliver(
                        max_wait=self.options.tick, should_stop=self.stopping.is_set
                    )
                    self.outage.worked()
                    self.metrics.observe_delivery(report)
            except DatabaseUnavailable as exc:
                self.outage.failed(str(exc), "delivery")
            except Exception:
                log.exception("delivery failed")
            self._wake_delivery.wait(max(self.options.tick, self.outage.wait_for()))
            self._wake_delivery.clear()

    def handle_command(self, channel: str, user: str | None, text: str) -> Reply:
        self.metrics.observe_command(text.strip().partition(" ")[0].lower() or "help")
        ctx = CommandContext(
            store=self.web_store,
            config=self.holder.get,
            platform="slack",
            clock=self.clock,
            channel_problem=self.channel_check,
            destination_problem=self._destination_problem,
        )
        return dispatch(ctx, channel, user, text)

    def handle_discord_command(
        self, channel: str, user: str | None, subcommand: str, query: str
    ) -> Reply:
        ctx = CommandContext(
            store=self.web_store,
            config=self.holder.get,
            platform="discord",
            clock=self.clock,
            channel_problem=self.discord_check,
            destination_problem=self._destination_problem,
        )
        return run_subcommand(ctx, channel, user, subcommand, query)

    def _destination_problem(self, channel: str) -> str | None:
        """Why alerts to `channel` are held (its destination is paused), or None."""
        pause_key = getattr(self.sinks(channel), "pause_key", None)
        if pause_key is None:
            return None
        paused = self.web_store.gates.paused().get(str(pause_key(channel)))
        return paused[0] if paused is not None else None

    # -- observation -------------------------------------------------------

    def _feed_rows(self) -> tuple[int, int]:
        urls = [f.url for f in self.holder.get().feeds]
        rows = self.web_store.feeds.all(urls)
        return len(rows), sum(1 for r in rows if r.consecutive_failures > 0)

    def _snapshot(self) -> dict[str, int]:
        values = outbox_snapshot(self.web_store.outbox.counts())
        values["feeds"], values["feeds_failing"] = self._feed_rows()
        return values

    def render_metrics(self) -> tuple[bytes, str]:
        return self.metrics.render(), CONTENT_TYPE

    def health(self) -> tuple[bool, dict[str, Any]]:
        data: dict[str, Any] = {
            "slack": self.mode,
            "discord": "http" if self.interactions is not None else "off",
        }
        data["worker"] = self.worker
        try:
            if not self.outage.may_try():
                # Known down: answer at once instead of waiting on the server.
                raise DatabaseUnavailable(self.outage.error or "unreachable")
            values = self._snapshot()
            last_cycle_meta = self.web_store.meta.get(LAST_POLL_META)
            data["schema"] = self.web_store.meta.schema_version()
            data["db_ok"] = True
        except Exception as exc:
            log.warning("health check: database error: %s", type(exc).__name__)
            values, last_cycle_meta = {}, None
            data["db_ok"] = False
            if isinstance(exc, DatabaseUnavailable):
                data["database"] = f"unreachable: {exc}"
        data["other_configs"] = [w.id for w in self.other_configs]
        running = bool(self.scheduler.running) and not self.stopping.is_set()
        data["scheduler_running"] = running
        last_at = self.last_cycle.get("at")
        if last_at is None and last_cycle_meta:
            try:
                last_at = float(last_cycle_meta)
            except ValueError:
                last_at = None
        data["last_cycle_at"] = _iso(last_at) if last_at else None
        data["last_cycle_duration"] = self.last_cycle.get("duration")
        data["last_tick_at"] = _iso(self.last_tick_at) if self.last_tick_at else None
        data["feeds"] = values.get("feeds", 0)
        data["feeds_failing"] = values.get("feeds_failing", 0)
        data["alerts_pending"] = values.get("pending", 0)
        data["alerts_dead"] = values.get("dead", 0)
        try:
            paused = self.web_store.gates.paused()
        except Exception:
            paused = {}
        # e.g. {"slack:token": "the Slack token is broken (token_revoked)"}
        data["delivery_paused"] = {key: reason for key, (reason, _since) in paused.items()}
        if self.slack is not None:
            data["slack_token"] = "broken" if TOKEN_PAUSE in paused else "ok"
        if self.socket is not None:
            data["socket_mode_connected"] = self.socket.connected
        healthy = data["db_ok"] and running
        data["degraded_by"] = degraded_by(data)
        if not healthy:
            data["status"] = "unhealthy"
        else:
            data["status"] = "degraded" if data["degraded_by"] else "ok"
        return healthy, data


# Fields of /healthz that mean the service runs but some news is not getting
# through. "degraded" still answers 200: restarting would not fix a feed that
# is down, a destination that refuses messages or a revoked token; people
# have to look.
DEGRADING_COUNTS = ("feeds_failing", "alerts_dead", "delivery_paused", "other_configs")


def degraded_by(health: Mapping[str, Any]) -> list[str]:
    """The names of the /healthz fields that are non-zero (or non-empty) and
    make it degraded."""
    return [name for name in DEGRADING_COUNTS if health.get(name)]


def aligned_start(now: float, tick: float) -> datetime:
    """The next multiple of `tick` seconds since the epoch."""
    return datetime.fromtimestamp(math.ceil(now / tick) * tick, UTC)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _quiet_libraries() -> None:
    # Bolt logs rejected request bodies at INFO; APScheduler narrates every run.
    for name in ("slack_bolt", "slack_sdk", "apscheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    bot_log = logging.getLogger("bot")
    if bot_log.getEffectiveLevel() > logging.INFO:
        bot_log.setLevel(logging.INFO)


def run_service(
    config_path: str, db_path: str, port: int, *, env: Mapping[str, str] | None = None
) -> int:
    env = os.environ if env is None else env
    _quiet_libraries()
    options = ServiceOptions.from_env(env)
    try:
        service = Service(config_path, db_path, port, env=env, options=options)
    except OSError as exc:
        print(f"newshound: cannot start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BadPublicKey as exc:
        print(f"newshound: cannot start: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except (DatabaseUnavailable, DatabaseRefused) as exc:
        shown = redact_location(db_path)
        print(f"newshound: cannot start: database {shown}: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING

    stop = threading.Event()
    reload_requested = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload_requested.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)

    service.start()
    log.info(
        "newshound running: http://%s:%d (/healthz, /metrics), Slack commands: %s, alerts via %s",
        options.host,
        service.web.port,
        service.mode,
        service.sinks.describe,
    )
    while not stop.wait(0.2):
        if reload_requested.is_set():
            reload_requested.clear()
            service.reload()
    log.info("stopping")
    if not service.shutdown():
        # The current fetches could take up to fetch_timeout to return; every
        # feed commits in its own transaction, so leaving now loses nothing.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    log.info("stopped")
    return EXIT_OK
