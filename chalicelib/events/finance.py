"""Finance-core events: loans and their repayment schedules."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.events.common import PAYMENT_REF_PATTERN, Currency, EventData, Id, Instant, MinorUnits, Vin


class Installment(BaseModel):
    """One repayment: gateways send `payment_ref` back as their order number."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    seq: int = Field(ge=1)
    due_date: date
    amount_minor: Annotated[int, Field(gt=0)]
    payment_ref: Annotated[str, Field(pattern=PAYMENT_REF_PATTERN)]


class LoanBooked(EventData):
    """A car loan started; its schedule drives repayment reminders and delinquency."""

    loan_id: Id
    dealer_id: Id
    vin: Vin
    customer_id: Id
    principal_minor: MinorUnits
    currency: Currency = "CNY"
    schedule: list[Installment] = Field(min_length=1, max_length=600)

    @field_validator("schedule")
    @classmethod
    def _unique(cls, schedule: list[Installment]) -> list[Installment]:
        if len({i.seq for i in schedule}) != len(schedule):
            raise ValueError("installment seq numbers must be unique")
        if len({i.payment_ref for i in schedule}) != len(schedule):
            raise ValueError("installment payment_refs must be unique")
        return schedule


class LoanSettled(EventData):
    """The loan is fully repaid or closed."""

    loan_id: Id
    at: Instant
