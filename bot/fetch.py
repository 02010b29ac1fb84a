"""Fetching feeds over HTTP safely and concurrently (SPEC §6).

`Fetcher` owns an asyncio event loop in a thread of its own with one aiohttp
session: keep-alive connections, at most `max_connections` open at once and at
most `per_host` fetches at a time per host. The poller runs whole feeds
(fetch, then parse in worker processes) as coroutines on that loop with
`submit`; other callers use the blocking `fetch`.

Each fetch is one conditional GET with manual redirect handling, an overall
deadline (redirects, DNS, connect, TLS and body included), a body cap counted
after decompression, and the address guard of `bot.netguard` on every hop.
All failures are `FeedError`s with a short stable `kind` and a message that
names at most the host.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import logging
import math
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar

import bot.aiohttp_import  # noqa: F401 - aiohttp without its default TLS contexts

# isort: split
import aiohttp
import certifi
from yarl import URL

from bot.hostlimit import DEFAULT_PER_HOST, HostLimiter
from bot.models import FeedError, FetchResult
from bot.netguard import BlockedAddressError, GuardedResolver, IPNetwork, ResolutionError

T = TypeVar("T")
log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0  # seconds `close` waits for connections to close
MAX_SHOWN_HOST = 80
MAX_VALIDATOR = 1024
_VALIDATOR_RE = re.compile(r"[\x20-\x7e\t]*")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class FetchPolicy:
    timeout: float = 20.0  # overall deadline per fetch: redirects and body included
    max_body_bytes: int = 10 * 1024 * 1024  # counted after decompression
    allow_networks: tuple[IPNetwork, ...] = ()
    max_redirects: int = 5
    user_agent: str = "newshound/0.1 (+https://github.com/newshound)"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) < 16 and value.replace(".", "", 1).isdigit():
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@lru_cache(maxsize=4096)
def _host_of(url: str) -> str:
    try:
        return URL(url.strip()).host or "feed"
    except (ValueError, TypeError):
        return "feed"


def _shown(host: str) -> str:
    """A host as error messages show it: a hostile redirect can name a host
    thousands of characters long."""
    return host if len(host) <= MAX_SHOWN_HOST else host[: MAX_SHOWN_HOST - 1] + "…"


def _validator(value: str | None) -> str | None:
    """An ETag / Last-Modified value fit to be stored and sent back, else None.
    A control character in one would make every later request fail before it
    is sent, and nothing would ever replace the stored value."""
    if value is None or len(value) > MAX_VALIDATOR or not _VALIDATOR_RE.fullmatch(value):
        return None
    return value


@lru_cache(maxsize=4096)  # the same feed URLs come back every cycle
def _check_url(url: str | URL, *, what: str = "URL") -> URL:
    try:
        parsed = url if isinstance(url, URL) else URL(url.strip())
        host = parsed.host
    except (ValueError, TypeError, UnicodeError):
        raise FeedError("bad_url", f"invalid {what}") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "none"
        raise FeedError("bad_url", f"unsupported {what} scheme {scheme!r} (only http/https)")
    if not host:
        raise FeedError("bad_url", f"{what} has no host")
    if parsed.user is not None or parsed.password is not None:
        raise FeedError("bad_url", f"{what} with user name/password refused ({host})")
    return parsed


class _BodyTooLarge(Exception):
    pass


# Real feeds are one gzip member; concatenated files make a few. Thousands of
# empty members cost CPU while producing nothing the body cap would count.
MAX_GZIP_MEMBERS = 64


class _Decoder:
    """Content-Encoding decoder whose output never exceeds the body cap, so a
    gzip bomb is stopped after at most `limit + 1` decompressed bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        self._limit = limit
        self._mode: str | None = None
        self._zlib: zlib._Decompress | None = None
        self._first = True  # no output yet from the current compressed stream
        self._later_member = False  # decoding a second or later gzip member
        self._done = False  # ignoring trailing garbage
        self._members = 1  # gzip members started
        if not codings:
            return
        if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
            raise FeedError("bad_encoding", f"unsupported content encoding {encoding!r}")
        self._mode = "deflate" if codings[0] == "deflate" else "gzip"
        self._zlib = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        if self._mode == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def _room(self, out: bytearray) -> int:
        return self._limit + 1 - len(out)

    def feed(self, data: bytes, out: bytearray) -> None:
        if self._zlib is None:
            out += data
        else:
            self._inflate(data, out)
        if len(out) > self._limit:
            raise _BodyTooLarge

    def _inflate(self, data: bytes, out: bytearray) -> None:
        assert self._zlib is not None
        while data and not self._done:
            if self._zlib.eof:
                # The previous stream is complete; `data` is what follows it.
                if self._mode != "gzip":
                    self._done = True  # bytes after a deflate stream: ignore
                    return
                if not data.strip(b"\0"):
                    return  # NUL padding: ignored, not kept (the raw byte cap ends it)
                self._members += 1
                if self._members > MAX_GZIP_MEMBERS:
                    raise FeedError("bad_encoding", "compressed body has too many gzip members")
                self._zlib = self._new()
                self._first = True
                self._later_member = True
            try:
                chunk = self._zlib.decompress(data, self._room(out))
            except zlib.error:
                if self._mode == "deflate" and self._first:
                    # Some servers send raw deflate without the zlib wrapper.
                    self._first = False
                    self._zlib = self._new(raw=True)
                    continue
                if self._later_member and self._first:
                    self._done = True  # junk after a complete gzip member: ignore
                    return
                raise FeedError("bad_encoding", "corrupt compressed response body") from None
            self._first = False
            out += chunk
            if len(out) > self._limit:
                raise _BodyTooLarge
            # Input zlib held back for lack of room, else what follows the
            # stream's end (another member or padding), else nothing left.
            tail = self._zlib.unused_data if self._zlib.eof else b""
            data = self._zlib.unconsumed_tail or tail

    def finish(self, out: bytearray) -> None:
        if self._zlib is not None and not self._done:
            out += self._zlib.flush()
            if len(out) > self._limit:
                raise _BodyTooLarge


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                todo.append(nxt)


