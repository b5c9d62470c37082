"""Outbox items: a notification is written before anything delivers it.

Ids derive from their cause, so recording twice is harmless; a new item reaches the deliverer
through the table stream, and the sweeper re-drives any that stay pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.store import Redrive, bind, conditional_update, put_if_absent
from chalicelib.store.models import OutboxItem

PENDING_QUEUE = "PENDING#OUTBOX"
SMS_QUEUE = "SMS#QUEUE"  # SMS waiting for their send time (quiet hours) or a send slot (rate)
SMS_PREFIX = "sms#"  # the ids of SMS (derived from their reminder's)
RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class Message:
    outbox_id: str
    channel: str  # topic | sms
    target: str  # topic key or E.164 number
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    send_after: datetime | None = None  # SMS only: not before this instant (quiet hours)


def _key(outbox_id: str) -> tuple[str, str]:
    return f"OUTBOX#{outbox_id}", "OUTBOX"


def new_item(message: Message, now: datetime) -> OutboxItem:
    """The outbox item of a message not yet recorded (to be written in a batch with others).

    A topic message waits in the pending queue, by when it was handed off (housekeeping time: a
    sweep at any business instant never makes it look lost early); an SMS waits in its own queue
    for its send time and a send slot (the rate is per account).
    """
    pk, sk = _key(message.outbox_id)
    if message.channel == "sms":
        send_after: datetime | None = message.send_after or now
        status, queue, since = "queued", SMS_QUEUE, send_after
    else:
        send_after, status, queue, since = None, "pending", PENDING_QUEUE, clock.system_now()
    assert since is not None
    return OutboxItem(
        pk,
        sk,
        outbox_id=message.outbox_id,
        channel=message.channel,
        target=message.target,
        message=message.body,
        attributes=message.attributes,
        status=status,
        send_after=send_after,
        created_at=now,
        source=message.source,
        gsi1pk=queue,
        gsi1sk=f"{clock.iso(since)}#{message.outbox_id}",
        expires_at=max(now, since) + RETENTION,
    )


def put(message: Message, now: datetime) -> bool:
    """Record a message once; False when its id was already recorded (delivered or not)."""
    return put_if_absent(new_item(message, now))


def get(outbox_id: str) -> OutboxItem | None:
    bind()
    try:
        return OutboxItem.get(*_key(outbox_id), consistent_read=True)
    except OutboxItem.DoesNotExist:
        return None


def mark_delivered(outbox_id: str, now: datetime, status: str = "delivered") -> None:
    """Delivered (or, for an SMS to an opted-out number, `suppressed`): it leaves every queue."""
    bind()
    pk, sk = _key(outbox_id)
    OutboxItem(pk, sk).update(
        actions=[
            OutboxItem.status.set(status),
            OutboxItem.delivered_at.set(now),
            OutboxItem.gsi1pk.remove(),
            OutboxItem.gsi1sk.remove(),
        ]
    )


def defer_sms(outbox_id: str, until: datetime) -> bool:
    """A queued SMS must wait after all (its overdue message is paused): its send time moves on."""
    bind()
    item = OutboxItem(*_key(outbox_id))
    actions = [OutboxItem.send_after.set(until), OutboxItem.gsi1sk.set(f"{clock.iso(until)}#{outbox_id}")]
    return conditional_update(
        item, actions, (OutboxItem.status == "queued") & (OutboxItem.gsi1pk == SMS_QUEUE)
    )


def queued_sms(now: datetime, limit: int = 100) -> list[str]:
    """Ids of SMS whose send time has come, oldest first (a page)."""
    bind()
    upper = f"{clock.iso(now)}#~"
    return [
        i.outbox_id
        for i in OutboxItem.due_index.query(SMS_QUEUE, OutboxItem.gsi1sk <= upper, limit=limit)
        if isinstance(i, OutboxItem) and i.status == "queued"
    ]


RATE_KEY = "RATE#SMS"


def take_sms_slot(instant: datetime, rate: int) -> bool:
    """One of the account's `rate` SMS sends in the second of `instant`, shared by every sender
    (the stream's consumers and the sweep); False when that second is used up."""
    bind()
    from chalicelib import aws
    from chalicelib.settings import get_settings

    second = int(instant.timestamp())
    try:
        aws.client("dynamodb").update_item(
            TableName=get_settings().table_name,
            Key={"pk": {"S": RATE_KEY}, "sk": {"S": str(second)}},
            UpdateExpression="ADD sent :one SET expires_at = :ttl",
            ConditionExpression="attribute_not_exists(sent) OR sent < :rate",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":rate": {"N": str(rate)},
                ":ttl": {"N": str(second + 86_400)},
            },
        )
    except aws.client("dynamodb").exceptions.ConditionalCheckFailedException:
        return False
    return True


MAX_HANDOFFS = 10  # then a message that keeps getting lost goes to the DLQ and waits in FAILED#OUTBOX
FAILED_QUEUE = "FAILED#OUTBOX"


def handed_off(outbox_id: str, now: datetime, error: str | None = None) -> Redrive:
    """The message was handed to the retry queue (it failed, with `error`, or the sweep found it
    lost): the sweep leaves it alone for a visibility timeout. `exhausted` once handed off more
    than `MAX_HANDOFFS` times (the caller dead-letters it, then calls `give_up`); `skipped` when
    it is no longer pending in the re-drive queue."""
    bind()
    pk, sk = _key(outbox_id)
    item = OutboxItem(pk, sk)
    actions = [OutboxItem.handoffs.add(1), OutboxItem.gsi1sk.set(f"{clock.iso(now)}#{outbox_id}")]
    if error is not None:
        actions.append(OutboxItem.last_error.set(error))
    moved = conditional_update(
        item,
        actions,
        (OutboxItem.status == "pending") & (OutboxItem.gsi1pk == PENDING_QUEUE),
    )
    if not moved:
        return "skipped"
    return "exhausted" if item.handoffs > MAX_HANDOFFS else "redriven"


def requeue(outbox_id: str, now: datetime) -> bool:
    """A dead-lettered message is replayed: back in the re-drive queue, handed off now, its
    hand-offs counted afresh. False when it is no longer pending (sent or suppressed meanwhile)."""
    bind()
    pk, sk = _key(outbox_id)
    actions = [
        OutboxItem.handoffs.set(0),
        OutboxItem.gsi1pk.set(PENDING_QUEUE),
        OutboxItem.gsi1sk.set(f"{clock.iso(now)}#{outbox_id}"),
    ]
    return conditional_update(OutboxItem(pk, sk), actions, OutboxItem.status == "pending")


def give_up(outbox_id: str, why: str | None = None) -> None:
    """The message is in the dead-letter queue: out of the re-drive queue, waiting for ops in
    FAILED#OUTBOX (`clm dlq replay` delivers it). `why` is kept when no failure left an error."""
    bind()
    pk, sk = _key(outbox_id)
    actions = [OutboxItem.gsi1pk.set(FAILED_QUEUE)]
    if why is not None:
        actions.append(OutboxItem.last_error.set(OutboxItem.last_error | why))
    conditional_update(OutboxItem(pk, sk), actions, OutboxItem.status == "pending")


def stale(before: datetime, limit: int = 100) -> list[str]:
    """Ids of messages pending and last handed off before `before` (a page of the oldest)."""
    bind()
    upper = f"{clock.iso(before)}#~"
    return [
        i.outbox_id
        for i in OutboxItem.due_index.query(PENDING_QUEUE, OutboxItem.gsi1sk < upper, limit=limit)
        if isinstance(i, OutboxItem)
    ]
