"""Bad database input, through the real command line and real `newshound
run` processes on PostgreSQL (README "When the database is the problem"):

- a server that cannot be reached, or a database that does not exist, at
  start: every command exits 2 with one line, never showing the password;
- the server lost while `newshound run` works (a loopback TCP forwarder in
  this test stands between the service and PostgreSQL and is cut): /healthz
  answers 503 at once, the outage is logged once, the service recovers by
  itself and a story published meanwhile is alerted exactly once;
- two workers running different configs: each worker's config version is in
  the `workers` table, the second warns naming the first, /healthz degrades;
- a database migrated by a newer newshound: every command refuses it and
  changes nothing.

Needs the PostgreSQL server on 127.0.0.1:5432 (user postgres, trust auth,
database `test`): skipped without it, failed without it when CI is set. Each
test gets a schema of its own, dropped afterwards. Slack is tests/fakeslack.py
(SLACK_API_URL points the service at it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Result, run_subprocess, write_config
from fakeslack import FakeSlack, Fault
from feedgen import FeedEntry, rss
from feedserver import FeedServer
from pg_schema import POSTGRES_SERVER, fresh_schema
from service_helpers import Service, free_port, wait_for

from bot.config import load_config
from bot.service import REQUEST_WAIT
from bot.store.database import CONNECT_TIMEOUT, IDLE_CHECK
from bot.wiring import config_stamp

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.slow

SERVER = POSTGRES_SERVER
PASSWORD = "s3cretpw"  # trust auth on the test server ignores it; it must never show
CHANNEL = "C0BADINPUT1"
NOW = datetime.now(UTC)


# -- PostgreSQL -----------------------------------------------------------------


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh, empty schema on the test server (dropped afterwards)."""
    with fresh_schema("badinput") as name:
        yield name


def url_for(schema: str, port: int = 5432) -> str:
    """A URL of `schema` with a password in it (ignored by trust auth)."""
    return (
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"
    )