def _classify(exc: BaseException, host: str, timeout: float) -> FeedError:
    """Map whatever aiohttp/asyncio/socket raised to a FeedError about `host`
    (the host of the hop that failed)."""
    chain = list(_causes(exc))
    for e in chain:
        if isinstance(e, BlockedAddressError):
            return FeedError("blocked_address", e.message)
    for e in chain:
        if isinstance(e, ResolutionError):
            return FeedError("dns", f"could not resolve host {_shown(e.host)}")
        if isinstance(e, (aiohttp.ClientConnectorDNSError, socket.gaierror)):
            return FeedError("dns", f"could not resolve host {host}")
    for e in chain:
        if isinstance(e, TimeoutError):
            return FeedError("timeout", f"{host}: no complete response within {timeout:g} s")
    # aiohttp's TLS errors are ssl.SSLErrors too, without the details: the
    # ssl module's own error further down the chain has them.
    ssl_errors = [e for e in chain if isinstance(e, ssl.SSLError)]
    for e in sorted(ssl_errors, key=lambda e: isinstance(e, aiohttp.ClientError)):
        if isinstance(e, ssl.SSLCertVerificationError):
            reason = getattr(e, "verify_message", None) or "certificate verification failed"
            return FeedError("tls", f"{host}: TLS certificate error ({reason})")
        reason = getattr(e, "reason", None) or "SSL error"
        return FeedError("tls", f"{host}: TLS handshake failed ({reason})")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return FeedError("connect", f"{host}: connection refused")
        if isinstance(e, ConnectionResetError):
            return FeedError("connect", f"{host}: connection reset")
    for e in chain:
        if isinstance(e, aiohttp.InvalidURL):
            return FeedError("bad_url", f"{host}: invalid URL")
    for e in chain:
        if isinstance(e, (ValueError, UnicodeError)) and not isinstance(e, aiohttp.ClientError):
            # aiohttp refuses to put the value on the wire (e.g. a header
            # with a control character): nothing was sent.
            return FeedError("protocol", f"{host}: request could not be sent")
    for e in chain:
        if isinstance(
            e,
            (
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientPayloadError,
                aiohttp.ClientResponseError,
            ),
        ):
            return FeedError("protocol", f"{host}: server closed the connection or sent bad HTTP")
    for e in chain:
        if isinstance(e, (aiohttp.ClientError, OSError)):
            return FeedError("connect", f"{host}: connection failed")
    return FeedError("connect", f"{host}: request failed ({type(exc).__name__})")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _status_error(status: int, headers: dict[str, str], host: str) -> FeedError:
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 410:
        return FeedError("gone", f"{host}: feed is gone (HTTP 410)", gone=True)
    if status >= 500:
        kind = "http_5xx"
    elif status >= 400:
        kind = f"http_{status}"
    else:
        kind = "http_status"
    return FeedError(kind, f"{host}: HTTP {status} {_reason(status)}", retry_after=retry_after)


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # certifi's bundle, as browsers and most HTTP clients use: the same trust
    # store in a slim container as on a developer machine. Built on the first
    # https request, not at start: reading the bundle is a noticeable part of
    # a `poll --once` whose feeds are all plain http.
    return ssl.create_default_context(cafile=certifi.where())


