from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from ipaddress import ip_network
from pathlib import Path

import pytest
from cli_helpers import REPO
from feedgen import FeedEntry, rss
from feedserver import FeedServer

from bot.fetch import Fetcher, FetchPolicy, parse_retry_after
from bot.models import FeedError, FetchResult

LOOPBACK = (ip_network("127.0.0.0/8"),)
FEED = rss([FeedEntry(title="Hello", link="https://example.org/1", guid="1")])


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchPolicy(timeout=5.0, allow_networks=LOOPBACK)) as f:
        yield f


def fetch_error(fetcher: Fetcher, url: str, **kwargs: str) -> FeedError:
    with pytest.raises(FeedError) as info:
        fetcher.fetch(url, **kwargs)
    err = info.value
    assert "\n" not in err.message and "Traceback" not in err.message
    assert len(err.message) < 200
    return err


# --- success, headers, conditional GET ------------------------------------------


def test_fetch_ok(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set(
        "/feed.xml",
        FEED,
        etag='"v1"',
        last_modified="Tue, 10 Jun 2025 10:00:00 GMT",
        headers={"X-Custom-Thing": "yes"},
    )
    result = fetcher.fetch(feed_server.url("/feed.xml"))
    assert result.status == 200
    assert result.body == FEED
    assert result.url == feed_server.url("/feed.xml")
    assert not result.not_modified
    assert result.etag == '"v1"'
    assert result.last_modified == "Tue, 10 Jun 2025 10:00:00 GMT"
    assert result.headers["x-custom-thing"] == "yes"
    assert result.headers["content-type"].startswith("application/rss+xml")
    assert all(name == name.lower() for name in result.headers)
    sent = feed_server.requests[-1].headers
    assert sent["user-agent"].startswith("newshound/")
    assert "if-none-match" not in sent and "if-modified-since" not in sent
    assert "gzip" in sent["accept-encoding"]


def test_conditional_get_etag(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/feed.xml", FEED, etag='"abc"')
    first = fetcher.fetch(feed_server.url("/feed.xml"))
    second = fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag)
    assert second.not_modified and second.status == 304
    assert second.body == b""
    assert second.etag == '"abc"'
    assert feed_server.requests[-1].headers["if-none-match"] == '"abc"'


def test_conditional_get_last_modified_keeps_given_values(
    feed_server: FeedServer, fetcher: Fetcher
) -> None:
    stamp = "Wed, 11 Jun 2025 08:00:00 GMT"
    feed_server.set("/feed.xml", FEED, last_modified=stamp)
    result = fetcher.fetch(feed_server.url("/feed.xml"), etag='"old"', last_modified=stamp)
    assert result.not_modified
    assert result.etag == '"old"'  # the server sent none: keep ours
    assert result.last_modified == stamp
    assert feed_server.requests[-1].headers["if-modified-since"] == stamp


def test_changed_etag_gets_full_body(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/feed.xml", FEED, etag='"new"')
    result = fetcher.fetch(feed_server.url("/feed.xml"), etag='"old"')
    assert not result.not_modified and result.body == FEED and result.etag == '"new"'


# --- network guard -----------------------------------------------------------------


def test_default_policy_refuses_loopback_in_any_spelling(feed_server: FeedServer) -> None:
    feed_server.set("/feed.xml", FEED)
    port = feed_server.port
    urls = [
        feed_server.url("/feed.xml"),
        f"http://2130706433:{port}/feed.xml",
        f"http://127.1:{port}/feed.xml",
        f"http://[::1]:{port}/feed.xml",
        f"http://0x7f.1:{port}/feed.xml",
        f"http://localhost:{port}/feed.xml",
        f"http://[::ffff:127.0.0.1]:{port}/feed.xml",
    ]
    with Fetcher(FetchPolicy(timeout=5.0)) as fetcher:
        for url in urls:
            err = fetch_error(fetcher, url)
            assert err.kind == "blocked_address", url
            assert err.message.startswith("refused to connect to ")
            assert "private/loopback address" in err.message
            assert "settings.allow_networks" in err.message
    assert feed_server.requests == []


def test_redirect_into_disallowed_loopback_is_refused(feed_server: FeedServer) -> None:
    feed_server.set("/feed.xml", FEED)
    feed_server.redirect("/start", f"http://127.0.0.2:{feed_server.port}/feed.xml")
    only_one = (ip_network("127.0.0.1/32"),)
    with Fetcher(FetchPolicy(timeout=5.0, allow_networks=only_one)) as fetcher:
        err = fetch_error(fetcher, feed_server.url("/start"))
    assert err.kind == "blocked_address"
    assert "127.0.0.2" in err.message
    assert [r.path for r in feed_server.requests] == ["/start"]


# --- URLs and redirects ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/feed",
        "file:///etc/passwd",
        "http://user:secret@127.0.0.1/feed",
        "http://user@127.0.0.1/feed",
        "not a url",
        "http:///nohost",
        "",
    ],
)
def test_bad_urls(fetcher: Fetcher, url: str) -> None:
    err = fetch_error(fetcher, url)
    assert err.kind == "bad_url"
    assert "secret" not in err.message


