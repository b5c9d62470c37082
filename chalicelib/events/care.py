"""Customer-care events from dealers: complaints, service leads, customer preferences."""

from __future__ import annotations

from typing import Literal

from chalicelib.events.common import EventData, Id, Instant, Score, Text, Vin


class ComplaintOpened(EventData):
    """A complaint arrived; its text is triaged for safety risks (red alert)."""

    complaint_id: Id
    vin: Vin | None = None
    customer_id: Id
    channel: Id
    text: Text
    opened_at: Instant


class ComplaintStep(EventData):
    """A step on a complaint: who did it and when."""

    complaint_id: Id
    by: Id
    at: Instant
    note: Text | None = None


class ComplaintAcknowledged(ComplaintStep):
    """Someone took ownership of the complaint."""


class ComplaintSolutionProposed(ComplaintStep):
    """The joint sales/after-sales solution (due within 24 h of opening)."""


class ComplaintResolved(ComplaintStep):
    """The complaint is closed, possibly with the customer's satisfaction score."""

    satisfaction: Score | None = None


class LeadCaptured(EventData):
    """After-sales spotted a sales opportunity (upgrade, trade-in, referral) for the advisor."""

    lead_id: Id
    vin: Vin | None = None
    customer_id: Id
    kind: Literal["upgrade", "trade_in", "referral"]
    grade: Literal["A", "B"]
    note: Text = ""
    captured_by: Id
    captured_at: Instant


class LeadFollowedUp(EventData):
    """The advisor followed a lead up (due within 24 h of the push)."""

    lead_id: Id
    advisor_id: Id
    outcome: Literal["contacted", "converted", "lost"]
    at: Instant


class CustomerPreferencesUpdated(EventData):
    """The customer changed how (or whether) CLM may contact them."""

    customer_id: Id
    sms_opt_out: bool | None = None
    locale: Literal["zh-CN", "en"] | None = None
    preferred_channel: Literal["sms", "phone", "wechat"] | None = None