def sql(schema: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement in `schema`, straight on the server (not via newshound)."""
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


def snapshot(schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in `schema`, in a stable order."""
    tables = [
        row[0]
        for row in sql(
            schema,
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
            (schema,),
        )
    ]
    return {t: sorted(sql(schema, f"SELECT * FROM {t}"), key=repr) for t in tables}


# -- helpers --------------------------------------------------------------------


def entry(n: int, title: str) -> FeedEntry:
    return FeedEntry(
        title=title,
        link=f"https://news.example/{n}",
        guid=f"urn:news:{n}",
        summary=f"Story {n}.",
        published=NOW - timedelta(minutes=n),
    )


class PgService(Service):
    """`newshound run` on a PostgreSQL URL (the helper's log goes to `workdir`)."""

    def __init__(self, config: Path, url: str, workdir: Path, slack: FakeSlack, **env: str) -> None:
        super().__init__(config, workdir / "unused.db", slack, **env)
        self.db = url  # type: ignore[assignment]  # passed on as --db


def one_clear_line(result: Result) -> str:
    """The single stderr line of a refused command (no traceback, no noise)."""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


class Forwarder:
    """A TCP relay on a fixed loopback port to PostgreSQL: `stop()` refuses new
    connections and cuts the open ones (as a server or network going away
    does), `start()` brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> Forwarder:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the accept() blocked in its thread (close()
            # alone would leave the socket listening until it returns).
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    server.close()
                    return
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


# -- 1. unreachable at start ----------------------------------------------------


COMMANDS = [
    ("run", "--port", "0"),
    ("poll", "--once"),
    ("status",),
    ("watch", "list", "--channel", CHANNEL),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_unreachable_server_is_one_line_exit_2_without_the_password(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    port = free_port()  # bound, then closed: nothing listens there
    url = f"postgresql://user:{PASSWORD}@127.0.0.1:{port}/test"
    started = time.monotonic()
    result = run_subprocess("--config", str(config), "--db", url, *command)
    assert result.code == 2, result
    assert time.monotonic() - started < 30
    line = one_clear_line(result)
    assert line.startswith(
        f"newshound: cannot open database postgresql://user:***@127.0.0.1:{port}/test: "
    )
    assert "Connection refused" in line
    assert PASSWORD not in result.out + result.err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_database_missing_on_the_server_is_one_line_exit_2_without_the_password(
    command: tuple[str, ...], tmp_path: Path, schema: str
) -> None:
    config = write_config(tmp_path / "feeds.yaml", [], [])
    missing = f"no_such_db_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{missing}"
    result = run_subprocess("--config", str(config), "--db", url, *command)
    assert result.code == 2, result
    line = one_clear_line(result)
    assert line.startswith(
        f"newshound: cannot open database postgresql://postgres:***@127.0.0.1:5432/{missing}: "
    )
    assert f'database "{missing}" does not exist' in line
    assert PASSWORD not in result.out + result.err


# -- 2. lost while running --------------------------------------------------------


def healthz_promptly(
    service: Service, limit: float = REQUEST_WAIT + 1.0
) -> tuple[int, dict[str, Any]]:
    """/healthz within `limit` seconds: by default the longest a request waits
    for a database connection (before the worker knows the database is
    gone), well within a container health check's timeout (Dockerfile: 5 s)."""
    answer = service.get("/healthz")
    assert answer.elapsed < limit, f"/healthz took {answer.elapsed:.1f} s"
    assert PASSWORD.encode() not in answer.body
    return answer.status, answer.json()


def test_an_outage_while_running_is_reported_waited_out_and_loses_nothing(
    tmp_path: Path, schema: str, feed_server: FeedServer, slack: FakeSlack
) -> None:
    feed_server.set("/news.xml", rss([entry(1, "Mild weather ahead")], title="News"))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/news.xml")],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )
    forwarder = Forwarder(5432).start()
    service = PgService(config, url_for(schema, forwarder.port), tmp_path, slack).start()
    try:
        wait_for(lambda: service.get("/healthz").json()["last_cycle_at"], timeout=20)

        forwarder.stop()
        # Published while the service cannot reach its database; the feed is
        # due again (set on the server directly, which is still up).
        feed_server.set(
            "/news.xml",
            rss([entry(2, "New tariff on steel"), entry(1, "Mild weather ahead")], title="News"),
        )
        sql(schema, "UPDATE feeds SET next_check_at = 0")

        def unhealthy() -> dict[str, Any] | None:
            status, data = healthz_promptly(service)
            return data if status == 503 else None

        data = wait_for(unhealthy, timeout=30)
        assert data["status"] == "unhealthy" and data["db_ok"] is False
        assert data["database"].startswith("unreachable: ")
        # It stays so, and every answer comes at once, through several retries.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status, data = healthz_promptly(service, limit=1.0)  # known down: at once
            assert status == 503 and data["status"] == "unhealthy", data
            time.sleep(0.2)
        assert slack.posts() == []

        forwarder.start()
        wait_for(lambda: slack.posts(CHANNEL), timeout=60)
        wait_for(lambda: service.get("/healthz").status == 200, timeout=30)
        time.sleep(1.0)  # a few more ticks: nothing is sent twice
        posts = slack.posts(CHANNEL)
        assert len(posts) == 1, posts
        assert "New tariff on steel" in str(posts[0])
        assert sql(schema, "SELECT state FROM outbox") == [("sent",)]
    finally:
        code, _ = service.stop()
        forwarder.stop()
    log = service.log()
    assert code == 0, log
    # Said once when it began and once when it ended: no line per retry, no
    # library noise (the pool warns at each reconnection attempt).
    warnings = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    assert len(warnings) == 2, log
    assert "ERROR bot.db_outage: database unreachable" in warnings[0]
    assert "WARNING bot.db_outage: database reachable again" in warnings[1]
    assert "Traceback" not in log
    assert PASSWORD not in log


def test_healthz_is_prompt_also_when_it_is_the_first_to_find_the_database_gone(
    tmp_path: Path, schema: str, slack: FakeSlack
) -> None:
    """With a long tick nothing else touches the database between cycles, so
    the health check meets the outage first: it must still answer within a
    container health check's timeout (Dockerfile: 5 s), not after the pool's
    connection wait."""
    config = write_config(tmp_path / "feeds.yaml", [], [])
    forwarder = Forwarder(5432).start()
    service = PgService(
        config, url_for(schema, forwarder.port), tmp_path, slack, NEWSHOUND_TICK="60"
    ).start()
    try:
        time.sleep(IDLE_CHECK + 1.0)  # its pooled connection is now tested before use
        forwarder.stop()
        for _ in range(3):
            status, data = healthz_promptly(service)
            assert status == 503, data
            assert data["database"].startswith("unreachable: ")
    finally:
        code, _ = service.stop()
        forwarder.stop()
    assert code == 0, service.log()


def test_an_alert_sent_as_the_database_went_away_is_not_sent_again_and_not_held_back(
    tmp_path: Path, schema: str, feed_server: FeedServer, slack: FakeSlack
) -> None:
    """Slack accepts the alert but answers slowly; the database goes away
    before the service can record it as sent. Once it is back the alert is
    looked for in the channel (conversations.history, as after a crash) and
    found: not posted twice, and settled at once rather than after the
    two-minute lease of a `sending` message."""
    feed_server.set("/news.xml", rss([entry(1, "Mild weather ahead")], title="News"))
    config = write_config(
        tmp_path / "feeds.yaml",
        [feed_server.url("/news.xml")],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )
    forwarder = Forwarder(5432).start()
    service = PgService(config, url_for(schema, forwarder.port), tmp_path, slack).start()
    try:
        wait_for(lambda: service.get("/healthz").json()["last_cycle_at"], timeout=20)
        slack.fail_next("chat.postMessage", Fault(delay=3.0))  # accepted, answered late
        feed_server.set(
            "/news.xml",
            rss([entry(2, "New tariff on steel"), entry(1, "Mild weather ahead")], title="News"),
        )
        sql(schema, "UPDATE feeds SET next_check_at = 0")
        posted = wait_for(lambda: slack.calls("chat.postMessage"), timeout=20)[0].at
        forwarder.stop()
        wait_for(lambda: service.get("/healthz").status == 503, timeout=30)
        # Down for longer than the sender waits for a connection after Slack's
        # late answer: recording the send fails.
        time.sleep(max(0.0, posted + 3.0 + CONNECT_TIMEOUT + 1.0 - time.monotonic()))
        assert sql(schema, "SELECT state FROM outbox") == [("sending",)]

        forwarder.start()
        wait_for(lambda: sql(schema, "SELECT state FROM outbox") == [("sent",)], timeout=30)
        wait_for(lambda: service.get("/healthz").status == 200, timeout=30)
        time.sleep(1.0)
        assert len(slack.posts(CHANNEL)) == 1
        assert len(slack.calls("chat.postMessage")) == 1
        assert slack.calls("conversations.history")  # looked for, found
    finally:
        code, _ = service.stop()
        forwarder.stop()
    assert code == 0, service.log()
    assert "Traceback" not in service.log()


# -- 3. two workers, two configs ------------------------------------------------


def test_workers_running_different_configs_are_recorded_warned_about_and_degrade_healthz(
    tmp_path: Path, schema: str, feed_server: FeedServer, slack: FakeSlack
) -> None:
    feed_server.set("/news.xml", rss([entry(1, "Mild weather ahead")], title="News"))
    feeds = [feed_server.url("/news.xml")]
    watches = [{"channel": CHANNEL, "terms": ["tariff"]}]
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    # The same feeds and terms, one setting apart: another config all the same.
    first_config = write_config(first_dir / "feeds.yaml", feeds, watches)
    second_config = write_config(second_dir / "feeds.yaml", feeds, watches, send_interval="2s")
    first_stamp = config_stamp(load_config(first_config))[:12]
    second_stamp = config_stamp(load_config(second_config))[:12]
    assert first_stamp != second_stamp

    url = url_for(schema)
    first = PgService(first_config, url, first_dir, slack).start()
    second: PgService | None = None
    try:
        first_id = first.get("/healthz").json()["worker"]
        wait_for(lambda: sql(schema, "SELECT id FROM workers"), timeout=10)
        second = PgService(second_config, url, second_dir, slack).start()
        second_id = second.get("/healthz").json()["worker"]
        assert first_id != second_id

        assert sorted(sql(schema, "SELECT id, config_stamp FROM workers")) == sorted(
            [(first_id, first_stamp), (second_id, second_stamp)]
        )
        warning = wait_for(lambda: "runs another config" in second.log(), timeout=10)
        assert warning
        line = next(ln for ln in second.log().splitlines() if "runs another config" in ln)
        assert " WARNING " in line
        assert f"worker {first_id} runs another config (version {first_stamp})" in line
        assert f"this worker {second_id} (version {second_stamp})" in line
        assert PASSWORD not in first.log() + second.log()

        for service, other in ((second, first_id), (first, second_id)):

            def degraded(service: PgService = service) -> dict[str, Any] | None:
                answer = service.get("/healthz")
                data = answer.json()
                return data if answer.status == 200 and data["status"] == "degraded" else None

            data = wait_for(degraded, timeout=10)
            assert data["other_configs"] == [other]
            assert "other_configs" in data["degraded_by"]
        # Warned once, not at every heartbeat.
        time.sleep(1.0)
        assert second.log().count("runs another config") == 1
    finally:
        codes = [s.stop()[0] for s in (first, second) if s is not None]
    assert codes == [0, 0]
    # A worker that stops cleanly leaves the list.
    assert sql(schema, "SELECT id FROM workers") == []


# -- 4. made by a newer newshound -----------------------------------------------


def test_a_database_made_by_a_newer_newshound_is_refused_by_every_command_untouched(
    tmp_path: Path, schema: str
) -> None:
    config = write_config(
        tmp_path / "feeds.yaml",
        ["http://127.0.0.1:9/feed.xml"],
        [{"channel": CHANNEL, "terms": ["tariff"]}],
    )
    url = url_for(schema)
    added = run_subprocess(
        "--config", str(config), "--db", url, "watch", "add", "--channel", CHANNEL, "oil"
    )
    assert added.code == 0, added.err
    sql(schema, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = snapshot(schema)
    assert before["terms"] and before["feeds"]

    for command in [
        *COMMANDS,
        ("watch", "add", "--channel", CHANNEL, "steel"),
        ("watch", "test", "--channel", CHANNEL, "steel"),
        ("retry",),
        ("status", "--story", "1"),
    ]:
        result = run_subprocess("--config", str(config), "--db", url, *command)
        assert result.code == 2, (command, result)
        line = one_clear_line(result)
        assert line.startswith("newshound: cannot open database postgresql://postgres:***@"), line
        assert "made by a newer newshound (schema 99;" in line, line
        assert PASSWORD not in result.out + result.err
        assert snapshot(schema) == before, command
