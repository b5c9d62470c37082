"""Loans: the dealer's copy (schedule, what was paid), the pointer from the finance arm's loan id
to its dealer, and the index from a gateway's order number to its installment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.store import bind, decode_cursor, encode_cursor
from chalicelib.store.models import LoanItem, LoanRefItem, PaymentRefItem


def _key(dealer_id: str, finance_id: str, loan_id: str) -> tuple[str, str]:
    return f"DEALER#{dealer_id}", f"LOAN#{finance_id}#{loan_id}"


def _ref_key(finance_id: str, loan_id: str) -> tuple[str, str]:
    return f"LOAN#{finance_id}#{loan_id}", "LOAN"


def book(dealer_id: str, finance_id: str, fields: dict[str, Any], now: datetime) -> LoanItem:
    """Record the booked loan under its dealer; what was paid, and a settlement, stay."""
    bind()
    item = LoanItem(*_key(dealer_id, finance_id, fields["loan_id"]))
    actions: list[Any] = [
        LoanItem.entity.set(LoanItem),
        LoanItem.finance_id.set(finance_id),
        LoanItem.dealer_id.set(dealer_id),
    ]
    actions += [getattr(LoanItem, name).set(value) for name, value in fields.items()]
    actions += [LoanItem.booked_at.set(LoanItem.booked_at | now), LoanItem.updated_at.set(now)]
    item.update(actions=actions)
    return item


def note_dealer(finance_id: str, loan_id: str, dealer_id: str) -> LoanRefItem:
    """Point the finance arm's loan id at its dealer; the answer says if a settlement came first."""
    bind()
    item = LoanRefItem(*_ref_key(finance_id, loan_id))
    item.update(actions=[LoanRefItem.entity.set(LoanRefItem), LoanRefItem.dealer_id.set(dealer_id)])
    return item


def note_settled(finance_id: str, loan_id: str, at: datetime) -> LoanRefItem:
    """Keep the settlement with the loan id (its dealer may not be known yet); the answer names
    the dealer once the loan is booked."""
    bind()
    item = LoanRefItem(*_ref_key(finance_id, loan_id))
    item.update(actions=[LoanRefItem.entity.set(LoanRefItem), LoanRefItem.settled_at.set(at)])
    return item


def get(dealer_id: str, finance_id: str, loan_id: str) -> LoanItem | None:
    bind()
    try:
        return LoanItem.get(*_key(dealer_id, finance_id, loan_id), consistent_read=True)
    except LoanItem.DoesNotExist:
        return None


def dealer_of(finance_id: str, loan_id: str) -> str | None:
    bind()
    try:
        found: str | None = LoanRefItem.get(*_ref_key(finance_id, loan_id), consistent_read=True).dealer_id
    except LoanRefItem.DoesNotExist:
        return None
    return found


def settle(dealer_id: str, finance_id: str, loan_id: str, at: datetime, now: datetime) -> LoanItem | None:
    """Mark the booked loan settled (the earliest settlement counts); the loan as it now is, or
    None when no such loan is booked."""
    bind()
    from chalicelib.store import conditional_update

    item = LoanItem(*_key(dealer_id, finance_id, loan_id))
    actions = [LoanItem.settled_at.set(LoanItem.settled_at | at), LoanItem.updated_at.set(now)]
    return item if conditional_update(item, actions, LoanItem.pk.exists()) else None


def payment_ref(
    ref: str, finance_id: str, loan_id: str, dealer_id: str, seq: int, amount_minor: int
) -> PaymentRefItem:
    """The index entry of one installment (written in the booking's batch)."""
    return PaymentRefItem(
        f"PAYREF#{ref}",
        "PAYREF",
        finance_id=finance_id,
        loan_id=loan_id,
        dealer_id=dealer_id,
        seq=seq,
        amount_minor=amount_minor,
    )


def page(dealer_id: str, limit: int, cursor: str | None) -> tuple[list[LoanItem], str | None]:
    """One page of the dealer's loans, by finance partner and loan id."""
    bind()
    pk = f"DEALER#{dealer_id}"
    result = LoanItem.query(
        pk,
        LoanItem.sk.startswith("LOAN#"),
        consistent_read=True,
        limit=limit,
        last_evaluated_key=decode_cursor(cursor, pk, "LOAN#"),
    )
    found = [item for item in result if isinstance(item, LoanItem)]
    return found, encode_cursor(result.last_evaluated_key) if len(found) == limit else None


def of_vehicle(dealer_id: str, vin: str) -> list[LoanItem]:
    """The dealer's loans on one vehicle (few: a query of its loans, filtered)."""
    bind()
    return [
        item
        for item in LoanItem.query(
            f"DEALER#{dealer_id}",
            LoanItem.sk.startswith("LOAN#"),
            filter_condition=LoanItem.vin == vin,
            consistent_read=True,
        )
        if isinstance(item, LoanItem)
    ]


def pay(dealer_id: str, finance_id: str, loan_id: str, seq: int, now: datetime) -> LoanItem | None:
    """Mark one installment paid (a set: payments add to it in any order, once each); the loan as
    it now is, or None when no such loan is booked."""
    bind()
    item = LoanItem(*_key(dealer_id, finance_id, loan_id))
    from chalicelib.store import conditional_update

    done = conditional_update(
        item, [LoanItem.paid_seqs.add({seq}), LoanItem.updated_at.set(now)], LoanItem.pk.exists()
    )
    return item if done else None


def index_payment_refs(entries: list[PaymentRefItem]) -> list[PaymentRefItem]:
    """Index each installment under its order number unless another loan's is there; the
    entries refused (their order number belongs to another loan: gateways could not tell which)."""
    from chalicelib.store import put_if_absent

    refused = []
    for entry in entries:
        if put_if_absent(entry):
            continue
        found = PaymentRefItem.get(entry.pk, entry.sk, consistent_read=True)
        if (found.finance_id, found.loan_id, int(found.seq)) != (
            entry.finance_id,
            entry.loan_id,
            int(entry.seq),
        ):
            refused.append(entry)
    return refused


def track_bucket(loan: LoanItem, bucket: str | None, now: datetime) -> bool:
    """Record the loan's DPD bucket (None: current); True when this changed it."""
    bind()
    from chalicelib.store import conditional_update

    item = LoanItem(loan.pk, loan.sk)
    attribute = LoanItem.dpd_bucket
    if bucket is None:
        return conditional_update(
            item, [attribute.remove(), LoanItem.updated_at.set(now)], attribute.exists()
        )
    condition = attribute.does_not_exist() | (attribute != bucket)
    return conditional_update(item, [attribute.set(bucket), LoanItem.updated_at.set(now)], condition)
