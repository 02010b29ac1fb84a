"""The network guard against a real canary: a server on a second loopback
address (127.0.0.2) that must never get a connection while only 127.0.0.1/32
is allowed, however the URL or a redirect spells its address."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from ipaddress import ip_network

import pytest
from hostile import CANARY_HOST, CanaryServer, HostileServer, loopback_alias_available

from bot.fetch import Fetcher, FetchPolicy
from bot.models import FeedError

pytestmark = pytest.mark.skipif(
    not loopback_alias_available(), reason="127.0.0.2 is not bindable here"
)

ONLY_FIRST = (ip_network("127.0.0.1/32"),)


@pytest.fixture
def canary() -> Iterator[CanaryServer]:
    with CanaryServer() as server:
        yield server


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchPolicy(timeout=3.0, allow_networks=ONLY_FIRST)) as f:
        yield f


def spellings(port: int) -> list[str]:
    return [
        f"http://{CANARY_HOST}:{port}/feed.xml",
        f"http://2130706434:{port}/feed.xml",  # decimal
        f"http://0x7f000002:{port}/feed.xml",  # hex
        f"http://0x7f.0.0.2:{port}/feed.xml",  # hex first octet
        f"http://0177.0.0.2:{port}/feed.xml",  # octal first octet
        f"http://127.2:{port}/feed.xml",  # short form
        f"http://127.0.2:{port}/feed.xml",
        f"http://[::ffff:127.0.0.2]:{port}/feed.xml",  # IPv4-mapped IPv6
        f"http://[::ffff:7f00:2]:{port}/feed.xml",
        f"http://[64:ff9b::7f00:2]:{port}/feed.xml",  # NAT64
        f"http://[2002:7f00:2::1]:{port}/feed.xml",  # 6to4
        f"https://{CANARY_HOST}:{port}/feed.xml",
    ]


def test_canary_is_reachable_when_allowed(canary: CanaryServer) -> None:
    """Control: the canary answers when its address is allowed, so zero
    connections in the other tests means the guard stopped them."""
    policy = FetchPolicy(timeout=3.0, allow_networks=(ip_network("127.0.0.2/32"),))
    with Fetcher(policy) as fetcher:
        assert b"canary reached" in fetcher.fetch(canary.url()).body
    assert canary.connections == 1


def test_every_spelling_of_the_canary_is_refused(canary: CanaryServer, fetcher: Fetcher) -> None:
    kinds = {}
    for url in spellings(canary.port):
        with pytest.raises(FeedError) as info:
            fetcher.fetch(url)
        kinds[url] = info.value.kind
    # httpx rejects the octal spelling as an invalid URL; every other one is
    # resolved and refused before a connection is made.
    octal = f"http://0177.0.0.2:{canary.port}/feed.xml"
    assert kinds.pop(octal) in ("bad_url", "blocked_address")
    assert set(kinds.values()) == {"blocked_address"}
    assert canary.connections == 0


def test_redirects_to_the_canary_are_refused(canary: CanaryServer, fetcher: Fetcher) -> None:
    with HostileServer() as origin:
        for i, target in enumerate(spellings(canary.port)):
            origin.redirect(f"/direct{i}", target)
        # A chain of allowed hops that ends at the canary, every hop re-checked.
        origin.redirect("/hop1", origin.url("/hop2"), status=301)
        origin.redirect("/hop2", "/hop3", status=307)
        origin.redirect("/hop3", origin.url("/hop4"), status=308)
        origin.redirect("/hop4", canary.url(), status=303)
        urls = [origin.url(f"/direct{i}") for i in range(len(spellings(canary.port)))]
        for url in [*urls, origin.url("/hop1")]:
            with pytest.raises(FeedError) as info:
                fetcher.fetch(url)
            assert info.value.kind in ("blocked_address", "bad_url", "dns"), url
        assert origin.hits["/hop4"] == 1
    assert canary.connections == 0


def test_hostname_resolving_to_the_canary_is_refused(
    canary: CanaryServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public-looking name whose DNS answer is the canary (DNS rebinding),
    also when a harmless-looking address comes first."""
    real = socket.getaddrinfo

    def fake(host: str, port: object, *args: object, **kwargs: object) -> list[object]:
        if host == "feeds.rebind.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (CANARY_HOST, port)),
            ]
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(FeedError) as info:
        fetcher.fetch(f"http://feeds.rebind.test:{canary.port}/feed.xml")
    assert info.value.kind == "blocked_address"
    assert CANARY_HOST in info.value.message
    assert canary.connections == 0


def test_too_many_redirects_stop_at_five(fetcher: Fetcher) -> None:
    with HostileServer() as origin:
        for i in range(7):
            origin.redirect(f"/r{i}", f"/r{i + 1}")
        origin.serve("/r7", b"<rss/>")
        with pytest.raises(FeedError) as info:
            fetcher.fetch(origin.url("/r0"))
        assert info.value.kind == "redirect_loop"
        assert sum(origin.hits.values()) == 6  # the first request + 5 redirects
