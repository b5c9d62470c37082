"""Inbox items: one per accepted webhook. The conditional put IS the dedup and the enqueue.

The table's stream carries each new inbox item to the processor, so the synchronous path is a
single conditional `PutItem`; a redelivery hits the condition and gets the stored hash back in
the same request (`ReturnValuesOnConditionCheckFailure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import UpdateError

from chalicelib import aws, clock
from chalicelib.settings import get_settings
from chalicelib.store import bind
from chalicelib.store.models import InboxItem

DEDUP_RETENTION = timedelta(days=8)  # senders retry for up to 3 days; the contract says >= 7
PENDING_QUEUE = "PENDING#INBOX"
FAILED_QUEUE = "FAILED#INBOX"  # gave up re-driving: waits for `clm dlq replay` (never expires)
MAX_REDRIVES = 10


@dataclass(frozen=True)
class InboxRef:
    partner_id: str
    webhook_id: str

    @property
    def key(self) -> tuple[str, str]:
        return f"INBOX#{self.partner_id}#{self.webhook_id}", "INBOX"


@dataclass(frozen=True)
class Accepted:
    pass


@dataclass(frozen=True)
class Existing:
    body_sha256: str


def record(ref: InboxRef, event_type: str, body: str, body_sha256: str, now: datetime) -> Accepted | Existing:
    """Store an accepted webhook unless its id is already known; one DynamoDB request.

    It has no TTL yet: it gets one when processed (an unprocessed event is never deleted).

    This is the hot path, so the item is written with the low-level client in the exact shape
    `InboxItem` reads back (the store's tests check that round trip).
    """
    pk, sk = ref.key
    received = clock.iso(now)
    item = {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "et": {"S": "inbox"},
        "partner_id": {"S": ref.partner_id},
        "webhook_id": {"S": ref.webhook_id},
        "event_type": {"S": event_type},
        "body": {"S": body},
        "body_sha256": {"S": body_sha256},
        "received_at": {"S": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")},
        "status": {"S": "accepted"},
        "gsi1pk": {"S": PENDING_QUEUE},
        "gsi1sk": {"S": f"{received}#{pk}"},
    }
    ddb = aws.client("dynamodb")
    try:
        ddb.put_item(
            TableName=get_settings().table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ddb.exceptions.ConditionalCheckFailedException as exc:
        old = exc.response.get("Item") or {}
        return Existing(body_sha256=old.get("body_sha256", {}).get("S", ""))
    return Accepted()


def load(ref: InboxRef) -> InboxItem | None:
    bind()
    try:
        return InboxItem.get(*ref.key, consistent_read=True)
    except InboxItem.DoesNotExist:
        return None


def mark_processed(item: InboxItem, now: datetime) -> None:
    """Close the inbox item: it leaves the pending queue, and its dedup record now starts to expire.

    The TTL is set here, not on arrival: an event that cannot be applied yet is never deleted.
    """
    item.update(
        actions=[
            InboxItem.status.set("processed"),
            InboxItem.processed_at.set(now),
            InboxItem.expires_at.set(now + DEDUP_RETENTION),
            InboxItem.gsi1pk.remove(),
            InboxItem.gsi1sk.remove(),
        ]
    )


def note_failure(ref: InboxRef, error: str) -> None:
    """Count a failed attempt; after `MAX_REDRIVES` the sweep stops re-driving it (the DLQ holds it)."""
    bind()
    pk, sk = ref.key
    item = InboxItem(pk, sk)
    try:
        item.update(
            actions=[InboxItem.attempts.add(1), InboxItem.last_error.set(error[:500])],
            condition=InboxItem.pk.exists() & (InboxItem.status == "accepted"),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return  # processed meanwhile, or gone
        raise
    if item.attempts >= MAX_REDRIVES:
        InboxItem(pk, sk).update(
            actions=[InboxItem.gsi1pk.set(FAILED_QUEUE)], condition=InboxItem.status == "accepted"
        )


def stale(before: datetime, limit: int = 200) -> list[InboxRef]:
    """Accepted inbox items still unprocessed at `before` (the stream missed or failed them)."""
    bind()
    upper = f"{clock.iso(before)}#~"
    return [
        InboxRef(i.partner_id, i.webhook_id)
        for i in InboxItem.due_index.query(PENDING_QUEUE, InboxItem.gsi1sk < upper, limit=limit)
        if isinstance(i, InboxItem)
    ]
