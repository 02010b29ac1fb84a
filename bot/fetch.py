"""Fetching feeds over HTTP safely (SPEC §6).

`Fetcher.fetch` performs one conditional GET with manual redirect handling, an
overall deadline, a body cap counted after decompression, and the network
guard of `bot.netguard` on every connection. All failures are `FeedError`s with
a short stable `kind` and a message that names at most the host.
"""

from __future__ import annotations

import email.utils
import math
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from types import TracebackType

import httpcore
import httpx

from bot.models import FeedError, FetchResult
from bot.netguard import (
    BlockedAddressError,
    GuardedTransport,
    IPNetwork,
    ResolutionError,
    deadline_scope,
)

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
        return httpx.URL(url).host or "feed"
    except Exception:
        return "feed"


@lru_cache(maxsize=4096)  # the same feed URLs come back every cycle
def _check_url(url: str | httpx.URL, *, what: str = "URL") -> httpx.URL:
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url.strip())
    except Exception:
        raise FeedError("bad_url", f"invalid {what}") from None
    if parsed.scheme not in ("http", "https"):
        scheme = parsed.scheme or "none"
        raise FeedError("bad_url", f"unsupported {what} scheme {scheme!r} (only http/https)")
    if not parsed.host:
        raise FeedError("bad_url", f"{what} has no host")
    if parsed.userinfo:
        raise FeedError("bad_url", f"{what} with user name/password refused ({parsed.host})")
    return parsed


class _BodyTooLarge(Exception):
    pass


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
            if self._zlib.unconsumed_tail:
                data = self._zlib.unconsumed_tail
                continue
            if self._zlib.eof and self._mode == "gzip" and self._zlib.unused_data.strip(b"\0"):
                data = self._zlib.unused_data  # another gzip member follows
                self._zlib = self._new()
                self._first = True
                self._later_member = True
                continue
            break

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


def _failing_host(chain: list[BaseException], host: str) -> str:
    """The host being fetched when the error happened (after a redirect that
    is the redirect target's, not the feed URL's), else `host`."""
    for e in chain:
        if isinstance(e, ResolutionError) and e.host:
            return e.host
    for e in chain:
        if isinstance(e, httpx.RequestError):
            try:
                return e.request.url.host or host
            except RuntimeError:  # raised outside a request
                continue
    return host


def _classify(exc: BaseException, host: str, timeout: float) -> FeedError:
    """Map whatever httpx/httpcore/socket raised to a FeedError."""
    chain = list(_causes(exc))
    host = _failing_host(chain, host)
    for e in chain:
        if isinstance(e, BlockedAddressError):
            return FeedError("blocked_address", e.message)
    for e in chain:
        if isinstance(e, (ResolutionError, socket.gaierror)):
            return FeedError("dns", f"could not resolve host {host}")
    for e in chain:
        if isinstance(e, (httpx.TimeoutException, httpcore.TimeoutException, TimeoutError)):
            return FeedError("timeout", f"{host}: no complete response within {timeout:g} s")
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            reason = e.verify_message or "certificate verification failed"
            return FeedError("tls", f"{host}: TLS certificate error ({reason})")
        if isinstance(e, ssl.SSLError):
            return FeedError("tls", f"{host}: TLS handshake failed ({e.reason or 'SSL error'})")
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return FeedError("connect", f"{host}: connection refused")
        if isinstance(e, ConnectionResetError):
            return FeedError("connect", f"{host}: connection reset")
    for e in chain:
        if isinstance(e, httpx.RemoteProtocolError) and "location header" in str(e).lower():
            # httpx validates Location itself (e.g. `http://0177.0.0.2/`) before we see it.
            return FeedError("bad_url", f"{host}: invalid redirect target")
    for e in chain:
        if isinstance(e, (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)):
            return FeedError("protocol", f"{host}: server closed the connection or sent bad HTTP")
        if isinstance(e, (httpx.LocalProtocolError, httpcore.LocalProtocolError)):
            return FeedError("protocol", f"{host}: request could not be sent")
    for e in chain:
        if isinstance(e, httpx.InvalidURL):
            return FeedError("bad_url", "invalid URL")
    for e in chain:
        if isinstance(e, (httpx.TransportError, httpcore.NetworkError, OSError)):
            return FeedError("connect", f"{host}: connection failed")
    return FeedError("connect", f"{host}: request failed ({type(exc).__name__})")


def _status_error(response: httpx.Response, host: str) -> FeedError:
    status = response.status_code
    reason = httpx.codes.get_reason_phrase(status) or "error"
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 410:
        return FeedError("gone", f"{host}: feed is gone (HTTP 410)", gone=True)
    if status >= 500:
        kind = "http_5xx"
    elif status >= 400:
        kind = f"http_{status}"
    else:
        kind = "http_status"
    return FeedError(kind, f"{host}: HTTP {status} {reason}", retry_after=retry_after)


