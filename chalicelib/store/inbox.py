"""Inbox items: one per accepted webhook. The conditional put IS the dedup and the enqueue.

The table's stream carries each new inbox item to the processor, so the synchronous path is a
single conditional `PutItem`; a redelivery hits the condition and gets the stored hash back in
the same request (`ReturnValuesOnConditionCheckFailure`).

The item also keeps what became of the event (DESIGN.md §3), which its sender can read:
``pending`` (queued, retried, or waiting for a delivery), ``applied``, ``ignored`` (with a
reason), ``dead_lettered``. The sender's `reason` never tells more than an unknown VIN would;
`ops_reason` keeps the truth for ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition

from chalicelib import clock
from chalicelib.settings import get_settings
from chalicelib.store import Redrive, bind, conditional_update

# The accept path's part of the inbox lives in `accept` (no PynamoDB there); callers find it here too.
from chalicelib.store.accept import PENDING_QUEUE as PENDING_QUEUE
from chalicelib.store.accept import Accepted as Accepted
from chalicelib.store.accept import Existing as Existing
from chalicelib.store.accept import InboxRef as InboxRef
from chalicelib.store.accept import record as record
from chalicelib.store.models import InboxItem

DEDUP_RETENTION = timedelta(days=8)  # senders retry for up to 3 days; the contract says >= 7
WAITING_QUEUE = "WAITING#INBOX"  # parked for a delivery; expires after `WAIT_LIMIT`
FAILED_QUEUE = "FAILED#INBOX"  # gave up re-driving: waits for `clm dlq replay` (never expires)
MAX_REDRIVES = 10  # failed attempts and re-drives together; then the event is dead-lettered
FINAL = frozenset({"applied", "ignored"})
AWAITING_DELIVERY = "awaiting_delivery"


@dataclass(frozen=True)
class Waiting:
    """An event parked for a delivery: whose vehicle it waits for, and (for ops) why."""

    ref: InboxRef
    dealer_id: str
    vin: str
    ops_reason: str


def load(ref: InboxRef) -> InboxItem | None:
    bind()
    try:
        return InboxItem.get(*ref.key, consistent_read=True)
    except InboxItem.DoesNotExist:
        return None


def _update(ref: InboxRef, actions: list[Any], condition: Condition) -> InboxItem | None:
    """Update the item under `condition`; the item as it now is, or None when the condition failed."""
    bind()
    item = InboxItem(*ref.key)
    return item if conditional_update(item, actions, condition) else None


def retention() -> timedelta:
    """How long a final inbox item (its raw payload and its dedup record) is kept after its outcome:
    `CLM_PAYLOAD_RETENTION_DAYS` (default 30), never less than the dedup window."""
    return max(DEDUP_RETENTION, timedelta(days=get_settings().payload_retention_days))


def _final(status: str, now: datetime) -> list[Any]:
    """The outcome is decided: the item leaves every queue and starts to expire (TTL).

    An event not yet final never expires: what was accepted is never lost."""
    return [
        InboxItem.status.set(status),
        InboxItem.processed_at.set(now),
        InboxItem.expires_at.set(now + retention()),
        InboxItem.waiting_for.remove(),
        InboxItem.gsi1pk.remove(),
        InboxItem.gsi1sk.remove(),
    ]


def applied_item(item: InboxItem, now: datetime) -> InboxItem:
    """The inbox item closed as applied, to be written with the event's other effects (one batch)."""
    closed = InboxItem.from_raw_data(item.serialize())
    closed.status = "applied"
    closed.processed_at = now
    closed.expires_at = now + retention()
    for name in ("reason", "ops_reason", "waiting_for", "gsi1pk", "gsi1sk"):
        setattr(closed, name, None)
    return closed


def reopen(ref: InboxRef) -> None:
    """An `applied` outcome written before all of its event's effects: pending again (re-driven)."""
    actions = [
        InboxItem.status.set("pending"),
        InboxItem.expires_at.remove(),
        InboxItem.gsi1pk.set(PENDING_QUEUE),
        InboxItem.gsi1sk.set(_handoff_key(ref, clock.system_now())),
    ]
    _update(ref, actions, InboxItem.status == "applied")


def mark_ignored(ref: InboxRef, reason: str, ops_reason: str, now: datetime) -> bool:
    """Close the item as ignored: `reason` is what the sender sees, `ops_reason` the truth."""
    actions = [*_final("ignored", now), InboxItem.reason.set(reason), InboxItem.ops_reason.set(ops_reason)]
    return _update(ref, actions, InboxItem.status.is_in("pending", "dead_lettered")) is not None


def park(ref: InboxRef, dealer_id: str, vin: str, ops_reason: str) -> bool:
    """The event waits for `dealer_id`'s delivery of `vin`; the sender sees `pending`/`awaiting_delivery`."""
    actions = [
        InboxItem.reason.set(AWAITING_DELIVERY),
        InboxItem.ops_reason.set(ops_reason),
        InboxItem.waiting_for.set(f"{dealer_id}#{vin}"),
        InboxItem.gsi1pk.set(WAITING_QUEUE),
    ]
    return _update(ref, actions, InboxItem.status == "pending") is not None


