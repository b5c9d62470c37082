"""Applying gateway payments (DESIGN.md §5): once per gateway transaction id, however many times
it is notified; a payment for an order number no loan has yet waits for the booking; another
merchant's, or one whose amount is not the installment's, is kept and raised to ops, never
applied; paying the last installment settles the loan.

Runs in the notification's request (the gateways retry until they get their success reply), so
a failure half-way answers "retry" and the next notification finishes the job: every step is
idempotent (the transaction's record first, the installment a member of a set, the outcome last).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.inbound.gateways import Payment
from chalicelib.observability import count, error_summary, logger
from chalicelib.outbound import ops
from chalicelib.service import overdue
from chalicelib.store import loans, outbox, payments, records, write_all
from chalicelib.store.models import PaymentItem

REDRIVE_AFTER = timedelta(minutes=10)  # a notification's request is long over (gateways want 5 s)


def receive(payment: Payment) -> str:
    """Record the transaction (once) and apply it unless that is done; what became of it."""
    now = clock.now()
    record, _ = payments.record(
        payment.gateway,
        payment.transaction_id,
        payment.payment_ref,
        payment.amount_minor,
        payment.paid_at,
        now,
        succeeded=payment.succeeded,
        foreign=payment.foreign,
    )
    if record.status in payments.FINAL:
        return record.status
    return apply(payment, now)


def _suspect(
    payment: Payment, reason: str, expected: int | None, dealer_id: str | None, now: datetime
) -> str:
    if payments.settle(payment.gateway, payment.transaction_id, "suspect", now, reason):
        logger.warning(
            "payment not applied: possibly forged",
            extra={"gateway": payment.gateway, "transaction_id": payment.transaction_id, "reason": reason},
        )
        count("PaymentsSuspect", reason=reason)
    outbox.put(ops.payment_suspect(payment, reason, expected, dealer_id), now)
    return "suspect"


def apply(payment: Payment, now: datetime) -> str:
    if not payment.succeeded:
        payments.settle(payment.gateway, payment.transaction_id, "ignored", now, "not_a_success")
        return "ignored"
    if payment.foreign:
        return _suspect(payment, "foreign_merchant", None, None, now)
    installment = payments.installment(payment.payment_ref)
    if installment is None:
        # Noted before looking again: a booking that indexes this order number meanwhile finds it.
        payments.wait(payment.payment_ref, payment.gateway, payment.transaction_id)
        installment = payments.installment(payment.payment_ref)
        if installment is None:
            payments.mark_waiting(payment.gateway, payment.transaction_id)
            return "waiting"
        payments.unwait(payment.payment_ref, payment.gateway, payment.transaction_id)
    if int(installment.amount_minor) != payment.amount_minor:
        return _suspect(payment, "amount_mismatch", int(installment.amount_minor), installment.dealer_id, now)
    dealer_id, finance_id, loan_id = installment.dealer_id, installment.finance_id, installment.loan_id
    loan = loans.pay(dealer_id, finance_id, loan_id, int(installment.seq), now)
    if loan is None:
        raise LookupError(f"loan {loan_id} of order number {payment.payment_ref} is not booked yet")
    paid_at = payment.paid_at or now
    summary = {
        "gateway": payment.gateway,
        "transaction_id": payment.transaction_id,
        "payment_ref": payment.payment_ref,
        "loan_id": loan_id,
        "seq": int(installment.seq),
        "amount_minor": payment.amount_minor,
    }
    owners = [
        f"LOAN#{finance_id}#{loan_id}",
        records.dealer_pk(dealer_id),
        records.vehicle_pk(dealer_id, loan.vin),
    ]
    entry_id = f"{payment.gateway}-{payment.transaction_id}"
    write_all(
        [
            records.timeline_entry(
                o, paid_at, entry_id, "payment.received", payment.gateway, dealer_id, summary
            )
            for o in owners
        ]
    )
    overdue.paid(loan, int(installment.seq), now, paid_at)
    if {int(i["seq"]) for i in loan.schedule} <= set(loan.paid_seqs or ()):
        done = loans.settle(dealer_id, finance_id, loan_id, paid_at, now)  # the last installment is paid
        if done is not None:
            overdue.settled(done, now, paid_at)
    place = {
        "finance_id": finance_id,
        "loan_id": loan_id,
        "dealer_id": dealer_id,
        "seq": int(installment.seq),
    }
    if payments.settle(payment.gateway, payment.transaction_id, "applied", now, loan=place):
        count("PaymentsApplied", gateway=payment.gateway)
    return "applied"


def apply_waiting(payment_refs: set[str]) -> int:
    """A loan was booked: apply the payments that came before it for its order numbers."""
    now = clock.now()
    applied = 0
    for ref, gateway, transaction_id in payments.waiting_for(payment_refs):
        record = payments.get(gateway, transaction_id)
        if record is not None and record.status not in payments.FINAL:
            applied += apply(_payment_of(record), now) == "applied"
        payments.unwait(ref, gateway, transaction_id)
    return applied


def redrive(real_now: datetime, settle_for: timedelta = REDRIVE_AFTER) -> tuple[int, int]:
    """Apply again the transactions whose application failed longer than `settle_for` ago (the
    gateway's own retries come sooner, and may have stopped): (re-driven, given up to ops)."""
    redriven = stuck = 0
    for record in payments.stale(real_now - settle_for):
        times = payments.redriven(record, real_now)
        if times is None:
            continue
        if times > payments.MAX_REDRIVES:
            outbox.put(ops.payment_stuck(record.gateway, record.transaction_id, record.payment_ref), real_now)
            count("PaymentsStuck", gateway=record.gateway)
            stuck += 1
            continue
        redriven += 1
        count("WorkQueued", why="payment_redrive")
        try:
            apply(_payment_of(record), real_now)
        except Exception as exc:  # it stays queued: the next sweep tries again
            logger.warning(
                "payment re-drive failed",
                extra={
                    "gateway": record.gateway,
                    "transaction_id": record.transaction_id,
                    "error": error_summary(exc),
                },
            )
    return redriven, stuck


def _payment_of(record: PaymentItem) -> Payment:
    return Payment(
        record.gateway,
        record.transaction_id,
        record.payment_ref,
        int(record.amount_minor),
        record.paid_at,
        True if record.succeeded is None else bool(record.succeeded),  # older records: only successes wait
        bool(record.foreign),
    )