def test_redirects_followed(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/final.xml", FEED)
    feed_server.redirect("/r1", feed_server.url("/r2"), status=301)
    feed_server.redirect("/r2", "/r3", status=307)  # relative Location
    feed_server.redirect("/r3", "final.xml", status=308)
    result = fetcher.fetch(feed_server.url("/r1"))
    assert result.body == FEED
    assert result.url == feed_server.url("/final.xml")


def test_max_redirects(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/final.xml", FEED)
    for i in range(6):
        feed_server.redirect(f"/hop{i}", f"/hop{i + 1}")
    feed_server.redirect("/hop6", "/final.xml")
    # hop2 -> ... -> hop6 -> final: exactly 5 redirects
    assert fetcher.fetch(feed_server.url("/hop2")).body == FEED
    # hop1 -> ... -> final: 6 redirects
    err = fetch_error(fetcher, feed_server.url("/hop1"))
    assert err.kind == "redirect_loop"


def test_redirect_loop(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.redirect("/a", "/b")
    feed_server.redirect("/b", "/a")
    err = fetch_error(fetcher, feed_server.url("/a"))
    assert err.kind == "redirect_loop"
    assert feed_server.hits("/a") + feed_server.hits("/b") == 6


@pytest.mark.parametrize(
    "target", ["ftp://127.0.0.1/feed", "http://user:pw@127.0.0.1/feed", "javascript:alert(1)"]
)
def test_redirect_target_validated(feed_server: FeedServer, fetcher: Fetcher, target: str) -> None:
    feed_server.redirect("/start", target)
    err = fetch_error(fetcher, feed_server.url("/start"))
    assert err.kind == "bad_url"
    assert "pw" not in err.message


# --- deadline ----------------------------------------------------------------------


def test_drip_cut_at_deadline(feed_server: FeedServer) -> None:
    feed_server.drip("/drip.xml", FEED, interval=0.2)  # would take ~minutes
    with Fetcher(FetchPolicy(timeout=1.0, allow_networks=LOOPBACK)) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, feed_server.url("/drip.xml"))
        elapsed = time.monotonic() - started
    assert err.kind == "timeout"
    assert 0.9 <= elapsed < 1.6


def test_hanging_server_cut_at_deadline(feed_server: FeedServer) -> None:
    feed_server.set("/slow.xml", FEED, delay=10)
    with Fetcher(FetchPolicy(timeout=0.5, allow_networks=LOOPBACK)) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, feed_server.url("/slow.xml"))
        elapsed = time.monotonic() - started
    assert err.kind == "timeout"
    assert elapsed < 1.2


def test_deadline_covers_redirect_chain(feed_server: FeedServer) -> None:
    feed_server.set("/r1", b"", status=302, headers={"Location": "/r2"}, delay=0.4)
    feed_server.set("/r2", b"", status=302, headers={"Location": "/r3"}, delay=0.4)
    feed_server.set("/r3", FEED, delay=0.4)
    with Fetcher(FetchPolicy(timeout=1.0, allow_networks=LOOPBACK)) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, feed_server.url("/r1"))
        elapsed = time.monotonic() - started
    assert err.kind == "timeout"
    assert elapsed < 1.5


# --- body cap and content encodings -------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(50)]
    parts.append(packer.flush())
    return b"".join(parts)


def test_gzip_bomb_stopped_early(feed_server: FeedServer, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 200_000
    feed_server.set("/bomb.xml", gzip_bomb, headers={"Content-Encoding": "gzip"})
    policy = FetchPolicy(timeout=5.0, max_body_bytes=1024 * 1024, allow_networks=LOOPBACK)
    with Fetcher(policy) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, feed_server.url("/bomb.xml"))
        elapsed = time.monotonic() - started
    assert err.kind == "too_large"
    assert "1 MiB" in err.message
    assert elapsed < 1.0


