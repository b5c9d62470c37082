"""Gateway transactions: recorded once per transaction id before anything applies them, and the
ones waiting for their loan.

A transaction not yet settled (nor waiting for its loan) sits in the due index under `PAYRETRY`,
by when it was last handed to applying: the sweep re-drives the ones whose application failed
and the gateway stopped notifying, `MAX_REDRIVES` times, then raises them to ops as stuck."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.store import bind, conditional_update, put_if_absent
from chalicelib.store.models import PaymentItem, PaymentRefItem, PaymentWaitItem

RETENTION = timedelta(days=30)  # longer than any gateway retries (WeChat ~24 h, Alipay ~25 h)
WAITING = "PAYWAIT"
RETRY_QUEUE = "PAYRETRY"
MAX_REDRIVES = 5
FINAL = frozenset({"applied", "suspect", "ignored"})


def _key(gateway: str, transaction_id: str) -> tuple[str, str]:
    return f"PAYMENT#{gateway}#{transaction_id}", "PAYMENT"


def _retry_key(gateway: str, transaction_id: str, handed_at: datetime) -> str:
    return f"{clock.iso(handed_at)}#{gateway}#{transaction_id}"


def record(
    gateway: str,
    transaction_id: str,
    payment_ref: str,
    amount_minor: int,
    paid_at: datetime | None,
    now: datetime,
    *,
    succeeded: bool = True,
    foreign: bool = False,
) -> tuple[PaymentItem, bool]:
    """Record a transaction unless it is recorded; (the record, whether this call made it).

    It enters the retry queue by the real clock (when it is handed to applying), whatever `now`
    the business rules see."""
    item = PaymentItem(
        *_key(gateway, transaction_id),
        gateway=gateway,
        transaction_id=transaction_id,
        payment_ref=payment_ref,
        amount_minor=amount_minor,
        paid_at=paid_at,
        status="received",
        received_at=now,
        notifications=1,
        succeeded=succeeded,
        foreign=foreign,
        expires_at=now + RETENTION,
        gsi1pk=RETRY_QUEUE,
        gsi1sk=_retry_key(gateway, transaction_id, clock.system_now()),
    )
    if put_if_absent(item):
        return item, True
    found = PaymentItem.get(*_key(gateway, transaction_id), consistent_read=True)
    found.update(actions=[PaymentItem.notifications.add(1)])
    return found, False


def get(gateway: str, transaction_id: str) -> PaymentItem | None:
    bind()
    try:
        return PaymentItem.get(*_key(gateway, transaction_id), consistent_read=True)
    except PaymentItem.DoesNotExist:
        return None


def settle(
    gateway: str,
    transaction_id: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    loan: dict[str, Any] | None = None,
) -> bool:
    """The transaction's outcome; final ones never change again. False when it was already final."""
    bind()
    actions: list[Any] = [
        PaymentItem.status.set(status),
        PaymentItem.applied_at.set(now),
        PaymentItem.gsi1pk.remove(),
        PaymentItem.gsi1sk.remove(),
    ]
    if reason is not None:
        actions.append(PaymentItem.reason.set(reason))
    if loan is not None:
        actions.append(PaymentItem.loan.set(loan))
    final = PaymentItem.status.is_in(*FINAL)
    return conditional_update(PaymentItem(*_key(gateway, transaction_id)), actions, ~final)


def mark_waiting(gateway: str, transaction_id: str) -> bool:
    """No booked loan has its order number yet: the booking applies it, the sweep leaves it be."""
    bind()
    actions = [PaymentItem.status.set("waiting"), PaymentItem.gsi1pk.remove(), PaymentItem.gsi1sk.remove()]
    final = PaymentItem.status.is_in(*FINAL)
    return conditional_update(PaymentItem(*_key(gateway, transaction_id)), actions, ~final)


def stale(before: datetime, limit: int = 100) -> list[PaymentItem]:
    """Transactions neither settled nor waiting, last handed to applying before `before`."""
    bind()
    upper = f"{clock.iso(before)}#~"
    return [
        i
        for i in PaymentItem.due_index.query(RETRY_QUEUE, PaymentItem.gsi1sk < upper, limit=limit)
        if isinstance(i, PaymentItem)
    ]


def redriven(record: PaymentItem, now: datetime) -> int | None:
    """The sweep hands a stuck transaction to applying again: its count of re-drives, or None when
    another sweep took it meanwhile. Past `MAX_REDRIVES` it leaves the queue for ops to look at."""
    bind()
    item = PaymentItem(*_key(record.gateway, record.transaction_id))
    still_queued = (PaymentItem.gsi1pk == RETRY_QUEUE) & (PaymentItem.gsi1sk == record.gsi1sk)
    actions: list[Any] = [
        PaymentItem.redrives.add(1),
        PaymentItem.gsi1sk.set(_retry_key(record.gateway, record.transaction_id, now)),
    ]
    if int(record.redrives or 0) + 1 > MAX_REDRIVES:
        actions = [PaymentItem.redrives.add(1), PaymentItem.gsi1pk.remove(), PaymentItem.gsi1sk.remove()]
    if not conditional_update(item, actions, still_queued):
        return None
    return int(item.redrives)


def installment(payment_ref: str) -> PaymentRefItem | None:
    """The installment an order number pays, if a booked loan has it."""
    bind()
    try:
        return PaymentRefItem.get(f"PAYREF#{payment_ref}", "PAYREF", consistent_read=True)
    except PaymentRefItem.DoesNotExist:
        return None


def wait(payment_ref: str, gateway: str, transaction_id: str) -> None:
    bind()
    PaymentWaitItem(WAITING, f"{payment_ref}#{gateway}#{transaction_id}").save()


def unwait(payment_ref: str, gateway: str, transaction_id: str) -> None:
    bind()
    PaymentWaitItem(WAITING, f"{payment_ref}#{gateway}#{transaction_id}").delete()


def waiting_for(payment_refs: set[str]) -> list[tuple[str, str, str]]:
    """The waiting transactions for these order numbers: (ref, gateway, transaction id)."""
    bind()
    found = []
    for item in PaymentWaitItem.query(WAITING, consistent_read=True):
        ref, _, rest = item.sk.partition("#")
        gateway, _, transaction_id = rest.partition("#")
        if ref in payment_refs:
            found.append((ref, gateway, transaction_id))
    return found
