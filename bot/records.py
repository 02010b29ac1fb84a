"""The plain records the stores (bot/store/) return and take. Callers see
these, never database rows, and the modules that only decide (schedule,
runner, metrics, ...) import them without loading any database code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.models import Item

# Outbox states. An alert is `pending` from the moment it is stored; a sender
# marks it `sending` just before the call, then `sent` or `dead`. A digest is
# `assembling` while its cycle is still adding items to it.
ASSEMBLING = "assembling"
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DEAD = "dead"


@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    first_polled_at: float | None
    last_polled_at: float | None
    last_success_at: float | None
    last_error: str | None
    last_error_kind: str | None
    last_error_at: float | None
    consecutive_failures: int
    next_check_at: float
    gone: bool
    suspended_at: float | None
    items_seen_at: float | None = None  # when the feed's content was last read
    check_interval: float | None = None  # the configured interval behind next_check_at
    lease_owner: str | None = None  # the worker polling it right now, if any


@dataclass(frozen=True)
class FeedSuccess:
    """A successful poll. title/body_hash are None when nothing was parsed
    (304 or an unchanged body): the stored ones are kept."""

    feed_id: int
    now: float
    next_check_at: float
    etag: str | None
    last_modified: str | None
    title: str | None = None
    body_hash: str | None = None
    check_interval: float | None = None  # the configured interval behind next_check_at


@dataclass(frozen=True)
class OutboxRow:
    id: int
    channel: str
    kind: str
    state: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    last_error: str | None
    remote_id: str | None
    created_at: float
    sending_at: float | None = None
    sending_owner: str | None = None
    verify_since: float | None = None
    verify_until: float | None = None
    verify_cursor: str | None = None
    verify_tries: int = 0
    cycle_key: str | None = None  # the cycle still adding to it (assembling only)


@dataclass(frozen=True)
class Claim:
    """The outcome of `Store.claim_message`: the fresh row when this sender
    now holds it, else the earliest time a gate allows another try (0.0 when
    the message is no longer claimable at all)."""

    row: OutboxRow | None
    not_before: float = 0.0


@dataclass(frozen=True)
class StoredItem:
    id: int
    feed_id: int
    item: Item
    first_seen_at: float


@dataclass(frozen=True)
class StoryCopy:
    """A near-duplicate copy merged into an earlier story (`story_copies`)."""

    item_id: int  # the story it merged into
    item_key: str  # the copy's own primary key (its canonical link, ...)
    feed_id: int
    source: str
    title: str
    link: str | None
    like_key: str  # the earlier item it was found to copy
    score: float
    reason: str
    merged_at: float


@dataclass(frozen=True)
class FollowupLine:
    """One "Also reported by" line for (channel, story), carried by a
    follow-up message (`outbox_id`) that answers the alert `parent_id`."""

    outbox_id: int
    parent_id: int
    channel: str
    item_id: int
    source: str
    title: str
    link: str | None
