"""Customer-care events from dealers: complaints, service leads for sales, customer contact preferences."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from chalicelib.events.common import (
    Channel,
    Day,
    EventData,
    Flag,
    Id,
    Instant,
    Label,
    Locale,
    Note,
    Score,
    Text,
    Vin,
)


class ComplaintOpened(EventData):
    """A customer complained; the text is triaged at once for safety risks (red alert)."""

    complaint_id: Id
    vin: Vin | None = None
    customer_id: Id
    channel: Label
    text: Text
    opened_at: Instant


class ComplaintStep(EventData):
    """A step on an open complaint: who took it and when."""

    complaint_id: Id
    by: Id
    at: Instant
    note: Note | None = None


class ComplaintAcknowledged(ComplaintStep):
    """Someone took ownership of the complaint (answered-within-24-h KPI)."""


class ComplaintSolutionProposed(ComplaintStep):
    """Sales and after-sales proposed their joint solution (due within 24 h of opening)."""


class ComplaintResolved(ComplaintStep):
    """The complaint is closed, possibly with the customer's satisfaction (0-100)."""

    satisfaction: Score | None = None


class LeadCaptured(EventData):
    """After-sales spotted a sales opportunity for the advisor (pushed at once, followed up within 24 h)."""

    lead_id: Id
    vin: Vin | None = None
    customer_id: Id
    kind: Literal["upgrade", "trade_in", "referral"]
    grade: Literal["A", "B"]
    note: Note
    captured_by: Id
    captured_at: Instant


class LeadFollowedUp(EventData):
    """The advisor followed a lead up; `converted` counts towards the lead-conversion KPI."""

    lead_id: Id
    advisor_id: Id
    outcome: Literal["contacted", "converted", "lost"]
    at: Instant


class CustomerPreferencesUpdated(EventData):
    """The customer changed how, or whether, CLM may contact them; absent fields stay as they were."""

    customer_id: Id
    sms_opt_out: Flag | None = None
    care_opt_out: Flag | None = None
    """Greetings only (birthdays): reminders still come unless `sms_opt_out`."""
    locale: Locale | None = None
    preferred_channel: Channel | None = None
    birthday: Day | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> CustomerPreferencesUpdated:
        if all(getattr(self, name) is None for name in PREFERENCE_FIELDS):
            raise PydanticCustomError(
                "nothing_to_update", f"give at least one of {', '.join(PREFERENCE_FIELDS)}"
            )
        return self


PREFERENCE_FIELDS = ("sms_opt_out", "care_opt_out", "locale", "preferred_channel", "birthday")
