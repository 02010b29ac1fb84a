"""Network guard for the feed fetcher (SPEC §6).

Every connection the fetcher opens is to an address that `GuardedResolver`
produced and checked: it resolves the host itself, refuses the connection if
*any* resolved address is loopback/private/link-local/CGNAT/multicast/reserved/...
(unless it lies in an explicitly allowed network), and hands the connector the
checked IP literals, so a second DNS lookup can never give a different answer
(DNS rebinding). Hosts that are already IP literals never reach a resolver in
aiohttp, so the fetcher checks them with `check_host` before each request;
odd spellings (`2130706433`, `0x7f.1`, `127.1`) are judged by what getaddrinfo
turns them into. Both run for every redirect hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import bot.aiohttp_import  # noqa: F401 - aiohttp without its default TLS contexts

# isort: split
from aiohttp.abc import AbstractResolver, ResolveResult

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
    """A host resolves to an address outside the allowed set. Deliberately not
    an OSError: aiohttp wraps OSErrors from the resolver as DNS failures, and
    lets anything else travel up unchanged."""

    def __init__(self, host: str, ip: str) -> None:
        self.host = host
        self.ip = ip
        self.message = (
            f"refused to connect to {ip}: private/loopback address "
            "(add it to settings.allow_networks to allow)"
        )
        super().__init__(self.message)


class ResolutionError(OSError):
    """DNS lookup failed (aiohttp wraps it in `ClientConnectorDNSError`, keeping
    this exception as `__cause__`)."""

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


# --- the resolver ---------------------------------------------------------------


async def _getaddrinfo(host: str, port: int, family: int) -> list[tuple[int, str]]:
    """getaddrinfo in a daemon thread of its own. Not a thread pool: a lookup
    whose nameservers never answer blocks its thread for half a minute, and a
    few of those must neither starve the other feeds' lookups nor hold up the
    process at exit (pool threads are joined at exit; daemon threads are not)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[list[tuple[int, str]]] = loop.create_future()

    def deliver(result: list[tuple[int, str]] | BaseException) -> None:
        if answer.done():  # the fetch gave up (deadline) before DNS answered
            return
        if isinstance(result, BaseException):
            answer.set_exception(result)
        else:
            answer.set_result(result)

    def lookup() -> None:
        result: list[tuple[int, str]] | BaseException
        try:
            infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
            result = [(int(info[0]), str(info[4][0])) for info in infos]
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            result = ResolutionError(host, reason)
        with contextlib.suppress(RuntimeError):  # loop closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, result)

    threading.Thread(target=lookup, name="newshound-dns", daemon=True).start()
    return await answer


def _literal(host: str) -> str | None:
    """`host` as a canonical IP address string if it is an IP literal."""
    try:
        return str(ip_address(host.strip("[]")))
    except ValueError:
        return None


def looks_numeric(host: str) -> bool:
    """True for hosts that aiohttp treats as IP literals and never resolves."""
    return ":" in host or host.replace(".", "").isdigit()


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that returns only checked addresses (or raises)."""

    def __init__(self, allow_networks: Sequence[IPNetwork] = ()) -> None:
        self.allow_networks = tuple(allow_networks)

    async def addresses(
        self, host: str, port: int, family: int = socket.AF_UNSPEC
    ) -> list[tuple[int, str]]:
        """(family, address) pairs for `host`, in resolver order, all allowed."""
        literal = _literal(host)
        found: list[tuple[int, str]]
        if literal is not None:
            found = [(socket.AF_INET6 if ":" in literal else socket.AF_INET, literal)]
        else:
            found = list(dict.fromkeys(await _getaddrinfo(host, port, family)))
        if not found:
            raise ResolutionError(host, "no addresses")
        for _family, ip in found:
            if not is_address_allowed(ip, self.allow_networks):
                raise BlockedAddressError(host, ip)
        return found

    async def check_host(self, host: str, port: int) -> None:
        """Refuse an IP-literal host that is not allowed. aiohttp connects to
        literals without asking a resolver, so this runs before each request."""
        if looks_numeric(host) or _literal(host) is not None:
            await self.addresses(host, port)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": found_family,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for found_family, ip in await self.addresses(host, port, family)
        ]

    async def close(self) -> None:
        pass  # lookups still running finish in their own daemon threads
