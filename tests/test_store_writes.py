"""The database layer's batched writes, on SQLite and PostgreSQL: new
stories get their ids in order from one statement, a duplicate story key is a
`Conflict` that leaves nothing behind, and a SQLite file checkpoints its WAL
in large steps (a cold cycle commits once per feed)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from bot.models import Item
from bot.store import Conflict, Store
from bot.store.database import WAL_CHECKPOINT_PAGES

FEED = "http://feeds.example/news.xml"


def _item(n: int) -> Item:
    return Item(title=f"Story {n}", link=f"https://news.example/{n}", guid=None, summary="lead")


def _stored(store: Store) -> dict[int, str]:
    return {int(i): str(k) for i, k in store.db.rows("SELECT id, story_key FROM items")}


def test_new_stories_get_their_ids_in_order(store: Store) -> None:
    store.feeds.sync([FEED])
    feed_id = store.feeds.all()[0].id
    first = store.stories.insert(feed_id, [(_item(n), [f"link:n/{n}"]) for n in range(3)], 1.0)
    # A pruned story leaves a gap in the ids: later ones still come in order.
    store.db.execute("DELETE FROM story_keys WHERE item_id = ?", (first[1],))
    store.db.execute("DELETE FROM items WHERE id = ?", (first[1],))
    later = store.stories.insert(
        feed_id, [(_item(n), [f"link:n/{n}", f"guid:{n}"]) for n in range(3, 6)], 2.0
    )
    assert first == sorted(first) and later == sorted(later) and later[0] > first[-1]
    stored = _stored(store)
    assert {i: stored[i] for i in [first[0], first[2], *later]} == {
        first[0]: "link:n/0",
        first[2]: "link:n/2",
        later[0]: "link:n/3",
        later[1]: "link:n/4",
        later[2]: "link:n/5",
    }
    assert store.stories.find(["guid:4"]) == later[1]


def test_a_story_key_taken_meanwhile_is_a_conflict_that_writes_nothing(store: Store) -> None:
    store.feeds.sync([FEED])
    feed_id = store.feeds.all()[0].id
    store.stories.insert(feed_id, [(_item(1), ["link:n/1"])], 1.0)
    before = _stored(store)
    with pytest.raises(Conflict), store.transaction():
        store.stories.insert(feed_id, [(_item(2), ["link:n/2"]), (_item(1), ["link:n/1"])], 2.0)
    assert _stored(store) == before
    assert store.stories.find(["link:n/2"]) is None


def test_sqlite_checkpoints_its_wal_in_large_steps(tmp_path) -> None:
    path = tmp_path / "newshound.db"
    with Store(path) as store:
        conn: sqlite3.Connection = store.db.conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_PAGES
        assert conn.execute("PRAGMA journal_size_limit").fetchone()[0] > 0
        store.meta.set("checked_at", repr(time.time()))
