"""The outbox and what governs sending: every message is stored before any
send is attempted, moves `pending` -> `sending` (held by one sender) ->
`sent` or `dead`, and goes out in id order per channel, only while the send
gates (rate limits shared by every worker) and destination pauses allow.

Alerts live here too: one row per (channel, story) is the guarantee that
a channel hears of a story once. So do the per-cycle pieces several workers
share: each channel's single-alert budget and its digest / follow-up
messages while a cycle still adds to them (`assembling`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.records import (
    ASSEMBLING,
    DEAD,
    PENDING,
    SENDING,
    SENT,
    Claim,
    FollowupLine,
    OutboxRow,
)
from bot.store.database import Conflict, Database

_OUTBOX_INSERT = (
    "INSERT INTO outbox(channel, kind, state, payload, created_at, next_attempt_at) "
    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
)


class OutboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing messages ---------------------------------------------------

    def add(
        self, channel: str, kind: str, payload: dict[str, Any], now: float, state: str = PENDING
    ) -> int:
        return self.db.insert_ids(
            _OUTBOX_INSERT, [(channel, kind, state, json.dumps(payload), now, now)]
        )[0]

    def add_many(
        self, messages: Sequence[tuple[str, str, dict[str, Any]]], now: float
    ) -> list[int]:
        """Pending (channel, kind, payload) messages; their ids, in order."""
        return self.db.insert_ids(
            _OUTBOX_INSERT,
            [
                (channel, kind, PENDING, json.dumps(payload), now, now)
                for channel, kind, payload in messages
            ],
        )

    def assembling_for(
        self, key: str, channel: str, kind: str, payload: dict[str, Any], cycle: str, now: float
    ) -> int:
        """The message of `kind` a cycle is assembling under `key` (one per
        channel and cycle, shared by every worker in that cycle), opened now
        if there is none. Call inside the transaction that adds to it: the
        row stays locked until then, so nobody finishes it half-filled."""
        rows = self.db.rows(
            "INSERT INTO outbox(channel, kind, state, payload, created_at, next_attempt_at, "
            "assembly_key, cycle_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(assembly_key) DO UPDATE SET assembly_key = excluded.assembly_key "
            "RETURNING id",
            (channel, kind, ASSEMBLING, json.dumps(payload), now, now, key, cycle),
        )
        return int(rows[0][0])

    def assembling(self, kind: str, cycles: Sequence[str] | None = None) -> list[OutboxRow]:
        """Messages of `kind` a cycle is still adding to (of `cycles` only, when given)."""
        if cycles is None:
            return self._where("state = ? AND kind = ?", (ASSEMBLING, kind))
        found = []
        for cycle in cycles:
            found += self._where(
                "state = ? AND kind = ? AND cycle_key = ?", (ASSEMBLING, kind, cycle)
            )
        return sorted(found, key=lambda row: row.id)

    def lock_assembling(self, outbox_id: int) -> bool:
        """Inside a transaction: wait for every cycle still adding to this
        message, then hold it. False if someone finished it meanwhile."""
        rows = self.db.rows(
            "SELECT id FROM outbox WHERE id = ? AND state = ? FOR UPDATE", (outbox_id, ASSEMBLING)
        )
        return bool(rows)

    def finish(self, outbox_id: int, payload: dict[str, Any]) -> None:
        """An assembled message becomes sendable (a later cycle opens a new one)."""
        self.db.execute(
            "UPDATE outbox SET state = ?, payload = ?, assembly_key = NULL "
            "WHERE id = ? AND state = ?",
            (PENDING, json.dumps(payload), outbox_id, ASSEMBLING),
        )

    def discard(self, outbox_id: int) -> None:
        """An assembling message that ended up with nothing to say."""
        self.db.execute("DELETE FROM outbox WHERE id = ? AND state = ?", (outbox_id, ASSEMBLING))

    def digest_entries(self, outbox_id: int) -> list[dict[str, Any]]:
        return self.db.query(
            """SELECT i.title, i.link, i.published_at, i.source_name, f.title AS feed_title,
                      f.url AS feed_url, a.terms
               FROM alerts a JOIN items i ON i.id = a.item_id JOIN feeds f ON f.id = i.feed_id
               WHERE a.outbox_id = ? ORDER BY a.id""",
            (outbox_id,),
        )

    # -- the per-cycle single-alert budget ----------------------------------

    def budget_used(self, cycle: str, channels: Sequence[str], now: float) -> dict[str, int]:
        """Single alerts each channel already had in `cycle`, from any worker.
        Inside a transaction the channels' rows stay locked until it ends,
        so two workers cannot both spend the last of a budget."""
        wanted = sorted(set(channels))
        if not wanted:
            return {}
        self.db.executemany(
            "INSERT INTO channel_budgets(channel, cycle_key, singles, created_at) "
            "VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING",
            [(channel, cycle, now) for channel in wanted],
        )
        used: dict[str, int] = {}
        for offset in range(0, len(wanted), 500):
            chunk = wanted[offset : offset + 500]
            marks = ",".join("?" * len(chunk))
            for channel, singles in self.db.rows(
                f"SELECT channel, singles FROM channel_budgets WHERE cycle_key = ? "
                f"AND channel IN ({marks}) ORDER BY channel FOR UPDATE",
                (cycle, *chunk),
            ):
                used[str(channel)] = int(singles)
        return used

    def spend_budget(self, cycle: str, spent: dict[str, int]) -> None:
        self.db.executemany(
            "UPDATE channel_budgets SET singles = singles + ? WHERE channel = ? AND cycle_key = ?",
            [(count, channel, cycle) for channel, count in sorted(spent.items()) if count],
        )

    def forget_budgets(self, before: float) -> None:
        self.db.execute("DELETE FROM channel_budgets WHERE created_at < ?", (before,))

    # -- alerts ---------------------------------------------------------------

    def add_alerts(self, alerts: Sequence[tuple[str, int, Sequence[str], int]], now: float) -> None:
        """(channel, item id, terms, outbox id) rows; existing pairs are kept."""
        self.db.executemany(
            "INSERT INTO alerts(channel, item_id, terms, outbox_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                (channel, item_id, json.dumps(list(terms)), outbox_id, now)
                for channel, item_id, terms, outbox_id in alerts
            ],
        )

    def _select_in(self, sql: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        unique = list(dict.fromkeys(values))
        for offset in range(0, len(unique), 500):
            chunk = unique[offset : offset + 500]
            rows += self.db.rows(sql.format(marks=",".join("?" * len(chunk))), chunk)
        return rows

    def alerted(self, item_ids: Sequence[int]) -> set[tuple[str, int]]:
        """(channel, item id) pairs among `item_ids` that already have their alert."""
        rows = self._select_in(
            "SELECT channel, item_id FROM alerts WHERE item_id IN ({marks})", item_ids
        )
        return {(str(channel), int(item_id)) for channel, item_id in rows}

    def single_alerts(self, item_ids: Sequence[int]) -> dict[tuple[str, int], int]:
        """(channel, item id) -> outbox id of the single alert (not a digest)
        a channel got for each of these stories: what a follow-up answers
        (an alert that died has nothing to answer)."""
        rows = self._select_in(
            "SELECT a.channel, a.item_id, a.outbox_id FROM alerts a JOIN outbox o "
            "ON o.id = a.outbox_id WHERE o.kind = 'alert' AND o.state != 'dead' "
            "AND a.item_id IN ({marks})",
            item_ids,
        )
        return {(str(c), int(i)): int(o) for c, i, o in rows}

    def story_alerts(self, item_id: int) -> list[tuple[str, OutboxRow]]:
        """(channel, the alert's message) for every channel alerted for a story."""
        rows = self.db.query(
            "SELECT a.channel AS alert_channel, o.* FROM alerts a "
            "JOIN outbox o ON o.id = a.outbox_id WHERE a.item_id = ? ORDER BY a.id",
            (item_id,),
        )
        return [(str(r.pop("alert_channel")), _outbox_row(r)) for r in rows]

    # -- follow-up lines --------------------------------------------------------

    def add_followup_lines(self, lines: Sequence[FollowupLine]) -> int:
        """New "Also reported by" lines; a source already reported for the
        same channel and story is left out. Returns how many were added."""
        added = 0
        for f in lines:
            added += self.db.execute(
                "INSERT INTO followup_lines(outbox_id, parent_id, channel, item_id, source, "
                "title, link) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (f.outbox_id, f.parent_id, f.channel, f.item_id, f.source, f.title, f.link),
            )
        return added

    def followup_lines(self, parent_id: int, up_to_outbox: int | None = None) -> list[FollowupLine]:
        """Lines answering alert `parent_id`, in order (those of follow-ups up
        to `up_to_outbox` only, when given)."""
        rows = self.db.query(
            "SELECT outbox_id, parent_id, channel, item_id, source, title, link "
            "FROM followup_lines WHERE parent_id = ? AND outbox_id <= ? ORDER BY id",
            (parent_id, up_to_outbox if up_to_outbox is not None else 2**62),
        )
        return [FollowupLine(**r) for r in rows]

    def followup_outbox_lines(self, outbox_id: int) -> list[FollowupLine]:
        rows = self.db.query(
            "SELECT outbox_id, parent_id, channel, item_id, source, title, link "
            "FROM followup_lines WHERE outbox_id = ? ORDER BY id",
            (outbox_id,),
        )
        return [FollowupLine(**r) for r in rows]

    # -- reading ------------------------------------------------------------

    def _where(
        self, where: str, params: Sequence[Any], limit: int | None = None
    ) -> list[OutboxRow]:
        limit_sql = "" if limit is None else f" LIMIT {int(limit)}"
        rows = self.db.query(f"SELECT * FROM outbox WHERE {where} ORDER BY id{limit_sql}", params)
        return [_outbox_row(r) for r in rows]

    def get(self, outbox_id: int) -> OutboxRow | None:
        found = self._where("id = ?", (outbox_id,))
        return found[0] if found else None

    def in_state(self, state: str, limit: int = 50) -> list[OutboxRow]:
        return self._where("state = ?", (state,), limit)

    def counts(self) -> dict[str, int]:
        rows = self.db.rows("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {str(state): int(count) for state, count in rows}

    def channel_heads(self) -> list[OutboxRow]:
        """The oldest open (pending or sending) message of every channel,
        whatever its retry time: nothing behind it may go first."""
        rows = self.db.query(
            """SELECT o.* FROM outbox o
               JOIN (SELECT channel, MIN(id) AS id FROM outbox
                     WHERE state IN (?, ?) GROUP BY channel) head ON head.id = o.id
               ORDER BY o.id""",
            (PENDING, SENDING),
        )
        return [_outbox_row(r) for r in rows]

    # -- sending: claims and outcomes -----------------------------------------

    def claim(
        self,
        outbox_id: int,
        *,
        owner: str,
        now: float,
        gate_keys: Sequence[str],
        hold: dict[str, float],
    ) -> Claim:
        """Atomically (across workers) take a message for sending.

        Succeeds only when it is still pending, still the oldest open message
        of its channel and no gate in `gate_keys` is closed at `now`; then it
        becomes `sending` (held by `owner`) and the gates in `hold` close
        until the given times, in the same transaction. A claim that lost a
        race with another worker simply fails (the caller tries later).
        """
        gates = GateStore(self.db)
        try:
            with self.db.transaction():
                locked = self.db.rows(
                    "SELECT channel, state FROM outbox WHERE id = ? FOR UPDATE", (outbox_id,)
                )
                if not locked or locked[0][1] != PENDING:
                    return Claim(None)
                channel = str(locked[0][0])
                head = self.db.scalar(
                    "SELECT MIN(id) FROM outbox WHERE channel = ? AND state IN (?, ?)",
                    (channel, PENDING, SENDING),
                )
                if head != outbox_id:
                    return Claim(None)
                closed = gates.lock(sorted({*gate_keys, *hold}), gate_keys)
                if closed is not None and closed > now:
                    return Claim(None, closed)
                self.db.execute(
                    "UPDATE outbox SET state = ?, attempts = attempts + 1, sending_at = ?, "
                    "sending_owner = ? WHERE id = ?",
                    (SENDING, now, owner, outbox_id),
                )
                for key, until in hold.items():
                    gates.push(key, until)
                claimed = self.get(outbox_id)
        except Conflict:
            return Claim(None)
        return Claim(claimed)

    # The outcome of an attempt is recorded only by the sender that holds the
    # message (`owner`, from `claim`): if its lease ran out and another sender
    # took the message over, a late result must not overwrite the new owner's
    # state. Each returns False when the update was refused.

    def mark_sent(self, outbox_id: int, remote_id: str | None, now: float, *, owner: str) -> bool:
        """Delivered. Also accepted after the message was released as an
        orphan but before anyone else claimed it (it did arrive)."""
        return (
            self.db.execute(
                "UPDATE outbox SET state = ?, remote_id = ?, sent_at = ?, last_error = NULL "
                "WHERE id = ? AND state IN (?, ?) AND sending_owner = ?",
                (SENT, remote_id, now, outbox_id, SENDING, PENDING, owner),
            )
            == 1
        )

    def mark_retry(self, outbox_id: int, error: str, next_attempt_at: float, *, owner: str) -> bool:
        return (
            self.db.execute(
                "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ? "
                "WHERE id = ? AND state = ? AND sending_owner = ?",
                (PENDING, error, next_attempt_at, outbox_id, SENDING, owner),
            )
            == 1
        )

    def mark_dead(self, outbox_id: int, error: str, now: float, *, owner: str) -> bool:
        return (
            self.db.execute(
                "UPDATE outbox SET state = ?, last_error = ?, sent_at = NULL "
                "WHERE id = ? AND state = ? AND sending_owner = ?",
                (DEAD, error, outbox_id, SENDING, owner),
            )
            == 1
        )

    def mark_uncertain(
        self,
        outbox_id: int,
        error: str,
        next_attempt_at: float,
        *,
        owner: str,
        now: float | None = None,
    ) -> bool:
        """Back to pending after an attempt that may have arrived: remember
        the window to look for it in at the destination before resending
        (from the first such attempt until `now`); a new window starts a
        new lookup."""
        return (
            self.db.execute(
                "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ?, "
                "verify_since = COALESCE(verify_since, sending_at, created_at), "
                "verify_until = ?, verify_cursor = NULL, verify_tries = 0 "
                "WHERE id = ? AND state = ? AND sending_owner = ?",
                (PENDING, error, next_attempt_at, now, outbox_id, SENDING, owner),
            )
            == 1
        )

    def save_lookup(self, outbox_id: int, cursor: str | None, tries: int, *, owner: str) -> bool:
        """Where a history lookup for a message we hold left off."""
        return (
            self.db.execute(
                "UPDATE outbox SET verify_cursor = ?, verify_tries = ? "
                "WHERE id = ? AND state = ? AND sending_owner = ?",
                (cursor, tries, outbox_id, SENDING, owner),
            )
            == 1
        )

    def release_orphan(self, outbox_id: int, owner: str | None, now: float) -> bool:
        """A `sending` message whose sender died: pending again, to be looked
        for at the destination before it is resent. False if its owner moved on."""
        held_by, params = ("IS NULL", ()) if owner is None else ("= ?", (owner,))
        return (
            self.db.execute(
                "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = ?, "
                "verify_since = COALESCE(verify_since, sending_at, created_at), "
                "verify_until = ?, verify_cursor = NULL, verify_tries = 0 "
                f"WHERE id = ? AND state = ? AND sending_owner {held_by}",
                (
                    PENDING,
                    "interrupted; checking before resending",
                    now,
                    now,
                    outbox_id,
                    SENDING,
                    *params,
                ),
            )
            == 1
        )

    def requeue(self, channel: str | None, now: float) -> int:
        """Dead messages (of one channel, or all) back to pending, due now
        and with a fresh attempt count, e.g. after the bot was invited or a
        token fixed. They keep their place (id order) in their channel.
        Returns how many."""
        where, params = ("state = ?", [DEAD]) if channel is None else (
            "state = ? AND channel = ?", [DEAD, channel]
        )  # fmt: skip
        return self.db.execute(
            "UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = ?, "
            "last_error = 'queued again by newshound retry (was: ' || COALESCE(last_error, '') "
            f"|| ')' WHERE {where}",
            (PENDING, now, *params),
        )


class GateStore:
    """Send gates (no call for a key before its time) and paused
    destinations (no call at all until someone fixes them), shared by every
    worker on the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> dict[str, float]:
        """Every send gate: key -> time before which no call may be made."""
        return {
            str(key): float(at) for key, at in self.db.rows("SELECT key, next_at FROM send_gates")
        }

    def push(self, key: str, not_before: float) -> None:
        """Close gate `key` until `not_before` (never reopens it earlier)."""
        self.db.execute(
            "INSERT INTO send_gates(key, next_at) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET next_at = CASE "
            "WHEN excluded.next_at > send_gates.next_at THEN excluded.next_at "
            "ELSE send_gates.next_at END",
            (key, not_before),
        )

    def lock(self, keys: Sequence[str], checked: Sequence[str]) -> float | None:
        """Inside a transaction: hold the rows of `keys` (made if missing, in
        key order so two claims never wait on each other in a circle) and
        return the latest time among `checked` before which a call is barred."""
        self.db.executemany(
            "INSERT INTO send_gates(key, next_at) VALUES (?, 0) ON CONFLICT DO NOTHING",
            [(key,) for key in keys],
        )
        if not keys:
            return None
        marks = ",".join("?" * len(keys))
        rows = self.db.rows(
            f"SELECT key, next_at FROM send_gates WHERE key IN ({marks}) ORDER BY key FOR UPDATE",
            tuple(keys),
        )
        wanted = set(checked)
        times = [float(at) for key, at in rows if key in wanted]
        return max(times) if times else None

    def pause(self, key: str, reason: str, now: float) -> bool:
        """Pause every message behind `key`; False if it already was paused."""
        return (
            self.db.execute(
                "INSERT INTO paused_destinations(key, reason, since) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (key, reason, now),
            )
            == 1
        )

    def paused(self) -> dict[str, tuple[str, float]]:
        """key -> (reason, since)."""
        rows = self.db.rows("SELECT key, reason, since FROM paused_destinations")
        return {str(key): (str(reason), float(since)) for key, reason, since in rows}

    def resume(self, prefix: str = "") -> int:
        """Clear the pauses whose key starts with `prefix` (all by default)."""
        return self.db.execute(
            "DELETE FROM paused_destinations WHERE substr(key, 1, length(?)) = ?", (prefix, prefix)
        )


def _outbox_row(r: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=r["id"],
        channel=r["channel"],
        kind=r["kind"],
        state=r["state"],
        payload=json.loads(r["payload"]),
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        remote_id=r["remote_id"],
        created_at=r["created_at"],
        sending_at=r["sending_at"],
        sending_owner=r["sending_owner"],
        verify_since=r["verify_since"],
        verify_until=r["verify_until"],
        verify_cursor=r["verify_cursor"],
        verify_tries=r["verify_tries"] or 0,
        cycle_key=r["cycle_key"],
    )