class FetcherClosed(RuntimeError):
    pass


def abandoned() -> FeedError:
    """The error of a fetch given up because the fetcher is shutting down:
    it says nothing about the feed."""
    return FeedError("cancelled", "fetch abandoned: shutting down")


class _Hop:
    """The host currently being talked to, so an error names the hop that failed."""

    def __init__(self, host: str) -> None:
        self.host = host


class Fetcher:
    """Concurrent feed fetcher on an event loop of its own (see module doc).

    Safe to use from any number of threads; `close` (or the `with` block)
    stops the loop and closes every connection."""

    MAX_CONNECTIONS = 64  # open at once, all hosts together

    def __init__(self, policy: FetchPolicy, *, per_host: int = DEFAULT_PER_HOST) -> None:
        self.policy = policy
        self.hosts = HostLimiter(per_host)
        self._closed = False
        self._closing = threading.Lock()  # `submit` never races `close`
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="newshound-fetch", daemon=True
        )
        self._thread.start()
        self._resolver = GuardedResolver(policy.allow_networks)
        self._session: aiohttp.ClientSession = self.call(self._open_session())

    async def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.MAX_CONNECTIONS,
            resolver=self._resolver,
            ttl_dns_cache=60,  # cached answers were checked when they were resolved
            keepalive_timeout=30,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # a feed must not set state for the next one
            auto_decompress=False,  # we decompress ourselves, under the body cap
            trust_env=False,  # never proxies or certificates from the environment
            timeout=aiohttp.ClientTimeout(total=None),  # the overall deadline is ours
            headers={
                "User-Agent": self.policy.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )

    # -- running coroutines on the fetcher's loop ------------------------------

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coroutine` on the fetcher's loop; cancel the future to cancel it.
        Every submitted coroutine finishes or is cancelled, even if `close`
        comes next; after `close`, raises FetcherClosed."""
        with self._closing:
            if self._closed:
                coroutine.close()
                raise FetcherClosed("the fetcher is closed")
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the fetcher's loop and wait for its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Fetcher.call from the fetcher's own loop would deadlock")
        return self.submit(coroutine).result()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- lifecycle --------------------------------------------------------------

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Cancel fetches still running, close every connection, stop the loop."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
        try:
            # Queued behind every coroutine submitted before the flag was set,
            # so `_close` sees (and cancels) all of them.
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(CLOSE_TIMEOUT)
        except concurrent.futures.TimeoutError:
            log.warning("fetcher: connections still closing after %g s; left behind", CLOSE_TIMEOUT)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CLOSE_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()

    async def _close(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:  # fetches still running (an abandoned cycle)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._session.close()
        await self._resolver.close()

    # -- fetching --------------------------------------------------------------

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """GET `url` (blocking); raises FeedError. A 304 gives `not_modified=True`."""
        try:
            return self.call(self.fetch_async(url, etag=etag, last_modified=last_modified))
        except (FetcherClosed, concurrent.futures.CancelledError):
            raise abandoned() from None

    def host_slot(self, url: str) -> AbstractAsyncContextManager[None]:
        """One of the `per_host` slots of the URL's host (see `fetch_now`)."""
        return self.hosts.slot(_host_of(url))

    async def fetch_async(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """`fetch` as a coroutine on the fetcher's loop: waits for a host slot."""
        async with self.host_slot(url):
            return await self.fetch_now(url, etag=etag, last_modified=last_modified)

    async def fetch_now(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """Fetch without waiting for a host slot: the caller holds one. The
        deadline starts here, so time spent queueing for a busy host is not
        counted against this feed's server."""
        hop = _Hop(_shown(_host_of(url)))
        timeout = self.policy.timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._fetch(url, etag, last_modified, hop)
        except FeedError:
            raise
        except _BodyTooLarge:
            raise self._too_large(hop.host) from None
        except Exception as exc:
            raise _classify(exc, hop.host, timeout) from None

    def _too_large(self, host: str) -> FeedError:
        limit = self.policy.max_body_bytes
        size = f"{limit / 1048576:g} MiB" if limit >= 1048576 else f"{limit} bytes"
        return FeedError("too_large", f"{host}: response body exceeds {size}")

    async def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, hop: _Hop
    ) -> FetchResult:
        current = _check_url(url)
        etag, last_modified = _validator(etag), _validator(last_modified)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _hop in range(self.policy.max_redirects + 1):
            await self._resolver.check_host(current.host or "", current.port or 80)
            host = hop.host = _shown(current.host or "feed")
            # Every https request names our context (never aiohttp's default).
            tls = _ssl_context() if current.scheme == "https" else False
            async with self._session.get(
                current, headers=headers, allow_redirects=False, ssl=tls
            ) as response:
                status = response.status
                if status in REDIRECT_STATUSES:
                    current = self._redirect_target(current, response, host)
                    continue
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                new_etag = _validator(response_headers.get("etag"))
                new_modified = _validator(response_headers.get("last-modified"))
                if status == 304:
                    # Reading the (empty) rest lets the connection go back to
                    # the keep-alive pool instead of closing.
                    await response.read()
                    return FetchResult(
                        url=str(current),
                        status=304,
                        body=b"",
                        headers=response_headers,
                        not_modified=True,
                        etag=new_etag or etag,
                        last_modified=new_modified or last_modified,
                    )
                if not 200 <= status < 300:
                    raise _status_error(status, response_headers, host)
                body = await self._read_body(response, response_headers)
                return FetchResult(
                    url=str(current),
                    status=status,
                    body=body,
                    headers=response_headers,
                    etag=new_etag,
                    last_modified=new_modified,
                )
        raise FeedError(
            "redirect_loop",
            f"{_shown(_host_of(url))}: more than {self.policy.max_redirects} redirects",
        )

    @staticmethod
    def _redirect_target(current: URL, response: aiohttp.ClientResponse, host: str) -> URL:
        status = response.status
        location = response.headers.get("location", "").strip()
        if not location:
            raise FeedError("bad_redirect", f"{host}: HTTP {status} without Location")
        try:
            target = current.join(URL(location))
        except (ValueError, TypeError, UnicodeError):
            raise FeedError("bad_url", f"{host}: invalid redirect target") from None
        return _check_url(target, what="redirect target")

    async def _read_body(self, response: aiohttp.ClientResponse, headers: dict[str, str]) -> bytes:
        limit = self.policy.max_body_bytes
        encoding = headers.get("content-encoding", "")
        decoder = _Decoder(encoding, limit)
        length = headers.get("content-length", "")
        if not encoding and length.isdigit() and len(length) < 20 and int(length) > limit:
            raise _BodyTooLarge
        out = bytearray()
        received = 0
        async for raw in response.content.iter_any():
            # The cap counts the bytes received too: a stream that decompresses
            # to nothing (padding, empty members) must not run until the deadline.
            received += len(raw)
            if received > limit:
                raise _BodyTooLarge
            decoder.feed(raw, out)
        decoder.finish(out)
        return bytes(out)
