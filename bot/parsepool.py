"""Feed parsing in worker processes with a time limit (SPEC §6).

feedparser is pure Python and some documents make it slow: its author-email
regex is quadratic on a long author field, and a 10 MiB feed of tiny items
takes half a minute. Parsing therefore never runs in the service's own
process: `ParsePool.parse` hands the body to one of N long-lived worker
processes and waits at most `timeout` seconds. A worker that overruns is
killed and replaced; one that dies (out of memory, crash) costs only the job
it was running. Either way the caller gets a `FeedError` and the other feeds,
the scheduler and Slack acknowledgements never notice.

Workers are started lazily (at most `size` of them) with the "spawn" start
method: the service is multi-threaded, and forking a multi-threaded process
can copy a held lock into the child. Each job sends the raw body bytes and a
few small fields; the reply is the small plain-text `ParsedFeed`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from bot.analyze import AnalyzedFeed
from bot.models import FeedError, ParsedFeed
from bot.parse import parse_feed

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
DEFAULT_MEMORY_LIMIT_MB = 1024  # address space per worker; None/0 = unlimited
START_TIMEOUT = 60.0  # a fresh worker must be ready (imports done) within this
_READY = "ready"

ParseFunction = Callable[..., ParsedFeed]


# --- the worker process -------------------------------------------------------


def _limit_memory(megabytes: int | None) -> None:
    if not megabytes:
        return
    try:
        import resource

        limit = int(megabytes) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: carry on
        pass


def _worker_main(conn: Connection, parse: ParseFunction, memory_limit_mb: int | None) -> None:
    """Loop: receive (url, content_type, max_items) + body bytes, reply with
    ("ok", ParsedFeed) or ("error", kind, message). `None` means stop."""
    import signal

    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory(memory_limit_mb)
    from bot.watchlist import WatchList

    watch = WatchList(())
    conn.send(_READY)
    while True:
        try:
            header = conn.recv()
            if header is None:
                return
            body = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent went away
        url, content_type, max_items, analysis, context_update = header
        if context_update is not None:
            # The watch terms changed: compile them once per worker, not per
            # job. They arrive parsed (a WatchList) or as entries to parse.
            from bot.watchlist import WatchList

            terms = context_update[1]
            watch = terms if isinstance(terms, WatchList) else WatchList(terms)
        reply: tuple[Any, ...]
        try:
            parsed = parse(body, url=url, content_type=content_type, max_items=max_items)
            if analysis is None:
                reply = ("ok", parsed)
            else:
                from bot.analyze import analyze

                feed_url, feed_name = analysis
                reply = ("ok", analyze(parsed, watch, feed_url=feed_url, feed_name=feed_name))
        except FeedError as exc:
            reply = ("error", exc.kind, exc.message)
        except MemoryError:
            reply = ("error", "parse", "feed too large to parse")
        except Exception as exc:
            reply = ("error", "parse", f"could not parse feed ({type(exc).__name__})")
        del body
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("error", "parse", "feed too large to parse"))
        except (EOFError, OSError):
            return


# --- the pool -----------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    jobs: int = 0
    stopping: bool = False
    context_version: str | None = None  # the watch terms this worker has compiled


class ParsePool:
    """A thread-safe pool of parser processes. Use as a context manager, or
    call `close()`; `parse` has the signature of `bot.parse.parse_feed`.

    size: most worker processes (default: the number of CPUs);
    timeout: seconds one parse may take before its worker is killed;
    memory_limit_mb: address-space limit per worker (a bigger document fails
        with a parse error instead of swapping the host);
    parse_function: what runs in the worker (a module-level function, so the
        "spawn" start method can import it); tests swap it.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        parse_function: ParseFunction = parse_feed,
        context: str = "spawn",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if context == "fork":
            raise ValueError("fork is unsafe in a multi-threaded service; use spawn/forkserver")
        self.size = max(1, size or os.cpu_count() or 1)
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.start_timeout = start_timeout
        self._parse_function = parse_function
        self._ctx: Any = multiprocessing.get_context(context)
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()  # started and not yet stopped
        self._starting = 0
        self._closed = False
        self._context: tuple[str, Any] | None = None  # (version, watch entries)
        self.started = 0  # workers started over the pool's life (for tests/metrics)
        self.replaced = 0  # workers killed after a timeout or found dead

    # -- public ------------------------------------------------------------

    def parse(
        self,
        body: bytes,
        *,
        url: str,
        content_type: str | None = None,
        max_items: int = 500,
    ) -> ParsedFeed:
        """Parse in a worker; raises FeedError (kind `parse`, `parse_timeout`,
        `parse_crash` or `parse_unavailable`)."""
        result = self._job(body, url, content_type, max_items, None)
        if not isinstance(result, ParsedFeed):
            raise FeedError("parse", "could not parse feed")
        return result

    def _job(
        self,
        body: bytes,
        url: str,
        content_type: str | None,
        max_items: int,
        analysis: tuple[str, str | None] | None,
    ) -> ParsedFeed | AnalyzedFeed:
        data = bytes(body)
        for attempt in (1, 2):
            worker = self._acquire()
            outcome, healthy, sent = self._run(worker, data, url, content_type, max_items, analysis)
            self._release(worker, healthy)
            if not isinstance(outcome, FeedError):
                return outcome
            if sent or attempt == 2:
                raise outcome
            # The worker had died while idle and never got the job: try a fresh one.
        raise AssertionError("unreachable")

    __call__ = parse

    def start(self) -> None:
        """Start every worker now rather than on first use, so a long-running
        service does not pay the start-up (imports) inside its first cycle."""
        workers = [self._acquire() for _ in range(self.size)]
        for worker in workers:
            self._release(worker, True)

    def set_watch(self, version: str, entries: Any) -> None:
        """The watch list (a WatchList, sent parsed, or its entries) `analyze`
        matches against; each worker receives it with its next job after
        `version` changes."""
        with self._cond:
            self._context = (version, entries)

    def analyze(
        self,
        body: bytes,
        *,
        url: str,
        content_type: str | None = None,
        max_items: int = 500,
        feed_url: str,
        feed_name: str | None,
    ) -> AnalyzedFeed:
        """Parse and analyse (story keys, matches, alert payloads) in a worker."""
        result = self._job(body, url, content_type, max_items, (feed_url, feed_name))
        if not isinstance(result, AnalyzedFeed):
            raise FeedError("parse", "could not parse feed")
        return result

    def close(self, grace: float = 5.0) -> None:
        """Stop all workers: idle ones at once, busy ones after their job
        finishes or `grace` seconds, whichever comes first. Idempotent."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            self._stop(worker, graceful=True)
        deadline = time.monotonic() + grace
        with self._cond:
            while (self._workers or self._starting) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            leftovers = list(self._workers)
        for worker in leftovers:
            self._stop(worker, graceful=False)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        pids = []
        with self._cond:
            for worker in self._workers:
                with contextlib.suppress(ValueError):  # closed meanwhile
                    if worker.process.pid is not None:
                        pids.append(worker.process.pid)
        return pids

    # -- internals ---------------------------------------------------------

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise FeedError("parse_unavailable", "parser is shut down")
                if self._idle:
                    return self._idle.pop()
                if len(self._workers) + self._starting < self.size:
                    self._starting += 1
                    break
                self._cond.wait()
        worker: _Worker | None = None
        try:
            worker = self._start()
        finally:
            with self._cond:
                self._starting -= 1
                if worker is not None:
                    self._workers.add(worker)
                    self.started += 1
                self._cond.notify_all()
        return worker

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self._parse_function, self.memory_limit_mb),
            name="newshound-parser",
            daemon=True,
        )
        try:
            process.start()
        except Exception as exc:
            parent.close()
            child.close()
            log.error("could not start a parser process: %s", type(exc).__name__)
            raise FeedError("parse_unavailable", "could not start a parser process") from None
        child.close()
        worker = _Worker(process, parent)
        try:
            if parent.poll(self.start_timeout) and parent.recv() == _READY:
                return worker
        except (EOFError, OSError):
            pass
        self._kill(worker)
        log.error("parser process did not start (exit code %s)", process.exitcode)
        raise FeedError("parse_unavailable", "parser process failed to start")

    def _run(
        self,
        worker: _Worker,
        body: bytes,
        url: str,
        content_type: str | None,
        max_items: int,
        analysis: tuple[str, str | None] | None = None,
    ) -> tuple[ParsedFeed | AnalyzedFeed | FeedError, bool, bool]:
        """(result or error, worker still usable, job reached the worker)."""
        with self._cond:
            context = self._context
        update = None
        if analysis is not None and context is not None and worker.context_version != context[0]:
            update = context
        try:
            worker.conn.send((url, content_type, max_items, analysis, update))
            worker.conn.send_bytes(body)
        except (EOFError, OSError, ValueError):
            return FeedError("parse_crash", "parser process died"), False, False
        if update is not None:
            worker.context_version = update[0]
        worker.jobs += 1
        try:
            if not worker.conn.poll(self.timeout):
                return (
                    FeedError(
                        "parse_timeout",
                        f"parsing took longer than {self.timeout:g} s; gave up on this document",
                    ),
                    False,
                    True,
                )
            reply = worker.conn.recv()
        except (EOFError, OSError):
            return (
                FeedError("parse_crash", "parser process died (out of memory or crashed)"),
                False,
                True,
            )
        except Exception:  # an unpicklable reply: the worker is still fine
            return FeedError("parse", "could not parse feed"), True, True
        if reply[0] == "ok" and isinstance(reply[1], (ParsedFeed, AnalyzedFeed)):
            return reply[1], True, True
        if reply[0] == "error":
            return FeedError(str(reply[1]), str(reply[2])), True, True
        return FeedError("parse", "could not parse feed"), True, True

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            keep = healthy and not self._closed and worker.process.is_alive()
            if keep:
                self._idle.append(worker)
            elif not healthy:
                self.replaced += 1
            self._cond.notify_all()
        if not keep:
            self._stop(worker, graceful=healthy)

    def _stop(self, worker: _Worker, *, graceful: bool) -> None:
        with self._cond:
            if worker.stopping:  # close() and the job's thread may both get here
                return
            worker.stopping = True
        if graceful:
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(None)
            worker.process.join(1.0)
        self._kill(worker)
        with self._cond:
            self._workers.discard(worker)
            self._cond.notify_all()

    @staticmethod
    def _kill(worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5.0)
        with contextlib.suppress(OSError):
            worker.conn.close()
        with contextlib.suppress(ValueError):
            worker.process.close()
