"""Finance-core events: loans and their repayment schedules."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from chalicelib.events.common import Currency, Day, EventData, Id, Instant, MinorUnits, Part, PaymentRef, Vin

Seq = Annotated[int, Field(strict=True, ge=1, le=1000)]


class Installment(Part):
    """One repayment due; gateways report its payment by `payment_ref` (their order number)."""

    seq: Seq
    due_date: Day
    amount_minor: MinorUnits
    payment_ref: PaymentRef


class LoanBooked(EventData):
    """A car loan started; its schedule drives repayment reminders and delinquency buckets."""

    loan_id: Id
    dealer_id: Id
    vin: Vin
    customer_id: Id
    principal_minor: MinorUnits
    currency: Currency = "CNY"
    schedule: list[Installment] = Field(min_length=1, max_length=1000)

    @field_validator("schedule")
    @classmethod
    def _one_installment_per_seq_and_ref(cls, schedule: list[Installment]) -> list[Installment]:
        if len({i.seq for i in schedule}) != len(schedule):
            raise PydanticCustomError("duplicate_seq", "each installment needs its own seq")
        if len({i.payment_ref for i in schedule}) != len(schedule):
            raise PydanticCustomError(
                "duplicate_payment_ref", "each installment needs its own payment_ref (gateways pay by it)"
            )
        return schedule


class LoanSettled(EventData):
    """The loan is repaid or closed: no more reminders or collections for it."""

    loan_id: Id
    at: Instant