def test_plain_body_over_cap(feed_server: FeedServer) -> None:
    feed_server.set("/big.xml", b"x" * 300_000)
    policy = FetchPolicy(timeout=5.0, max_body_bytes=100_000, allow_networks=LOOPBACK)
    with Fetcher(policy) as fetcher:
        assert fetch_error(fetcher, feed_server.url("/big.xml")).kind == "too_large"
        feed_server.set("/fits.xml", b"x" * 100_000)
        assert len(fetcher.fetch(feed_server.url("/fits.xml")).body) == 100_000


def test_body_cap_counts_decompressed_bytes(feed_server: FeedServer) -> None:
    body = b"<rss>" + b"a" * 200_000 + b"</rss>"
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gz = packer.compress(body) + packer.flush()
    feed_server.set("/gz.xml", gz, headers={"Content-Encoding": "gzip"})
    small = FetchPolicy(timeout=5.0, max_body_bytes=100_000, allow_networks=LOOPBACK)
    with Fetcher(small) as fetcher:
        assert fetch_error(fetcher, feed_server.url("/gz.xml")).kind == "too_large"


@pytest.mark.parametrize("wbits", [16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS])
def test_compressed_feed_decoded(feed_server: FeedServer, fetcher: Fetcher, wbits: int) -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    data = packer.compress(FEED) + packer.flush()
    encoding = "gzip" if wbits > zlib.MAX_WBITS else "deflate"
    feed_server.set("/c.xml", data, headers={"Content-Encoding": encoding})
    assert fetcher.fetch(feed_server.url("/c.xml")).body == FEED


