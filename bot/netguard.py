"""Network guard for the feed fetcher (SPEC §6).

Every TCP connection the fetcher opens goes through `GuardedBackend.connect_tcp`,
which resolves the host itself, refuses the connection if *any* resolved address
is loopback/private/link-local/CGNAT/multicast/reserved/... (unless it lies in an
explicitly allowed network), and then connects to the checked IP literal so a
second DNS lookup can never hand back a different answer (DNS rebinding).
Because the check sits in the connection layer it applies to every redirect hop
and to odd host spellings (`2130706433`, `0x7f.1`, `127.1`) alike: whatever
getaddrinfo turns them into is what gets checked.

The backend also enforces a per-thread overall deadline (`deadline_scope`): every
DNS lookup, connect, TLS handshake, read and write gets at most the time that is
left, so a server dripping one byte a second cannot stretch a fetch.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import httpcore
import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Spelled out instead of relying only on `ipaddress` properties, whose exact
# coverage changed between Python patch releases.
_BLOCKED_V4: tuple[IPv4Network, ...] = tuple(
    IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata 169.254.169.254)
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast 255.255.255.255
    )
)
_BLOCKED_V6: tuple[IPv6Network, ...] = tuple(
    IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (incl. Teredo 2001::/32)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")


class BlockedAddressError(Exception):
    """Raised by `GuardedBackend.connect_tcp` when a host resolves to an address
    outside the allowed set. Deliberately *not* an httpcore exception: httpx's
    exception mapping only converts httpcore exceptions, so this one travels up
    through httpcore's pool and `httpx.Client.send` unchanged."""

    def __init__(self, host: str, ip: str) -> None:
        self.host = host
        self.ip = ip
        self.message = (
            f"refused to connect to {ip}: private/loopback address "
            "(add it to settings.allow_networks to allow)"
        )
        super().__init__(self.message)


class ResolutionError(httpcore.ConnectError):
    """DNS lookup failed (httpx maps it to `httpx.ConnectError`, keeping this
    exception as `__cause__`)."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"could not resolve host {host}: {reason}")


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings (as in `settings.allow_networks`); raises ValueError."""
    return tuple(ip_network(v.strip(), strict=False) for v in values)


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address carried inside an IPv4-mapped (::ffff:0:0/96), NAT64
    (64:ff9b::/96) or 6to4 (2002::/16) IPv6 address, else None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _in_any(ip: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def is_address_allowed(ip: IPAddress | str, allow_networks: Sequence[IPNetwork] = ()) -> bool:
    """True when the fetcher may connect to `ip`.

    Public unicast addresses are allowed; loopback, private, link-local, CGNAT,
    unique-local, multicast, reserved, unspecified and broadcast addresses are
    refused unless they fall inside one of `allow_networks`. IPv6 addresses that
    embed an IPv4 address are judged by the embedded address.
    """
    if isinstance(ip, str):
        try:
            addr: IPAddress = ip_address(ip)
        except ValueError:
            return False
    else:
        addr = ip
    if _in_any(addr, allow_networks):
        return True
    if isinstance(addr, IPv6Address):
        v4 = embedded_ipv4(addr)
        if v4 is not None:
            return is_address_allowed(v4, allow_networks)
        if _in_any(addr, _BLOCKED_V6) or addr.is_site_local:
            return False
    elif _in_any(addr, _BLOCKED_V4):
        return False
    return not (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


# --- overall deadline, per thread -------------------------------------------

_local = threading.local()


@contextmanager
def deadline_scope(deadline: float) -> Iterator[None]:
    """Within the block, every network operation of a `GuardedBackend` on this
    thread is cut off at `deadline` (a `time.monotonic()` value)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


def _clamp(timeout: float | None, exc_type: type[Exception]) -> float | None:
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise exc_type("overall deadline exceeded")
    return remaining if timeout is None else min(timeout, remaining)


class DeadlineStream(httpcore.NetworkStream):
    """Wraps a stream so each read/write waits no longer than the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
        )
        return DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# --- the backend --------------------------------------------------------------


def _getaddrinfo(host: str, port: int, timeout: float | None) -> list[str]:
    """Resolve in a daemon thread so a hung resolver cannot outlive `timeout`."""
    outcome: list[list[str] | BaseException] = []

    def run() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome.append([str(info[4][0]) for info in infos])
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=run, name="newshound-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise httpcore.ConnectTimeout(f"DNS lookup for {host} timed out")
    result = outcome[0]
    if isinstance(result, socket.gaierror):
        raise ResolutionError(host, result.strerror or str(result)) from result
    if isinstance(result, (UnicodeError, OSError)):
        raise ResolutionError(host, str(result)) from result
    if isinstance(result, BaseException):
        raise result
    return result


class GuardedBackend(httpcore.SyncBackend):
    def __init__(self, allow_networks: Sequence[IPNetwork] = ()) -> None:
        self.allow_networks = tuple(allow_networks)

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[str]:
        """All addresses `host` resolves to, in resolver order, de-duplicated."""
        try:
            return [str(ip_address(host))]  # already a literal: no lookup
        except ValueError:
            pass
        addresses = list(dict.fromkeys(_getaddrinfo(host, port, timeout)))
        if not addresses:
            raise ResolutionError(host, "no addresses")
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.resolve(host, port, _clamp(timeout, httpcore.ConnectTimeout))
        for ip in addresses:
            if not is_address_allowed(ip, self.allow_networks):
                raise BlockedAddressError(host, ip)
        options = list(socket_options) if socket_options is not None else []
        last_error: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                stream = super().connect_tcp(
                    ip,
                    port,
                    timeout=_clamp(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=options,
                )
            except httpcore.ConnectError as exc:
                last_error = exc
                continue
            return DeadlineStream(stream)
        assert last_error is not None
        raise last_error


class GuardedTransport(httpx.HTTPTransport):
    """`httpx.HTTPTransport` whose connection pool uses `GuardedBackend`.

    Never uses proxies or proxy/certificate settings from the environment.
    """

    def __init__(
        self,
        *,
        allow_networks: Sequence[IPNetwork] = (),
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        limits = limits or httpx.Limits(
            max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
        )
        ssl_context = (
            verify
            if isinstance(verify, ssl.SSLContext)
            else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # Replace the pool httpx just built (it holds no connections yet) with
        # one that connects through the guarded backend.
        self.backend = GuardedBackend(allow_networks)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=self.backend,
        )
