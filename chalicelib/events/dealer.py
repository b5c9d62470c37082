"""Dealer-network events: audits by the finance arm's field staff, and feedback between dealers and HQ."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chalicelib.events.common import EventData, Id, Instant, Text


class DealerAuditCompleted(EventData):
    """An on-site audit of the dealer's stock, documents and GPS devices (risk signal when short)."""

    audited_at: Instant
    inventory_expected: int = Field(ge=0)
    inventory_found: int = Field(ge=0)
    documents_complete: bool
    gps_online_ratio: float = Field(ge=0, le=1)


class DealerFeedbackOpened(EventData):
    """A dealer raised an issue with HQ (first reply due in 24 h, solution in 72 h)."""

    feedback_id: Id
    category: Id
    text: Text
    opened_at: Instant


class DealerFeedbackReplied(EventData):
    """HQ answered a dealer's feedback: a first reply or the solution."""

    feedback_id: Id
    by: Id
    at: Instant
    kind: Literal["first_reply", "solution"]