def test_corrupt_gzip(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/c.xml", b"this is not gzip at all", headers={"Content-Encoding": "gzip"})
    assert fetch_error(fetcher, feed_server.url("/c.xml")).kind == "bad_encoding"


# --- HTTP status errors ----------------------------------------------------------------


def test_404(feed_server: FeedServer, fetcher: Fetcher) -> None:
    err = fetch_error(fetcher, feed_server.url("/missing.xml"))
    assert err.kind == "http_404"
    assert "404" in err.message and "127.0.0.1" in err.message
    assert not err.gone and err.retry_after is None


def test_500(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/e.xml", "oops", status=500)
    err = fetch_error(fetcher, feed_server.url("/e.xml"))
    assert err.kind == "http_5xx"
    assert "500" in err.message


def test_410_gone(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/gone.xml", "", status=410)
    err = fetch_error(fetcher, feed_server.url("/gone.xml"))
    assert err.kind == "gone" and err.gone


def test_429_retry_after_seconds(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/busy.xml", "", status=429, headers={"Retry-After": "120"})
    err = fetch_error(fetcher, feed_server.url("/busy.xml"))
    assert err.kind == "http_429"
    assert err.retry_after == 120


def test_503_retry_after_http_date(feed_server: FeedServer, fetcher: Fetcher) -> None:
    when = formatdate(time.time() + 90, usegmt=True)
    feed_server.set("/busy.xml", "", status=503, headers={"Retry-After": when})
    err = fetch_error(fetcher, feed_server.url("/busy.xml"))
    assert err.kind == "http_5xx"
    assert err.retry_after is not None and 80 <= err.retry_after <= 91


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_future_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, 1)


# --- transport errors --------------------------------------------------------------


def test_connection_refused(fetcher: Fetcher) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = fetch_error(fetcher, f"http://127.0.0.1:{port}/feed.xml")
    assert err.kind == "connect"


def test_dns_failure(fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    err = fetch_error(fetcher, "http://feeds.nowhere.invalid/rss")
    assert err.kind == "dns"
    assert "feeds.nowhere.invalid" in err.message


def test_errors_after_a_redirect_name_the_redirect_target(
    feed_server: FeedServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def fail_invalid(host: object, *args: object, **kwargs: object) -> list:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host == "closed.test":
            host = "127.0.0.1"
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fail_invalid)
    feed_server.redirect("/moved", "http://feeds.nowhere.invalid/rss")
    err = fetch_error(fetcher, feed_server.url("/moved"))
    assert err.kind == "dns"
    assert err.message == "could not resolve host feeds.nowhere.invalid"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    feed_server.redirect("/closed", f"http://closed.test:{port}/feed.xml")
    err = fetch_error(fetcher, feed_server.url("/closed"))
    assert err.kind == "connect" and err.message.startswith("closed.test:"), err.message


def test_tls_error(feed_server: FeedServer, fetcher: Fetcher) -> None:
    # A plain-HTTP server answering a TLS handshake.
    err = fetch_error(fetcher, f"https://127.0.0.1:{feed_server.port}/feed.xml")
    assert err.kind == "tls"


def test_server_closes_without_response(fetcher: Fetcher) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        # Every connection: read the request, close without a word. (A client
        # may retry a GET once on a fresh connection, as aiohttp does.)
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # listener closed: test over
            conn.recv(1024)
            conn.close()

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        err = fetch_error(fetcher, f"http://127.0.0.1:{port}/feed.xml")
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        worker.join(2)
        listener.close()
    assert err.kind in ("protocol", "connect")


# --- concurrency -------------------------------------------------------------------------


def test_thread_safe_shared_fetcher(feed_server: FeedServer, fetcher: Fetcher) -> None:
    for i in range(5):
        feed_server.set(f"/f{i}.xml", rss([FeedEntry(title=f"feed {i}")]))
    feed_server.set("/slow.xml", FEED, delay=0.3)

    def one(n: int) -> bytes:
        return fetcher.fetch(feed_server.url(f"/f{n % 5}.xml")).body

    with ThreadPoolExecutor(max_workers=8) as pool:
        slow = pool.submit(fetcher.fetch, feed_server.url("/slow.xml"))
        bodies = list(pool.map(one, range(60)))
        assert slow.result().body == FEED
    for n, body in enumerate(bodies):
        assert f"feed {n % 5}".encode() in body


def fetch_concurrently(fetcher: Fetcher, urls: list[str]) -> list[FetchResult]:
    futures = [fetcher.submit(fetcher.fetch_async(url)) for url in urls]
    return [future.result() for future in futures]


def test_at_most_per_host_fetches_at_once(feed_server: FeedServer) -> None:
    for i in range(8):
        feed_server.set(f"/slow{i}.xml", FEED, delay=0.15)
    with Fetcher(FetchPolicy(timeout=5.0, allow_networks=LOOPBACK), per_host=2) as fetcher:
        urls = [feed_server.url(f"/slow{i}.xml") for i in range(8)]
        assert all(r.body == FEED for r in fetch_concurrently(fetcher, urls))
        assert feed_server.peak_active == 2
        # Another host name for the same server has slots of its own.
        feed_server.peak_active = 0
        other = [u.replace("127.0.0.1", "localhost") for u in urls]
        assert all(r.body == FEED for r in fetch_concurrently(fetcher, urls[:4] + other[:4]))
        assert feed_server.peak_active == 4


def test_waiting_for_a_host_slot_does_not_count_against_the_deadline(
    feed_server: FeedServer,
) -> None:
    for i in range(4):
        feed_server.set(f"/slow{i}.xml", FEED, delay=0.3)
    with Fetcher(FetchPolicy(timeout=0.8, allow_networks=LOOPBACK), per_host=1) as fetcher:
        urls = [feed_server.url(f"/slow{i}.xml") for i in range(4)]
        started = time.monotonic()
        results = fetch_concurrently(fetcher, urls)
        assert time.monotonic() - started >= 1.2  # one after the other
    assert [r.body for r in results] == [FEED] * 4


def test_keep_alive_reuses_connections(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.set("/feed.xml", FEED, etag='"v1"')
    for _ in range(5):
        assert fetcher.fetch(feed_server.url("/feed.xml"), etag='"v1"').not_modified
    assert feed_server.connections == 1


def gz(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def test_endless_empty_gzip_members_are_refused_quickly(feed_server: FeedServer) -> None:
    # Thousands of 20-byte members decompress to nothing: the body cap never
    # sees a byte, so the member count is what stops them.
    feed_server.set("/members.xml", gz(b"") * 50_000, headers={"Content-Encoding": "gzip"})
    with Fetcher(FetchPolicy(timeout=10.0, allow_networks=LOOPBACK)) as fetcher:
        started = time.monotonic()
        err = fetch_error(fetcher, feed_server.url("/members.xml"))
    assert err.kind == "bad_encoding" and "gzip members" in err.message
    assert time.monotonic() - started < 2.0


def test_padding_after_gzip_counts_against_the_cap(feed_server: FeedServer) -> None:
    feed_server.set("/pad.xml", gz(FEED) + b"\0" * 300_000, headers={"Content-Encoding": "gzip"})
    small = FetchPolicy(timeout=10.0, max_body_bytes=100_000, allow_networks=LOOPBACK)
    with Fetcher(small) as fetcher:
        assert fetch_error(fetcher, feed_server.url("/pad.xml")).kind == "too_large"
    feed_server.set("/okpad.xml", gz(FEED) + b"\0" * 1000, headers={"Content-Encoding": "gzip"})
    with Fetcher(small) as fetcher:
        assert fetcher.fetch(feed_server.url("/okpad.xml")).body == FEED


@pytest.mark.parametrize("bad", ['"v1\x7f"', '"v1\x01"', "x" * 2000])
def test_unsendable_validators_are_dropped_not_stored(
    feed_server: FeedServer, fetcher: Fetcher, bad: str
) -> None:
    # Stored, such a value would make every later request fail before it is
    # sent, and no response could ever replace it.
    feed_server.set("/v.xml", FEED, etag=bad)
    result = fetcher.fetch(feed_server.url("/v.xml"))
    assert result.body == FEED and result.etag is None
    # One stored by an older version is not sent: the feed keeps working.
    again = fetcher.fetch(feed_server.url("/v.xml"), etag=bad, last_modified=bad)
    assert again.body == FEED
    assert "if-none-match" not in feed_server.requests[-1].headers
    assert "if-modified-since" not in feed_server.requests[-1].headers


def test_hung_dns_lookups_do_not_starve_other_fetches(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def hang_for_dead_domain(host: object, *args: object, **kwargs: object) -> list:
        if str(host).endswith(".dead-dns.test"):
            time.sleep(3)  # as a resolver whose nameservers never answer
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", hang_for_dead_domain)
    feed_server.set("/ok.xml", FEED)
    with Fetcher(FetchPolicy(timeout=1.0, allow_networks=LOOPBACK)) as fetcher:
        dead = [f"http://site{i}.dead-dns.test/feed.xml" for i in range(20)]
        healthy = [feed_server.url("/ok.xml").replace("127.0.0.1", "localhost")] * 4
        futures = [fetcher.submit(fetcher.fetch_async(url)) for url in dead + healthy]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result().status)
            except FeedError as exc:
                outcomes.append(exc.kind)
    assert outcomes == ["timeout"] * 20 + [200] * 4


def test_hung_dns_lookup_does_not_hold_up_process_exit(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text(
        "import socket, time\n"
        "from bot.fetch import Fetcher, FetchPolicy\n"
        "from bot.models import FeedError\n"
        "def hang(*a, **k):\n"
        "    time.sleep(30)\n"
        "socket.getaddrinfo = hang\n"
        "with Fetcher(FetchPolicy(timeout=0.5)) as f:\n"
        "    try:\n"
        "        f.fetch('http://feeds.dead-dns.test/rss')\n"
        "    except FeedError as e:\n"
        "        print(e.kind)\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.stdout.strip() == "timeout", done.stderr
    assert time.monotonic() - started < 10


def test_long_host_names_are_shortened_in_errors(
    feed_server: FeedServer, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_host = "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".invalid"
    real = socket.getaddrinfo

    def fail_invalid(host: object, *args: object, **kwargs: object) -> list:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", fail_invalid)
    feed_server.redirect("/far", f"http://{long_host}/rss")
    err = fetch_error(fetcher, feed_server.url("/far"))
    assert err.kind == "dns" and err.message.startswith("could not resolve host aaaa")
    assert long_host not in err.message


def test_multi_member_gzip_and_trailing_junk(feed_server: FeedServer, fetcher: Fetcher) -> None:
    half = len(FEED) // 2
    feed_server.set(
        "/m.xml", gz(FEED[:half]) + gz(FEED[half:]), headers={"Content-Encoding": "gzip"}
    )
    assert fetcher.fetch(feed_server.url("/m.xml")).body == FEED
    feed_server.set("/j.xml", gz(FEED) + b"junk!", headers={"Content-Encoding": "gzip"})
    assert fetcher.fetch(feed_server.url("/j.xml")).body == FEED


def test_aiohttp_is_imported_without_loading_certificates_and_ssl_is_restored() -> None:
    """aiohttp 3.x builds two default TLS contexts at import
    (aiohttp/connector.py: `_SSL_CONTEXT_VERIFIED = _make_ssl_context(True)`,
    which calls `ssl.create_default_context()`, and the unverified one, which
    calls `set_default_verify_paths()`). bot.aiohttp_import makes those load
    no CA, so they could only fail closed, and leaves the ssl module as it was."""
    script = (
        "import ssl\n"
        "import bot.fetch\n"
        "import aiohttp.connector as c\n"
        "v = c._SSL_CONTEXT_VERIFIED\n"
        "print(v.cert_store_stats()['x509_ca'], v.verify_mode == ssl.CERT_REQUIRED,"
        " v.check_hostname)\n"
        "print(ssl.create_default_context().cert_store_stats()['x509_ca'] > 0,"
        " 'set_default_verify_paths' in ssl.SSLContext.__dict__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.stdout.split("\n")[:2] == ["0 True True", "True False"], done.stderr
