"""Reminder items: under the vehicle (or customer) they are about, and in the sparse due index
until they fire, so a sweep reads only the reminders that are due, however large the fleet."""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.store import bind, conditional_update, due_in, put_if_absent
from chalicelib.store.models import ReminderItem

QUEUE = "REMIND"


def _shards() -> int:
    from chalicelib.settings import get_settings

    return get_settings().due_shards


def _due_keys(reminder_id: str, trigger_at: datetime) -> tuple[str, str]:
    shard = zlib.crc32(reminder_id.encode()) % _shards()
    return f"{QUEUE}#{shard}", f"{clock.iso(trigger_at)}#{reminder_id}"


def key(owner_pk: str, reminder_id: str) -> tuple[str, str]:
    return owner_pk, f"REMINDER#{reminder_id}"


def new_item(
    owner_pk: str,
    reminder_id: str,
    kind: str,
    *,
    dealer_id: str,
    customer_id: str,
    trigger_at: datetime,
    details: dict[str, Any],
    now: datetime,
    vin: str | None = None,
    delivered_at: datetime | None = None,
) -> ReminderItem:
    """A scheduled reminder, to be written with the event that caused it (a batch put).

    Writing it again (the event re-processed) schedules it again; firing it again is harmless:
    its tasks and SMS are recorded under ids derived from the reminder.
    """
    pk, sk = key(owner_pk, reminder_id)
    gpk, gsk = _due_keys(reminder_id, trigger_at)
    return ReminderItem(
        pk,
        sk,
        reminder_id=reminder_id,
        kind=kind,
        dealer_id=dealer_id,
        customer_id=customer_id,
        vin=vin,
        delivered_at=delivered_at,
        trigger_at=trigger_at,
        details=details,
        status="scheduled",
        updated_at=now,
        gsi1pk=gpk,
        gsi1sk=gsk,
    )


def put_once(item: ReminderItem) -> bool:
    """Schedule a reminder unless it exists (a replayed cause never resets one that fired)."""
    return put_if_absent(item)


def get(owner_pk: str, reminder_id: str) -> ReminderItem | None:
    bind()
    try:
        return ReminderItem.get(*key(owner_pk, reminder_id), consistent_read=True)
    except ReminderItem.DoesNotExist:
        return None


def due(now: datetime, limit: int = 500) -> list[ReminderItem]:
    """Scheduled reminders whose trigger time has come (a page per shard), oldest first."""
    upper = f"{clock.iso(now)}#~"
    found = [
        item
        for item in due_in(QUEUE, _shards(), upper, limit)
        if isinstance(item, ReminderItem) and item.status == "scheduled"
    ]
    found.sort(key=lambda r: r.trigger_at)
    return found[:limit]


def settle(
    reminder: ReminderItem,
    status: str,
    now: datetime,
    *,
    reason: str | None = None,
    fired_by: str | None = None,
    send_at: datetime | None = None,
) -> bool:
    """What became of a scheduled reminder (fired, or closed without firing), exactly once: it
    leaves the due index in the same update. False when it was no longer scheduled."""
    bind()
    actions: list[Any] = [
        ReminderItem.status.set(status),
        ReminderItem.updated_at.set(now),
        ReminderItem.gsi1pk.remove(),
        ReminderItem.gsi1sk.remove(),
    ]
    if reason is not None:
        actions.append(ReminderItem.reason.set(reason))
    if fired_by is not None:
        actions += [ReminderItem.fired_by.set(fired_by), ReminderItem.fired_at.set(now)]
    if send_at is not None:
        actions.append(ReminderItem.send_at.set(send_at))
    item = ReminderItem(reminder.pk, reminder.sk)
    return conditional_update(item, actions, ReminderItem.status == "scheduled")


def postpone(reminder: ReminderItem, until: datetime, now: datetime, reason: str) -> bool:
    """Keep a reminder scheduled but look at it again at `until` (it is on hold, for `reason`);
    its trigger time stays what it was. False when it was no longer scheduled."""
    bind()
    _, gsk = _due_keys(reminder.reminder_id, until)
    actions: list[Any] = [
        ReminderItem.gsi1sk.set(gsk),
        ReminderItem.reason.set(reason),
        ReminderItem.updated_at.set(now),
    ]
    item = ReminderItem(reminder.pk, reminder.sk)
    return conditional_update(item, actions, ReminderItem.status == "scheduled")


def after_send(
    owner_pk: str, reminder_id: str, status: str, now: datetime, reason: str | None = None
) -> bool:
    """Its SMS went out (`sent`) or was stopped at the last moment (`suppressed`, with why)."""
    bind()
    actions: list[Any] = [ReminderItem.status.set(status), ReminderItem.updated_at.set(now)]
    actions.append(ReminderItem.reason.set(reason) if reason else ReminderItem.reason.remove())
    if status == "sent":
        actions.append(ReminderItem.send_at.set(now))
    item = ReminderItem(*key(owner_pk, reminder_id))
    return conditional_update(item, actions, ReminderItem.status.is_in("sent", "deferred"))


def timeline_owners(reminder: ReminderItem) -> list[str]:
    """The timelines a reminder's outcomes go on: what it is about, and a loan's also its dealer's
    and its vehicle's."""
    from chalicelib.store import records

    owners = [reminder.pk]
    if reminder.pk.startswith("LOAN#"):
        owners.append(records.dealer_pk(reminder.dealer_id))
        vin = (reminder.details or {}).get("vin")
        if vin:
            owners.append(records.vehicle_pk(reminder.dealer_id, vin))
    return owners


def repaid(reminder: ReminderItem) -> str | None:
    """Why a loan reminder is moot (`installment_moot`), reading its loan now."""
    from chalicelib.store import loans

    details = reminder.details
    loan = loans.get(reminder.dealer_id, details["finance_id"], details["loan_id"])
    return installment_moot(loan, int(details["seq"]), details.get("due_date"))


def installment_moot(loan: Any, seq: int, due_date: str | None = None) -> str | None:
    """Why an installment's reminders and overdue work have no point: the loan settled, the
    installment paid, or a re-booking dropped it or moved its due date (`rescheduled`: the new
    schedule's reminders say the new date)."""
    if loan is None or loan.settled_at is not None:
        return "settled"
    if seq in set(loan.paid_seqs or ()):
        return "paid"
    if due_date is not None:
        current = next((i for i in loan.schedule if int(i["seq"]) == seq), None)
        if current is None or current["due_date"] != due_date:
            return "rescheduled"
    return None
