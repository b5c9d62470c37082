"""The finance arm's loans (DESIGN.md §4): booked under the loan's dealer, settled by loan id.

A loan belongs to the finance partner that booked it and to the dealer it names; a second finance
partner's loan of the same id is a loan of its own (keys name the partner).
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.events.finance import LoanBooked, LoanSettled
from chalicelib.outbound import ops
from chalicelib.service import overdue, payments, reminders
from chalicelib.service.handlers import Context, Effects, handles
from chalicelib.service.ownership import Target
from chalicelib.store import loans, outbox, records


@handles(LoanBooked)
def on_loan_booked(ctx: Context, data: LoanBooked, target: Target, effects: Effects) -> None:
    """Keep the loan and its schedule under its dealer, index each installment by its payment
    reference (what gateways send back), and apply a settlement that came first."""
    dealer_id = data.dealer_id
    records.update_customer(dealer_id, data.customer_id, {}, ctx.now)
    fields = {
        "loan_id": data.loan_id,
        "vin": data.vin,
        "customer_id": data.customer_id,
        "principal_minor": data.principal_minor,
        "currency": data.currency,
        "schedule": [i.model_dump(mode="json") for i in data.schedule],
    }
    loans.book(dealer_id, ctx.partner_id, fields, ctx.now)
    # Indexed before the payments that came first are looked for: one arriving meanwhile finds it.
    refused = loans.index_payment_refs(
        [
            loans.payment_ref(i.payment_ref, ctx.partner_id, data.loan_id, dealer_id, i.seq, i.amount_minor)
            for i in data.schedule
        ]
    )
    if refused:  # another loan has these order numbers: its payments stay its own; ops sort it out
        outbox.put(
            ops.payment_ref_conflict(ctx.partner_id, data.loan_id, dealer_id, [r.pk for r in refused]),
            ctx.now,
        )
    payments.apply_waiting({i.payment_ref for i in data.schedule})
    reminder_args = (
        dealer_id,
        ctx.partner_id,
        data.loan_id,
        data.customer_id,
        data.vin,
        data.schedule,
        ctx.now,
    )
    effects.puts += reminders.repayment_reminders(*reminder_args)
    effects.puts += overdue.first_stages(*reminder_args)
    # The loan is written before it is pointed at, so a settlement that finds the dealer finds it.
    ref = loans.note_dealer(ctx.partner_id, data.loan_id, dealer_id)
    if ref.settled_at is not None:
        _settle(dealer_id, ctx.partner_id, data.loan_id, ref.settled_at, ctx.now)


def _settle(dealer_id: str, finance_id: str, loan_id: str, at: datetime, now: datetime) -> None:
    settled = loans.settle(dealer_id, finance_id, loan_id, at, now)
    if settled is not None:
        overdue.settled(settled, now, at)


@handles(LoanSettled)
def on_loan_settled(ctx: Context, data: LoanSettled, target: Target, effects: Effects) -> None:
    """Settled: kept with the loan id, and on the dealer's loan once it is booked (in either order)."""
    ref = loans.note_settled(ctx.partner_id, data.loan_id, data.at)
    if ref.dealer_id is not None:
        _settle(ref.dealer_id, ctx.partner_id, data.loan_id, data.at, ctx.now)
