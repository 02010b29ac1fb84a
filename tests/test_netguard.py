from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any, TypeVar

import pytest

from bot.netguard import (
    BlockedAddressError,
    GuardedResolver,
    ResolutionError,
    embedded_ipv4,
    is_address_allowed,
    parse_networks,
)

BLOCKED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",  # broadcast
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "fec0::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
    "::127.0.0.1",  # deprecated IPv4-compatible
    "not an address",
]
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.1",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("ip", BLOCKED)
def test_blocked_by_default(ip: str) -> None:
    assert is_address_allowed(ip) is False


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_addresses_allowed(ip: str) -> None:
    assert is_address_allowed(ip) is True
    assert is_address_allowed(ip_address(ip)) is True


def test_allow_networks_opens_exactly_their_range() -> None:
    allow = parse_networks(["127.0.0.0/8", "10.1.0.0/16", "fd00::/8"])
    assert is_address_allowed("127.0.0.1", allow)
    assert is_address_allowed("10.1.200.3", allow)
    assert not is_address_allowed("10.2.0.1", allow)
    assert is_address_allowed("fd00::5", allow)
    assert not is_address_allowed("::1", allow)
    assert not is_address_allowed("169.254.169.254", allow)
    # Embedded forms are judged by their IPv4 address, allow list included.
    assert is_address_allowed("::ffff:127.0.0.1", allow)
    assert not is_address_allowed("::ffff:192.168.0.1", allow)


def test_embedded_ipv4() -> None:
    v4 = IPv4Address("1.2.3.4")
    assert embedded_ipv4(IPv6Address("::ffff:1.2.3.4")) == v4
    assert embedded_ipv4(IPv6Address("64:ff9b::102:304")) == v4
    assert embedded_ipv4(IPv6Address("2002:102:304::")) == v4
    assert embedded_ipv4(IPv6Address("2606:4700::1")) is None


T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def resolve(resolver: GuardedResolver, host: str, port: int) -> list:
    try:
        return await resolver.resolve(host, port, family=socket.AF_UNSPEC)
    finally:
        await resolver.close()


async def check(resolver: GuardedResolver, host: str) -> None:
    try:
        await resolver.check_host(host, 9)
    finally:
        await resolver.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "localhost", "::1"])
def test_resolver_refuses_any_spelling_of_loopback(host: str) -> None:
    with pytest.raises(BlockedAddressError) as info:
        run(resolve(GuardedResolver(), host, 9))
    assert "private/loopback address" in str(info.value)
    assert "settings.allow_networks" in str(info.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "::1", "::ffff:127.0.0.1"])
def test_literal_hosts_are_checked_before_connecting(host: str) -> None:
    # aiohttp connects to IP literals without asking the resolver.
    with pytest.raises(BlockedAddressError):
        run(check(GuardedResolver(), host))


def test_names_are_left_to_the_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*args: object, **kwargs: object) -> list:
        raise AssertionError("check_host must not resolve names")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    run(check(GuardedResolver(), "feeds.example.org"))


def test_resolver_refuses_if_any_resolved_address_is_blocked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(BlockedAddressError) as info:
        run(resolve(GuardedResolver(), "rebind.example", 80))
    assert info.value.ip == "10.0.0.5"


def test_resolver_returns_checked_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800:220:1::1", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    results = run(resolve(GuardedResolver(), "news.example", 443))
    assert [(r["hostname"], r["host"], r["port"]) for r in results] == [
        ("news.example", "93.184.216.34", 443),
        ("news.example", "2606:2800:220:1::1", 443),
    ]
    assert [r["family"] for r in results] == [socket.AF_INET, socket.AF_INET6]


def test_resolver_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ResolutionError) as info:
        run(resolve(GuardedResolver(), "nowhere.invalid", 80))
    assert info.value.host == "nowhere.invalid"


def test_resolver_allows_allowed_networks() -> None:
    resolver = GuardedResolver(allow_networks=(ip_network("127.0.0.0/8"),))
    results = run(resolve(resolver, "127.0.0.1", 80))
    assert [r["host"] for r in results] == ["127.0.0.1"]
