"""Gateway transactions: recorded once per transaction id before anything applies them, and the
ones waiting for their loan."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib.store import bind, conditional_update, put_if_absent
from chalicelib.store.models import PaymentItem, PaymentRefItem, PaymentWaitItem

RETENTION = timedelta(days=30)  # longer than any gateway retries (WeChat ~24 h, Alipay ~25 h)
WAITING = "PAYWAIT"
FINAL = frozenset({"applied", "suspect", "ignored"})


def _key(gateway: str, transaction_id: str) -> tuple[str, str]:
    return f"PAYMENT#{gateway}#{transaction_id}", "PAYMENT"


def record(
    gateway: str,
    transaction_id: str,
    payment_ref: str,
    amount_minor: int,
    paid_at: datetime | None,
    now: datetime,
) -> tuple[PaymentItem, bool]:
    """Record a transaction unless it is recorded; (the record, whether this call made it)."""
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
        expires_at=now + RETENTION,
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
    actions: list[Any] = [PaymentItem.status.set(status), PaymentItem.applied_at.set(now)]
    if reason is not None:
        actions.append(PaymentItem.reason.set(reason))
    if loan is not None:
        actions.append(PaymentItem.loan.set(loan))
    final = PaymentItem.status.is_in(*FINAL)
    return conditional_update(PaymentItem(*_key(gateway, transaction_id)), actions, ~final)


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