class Fetcher:
    """Thread-safe feed fetcher with a small keep-alive pool per host.

    One pool per host rather than one for everything: httpcore checks every
    idle connection of a pool on each request, so a shared pool's cost grows
    with the number of hosts; per host it stays at a few connections."""

    # The poller opens at most 4 at once per host (HostLimiter); the pool
    # allows more so direct concurrent callers never queue inside httpcore.
    PER_HOST_CONNECTIONS = 16
    PER_HOST_KEEPALIVE = 4

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._ssl_context = httpx.create_ssl_context(trust_env=False)  # loaded once
        self._transports: dict[tuple[str, str, int | None], GuardedTransport] = {}
        self._transports_lock = threading.Lock()
        self._transport = GuardedTransport(
            allow_networks=policy.allow_networks, verify=self._ssl_context
        )
        self._client = httpx.Client(
            transport=self._transport,
            follow_redirects=False,
            trust_env=False,
            timeout=policy.timeout,
            headers={
                "User-Agent": policy.user_agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
        )

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
        self._client.close()
        with self._transports_lock:
            transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            transport.close()

    def _transport_for(self, url: httpx.URL) -> GuardedTransport:
        key = (url.scheme, url.host, url.port)
        with self._transports_lock:
            transport = self._transports.get(key)
            if transport is None:
                transport = self._transports[key] = GuardedTransport(
                    allow_networks=self.policy.allow_networks,
                    verify=self._ssl_context,
                    limits=httpx.Limits(
                        max_connections=self.PER_HOST_CONNECTIONS,
                        max_keepalive_connections=self.PER_HOST_KEEPALIVE,
                        keepalive_expiry=30.0,
                    ),
                )
            return transport

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """GET `url`; raises FeedError. A 304 gives `not_modified=True`."""
        host = _host_of(url)
        timeout = self.policy.timeout
        deadline = time.monotonic() + timeout
        try:
            with deadline_scope(deadline):
                return self._fetch(url, etag, last_modified, deadline)
        except FeedError:
            raise
        except _BodyTooLarge:
            raise self._too_large(host) from None
        except Exception as exc:
            raise _classify(exc, host, timeout) from None

    def _too_large(self, host: str) -> FeedError:
        limit = self.policy.max_body_bytes
        size = f"{limit / 1048576:g} MiB" if limit >= 1048576 else f"{limit} bytes"
        return FeedError("too_large", f"{host}: response body exceeds {size}")

    def _timed_out(self, host: str) -> FeedError:
        return FeedError(
            "timeout", f"{host}: no complete response within {self.policy.timeout:g} s"
        )

    def _fetch(
        self, url: str, etag: str | None, last_modified: str | None, deadline: float
    ) -> FetchResult:
        current = _check_url(url)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _hop in range(self.policy.max_redirects + 1):
            host = current.host
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timed_out(host)
            request = self._client.build_request(
                "GET", current, headers=headers, timeout=httpx.Timeout(remaining)
            )
            # Straight to the transport: no cookies, auth, hooks or redirect
            # machinery (redirects are followed and re-checked above), which
            # is most of the client's per-request cost on a 304.
            try:
                response = self._transport_for(request.url).handle_request(request)
            except httpx.RequestError as exc:
                exc.request = request  # the client would do this; errors name the host
                raise
            response.request = request
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location", "").strip()
                    if not location:
                        raise FeedError("bad_redirect", f"{host}: HTTP {status} without Location")
                    try:
                        target = current.join(location)
                    except Exception:
                        raise FeedError("bad_url", f"{host}: invalid redirect target") from None
                    current = _check_url(target, what="redirect target")
                    continue
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                new_etag = response.headers.get("etag")
                new_modified = response.headers.get("last-modified")
                if status == 304:
                    # A 304 has no body; reading the (empty) rest lets the
                    # connection go back to the keep-alive pool instead of closing.
                    response.read()
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
                    raise _status_error(response, host)
                body = self._read_body(response, deadline, host)
                return FetchResult(
                    url=str(current),
                    status=status,
                    body=body,
                    headers=response_headers,
                    etag=new_etag,
                    last_modified=new_modified,
                )
            finally:
                response.close()
        raise FeedError(
            "redirect_loop",
            f"{_host_of(url)}: more than {self.policy.max_redirects} redirects",
        )

    def _read_body(self, response: httpx.Response, deadline: float, host: str) -> bytes:
        limit = self.policy.max_body_bytes
        encoding = response.headers.get("content-encoding", "")
        decoder = _Decoder(encoding, limit)
        length = response.headers.get("content-length", "")
        if not encoding and length.isdigit() and len(length) < 20 and int(length) > limit:
            raise _BodyTooLarge
        out = bytearray()
        for raw in response.iter_raw():
            decoder.feed(raw, out)
            if time.monotonic() > deadline:
                raise self._timed_out(host)
        decoder.finish(out)
        return bytes(out)