def unpark(ref: InboxRef) -> None:
    """A parked event is about to be applied: back in the re-drive queue until it is."""
    actions = [
        InboxItem.reason.remove(),
        InboxItem.ops_reason.remove(),
        InboxItem.waiting_for.remove(),
        InboxItem.gsi1pk.set(PENDING_QUEUE),
        InboxItem.gsi1sk.set(_handoff_key(ref, clock.system_now())),  # handed to processing now
    ]
    _update(ref, actions, InboxItem.status == "pending")


def _handoff_key(ref: InboxRef, at: datetime) -> str:
    """The re-drive queue's sort key: when the event was last handed to processing."""
    return f"{clock.iso(at)}#{ref.key[0]}"


def dead_letter(ref: InboxRef, why: str | None = None) -> None:
    """The event is given up (its reference is in the dead-letter queue): `dead_lettered` for its
    sender, out of the re-drive queue, until `clm dlq replay` brings it back. `why` is kept as its
    last error when no failure left one (a worker that died every time)."""
    actions = [InboxItem.status.set("dead_lettered"), InboxItem.gsi1pk.set(FAILED_QUEUE)]
    if why is not None:
        actions.append(InboxItem.last_error.set(InboxItem.last_error | why))
    _update(ref, actions, InboxItem.status == "pending")


def note_failure(ref: InboxRef, error: str, *, last_attempt: bool = False) -> bool:
    """Count a failed attempt; it is handed to the retry queue now (the sweep leaves it alone for a
    visibility timeout). When the queue gives up (`last_attempt`: it moves the message to the DLQ
    itself) the event is `dead_lettered` here. True when the event has used up `MAX_REDRIVES`
    otherwise: the caller puts it in the DLQ and then calls `dead_letter` (so a failure between
    the two leaves it pending, and the sweep finds it again)."""
    item = _update(
        ref,
        [InboxItem.attempts.add(1), InboxItem.last_error.set(error)],
        InboxItem.status == "pending",
    )
    if item is None:
        return False
    if last_attempt:
        dead_letter(ref)
        return False
    if item.gsi1pk == PENDING_QUEUE:
        _update(
            ref,
            [InboxItem.gsi1sk.set(_handoff_key(ref, clock.system_now()))],
            InboxItem.gsi1pk == PENDING_QUEUE,
        )
    return item.attempts >= MAX_REDRIVES


def redriven(ref: InboxRef, now: datetime) -> Redrive:
    """The sweep hands a lost event to the retry queue: once per visibility timeout, `MAX_REDRIVES`
    times at most (a worker killed mid-way never noted its failures). `exhausted` past that: the
    caller dead-letters it; `skipped` when it is no longer pending in the re-drive queue."""
    item = _update(
        ref,
        [InboxItem.attempts.add(1), InboxItem.gsi1sk.set(_handoff_key(ref, now))],
        (InboxItem.status == "pending") & (InboxItem.gsi1pk == PENDING_QUEUE),
    )
    if item is None:
        return "skipped"
    return "exhausted" if item.attempts > MAX_REDRIVES else "redriven"


def requeue(ref: InboxRef, now: datetime) -> bool:
    """A dead-lettered event is replayed: pending again, back in the queue it came from (re-driven
    if the replay is lost, or waiting for its delivery, and expiring, if it was waiting), with its
    attempts counted afresh: ops fixed the cause, and one more failure must not give it up again."""
    item = load(ref)
    if item is None:
        return False
    actions = [InboxItem.status.set("pending"), InboxItem.attempts.set(0)]
    if item.reason == AWAITING_DELIVERY:
        actions.append(InboxItem.gsi1pk.set(WAITING_QUEUE))
    else:  # handed to processing now: not stale before the replayed message had its chance
        actions += [InboxItem.gsi1pk.set(PENDING_QUEUE), InboxItem.gsi1sk.set(_handoff_key(ref, now))]
    return _update(ref, actions, InboxItem.status == "dead_lettered") is not None


def _queued(queue: str, before: datetime, limit: int) -> list[InboxItem]:
    bind()
    upper = f"{clock.iso(before)}#~"
    return [
        i
        for i in InboxItem.due_index.query(queue, InboxItem.gsi1sk < upper, limit=limit)
        if isinstance(i, InboxItem)
    ]


def stale(before: datetime, limit: int = 100) -> list[InboxRef]:
    """Events pending and last handed to processing before `before`: lost, not merely queued.

    A page of the oldest: a large backlog is spread over sweeps, never multiplied."""
    return [InboxRef(i.partner_id, i.webhook_id) for i in _queued(PENDING_QUEUE, before, limit)]


def waiting_since(before: datetime, limit: int = 200) -> list[Waiting]:
    """Events parked for a delivery since before `before`, oldest first."""
    out: list[Waiting] = []
    for item in _queued(WAITING_QUEUE, before, limit):
        dealer_id, _, vin = (item.waiting_for or "").partition("#")
        out.append(Waiting(InboxRef(item.partner_id, item.webhook_id), dealer_id, vin, item.ops_reason or ""))
    return out


def outcome(item: InboxItem) -> dict[str, Any]:
    """What became of the event, as its sender may see it (DESIGN.md §3); never `ops_reason`."""
    applied = item.status == "applied" and item.processed_at is not None
    return {
        "id": item.webhook_id,
        "type": item.event_type,
        "received_at": clock.iso(item.received_at),
        "outcome": item.status,
        "reason": item.reason,
        "attempts": int(item.attempts or 0),
        "applied_at": clock.iso(item.processed_at) if applied and item.processed_at else None,
    }
