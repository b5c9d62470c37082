"""Dealer-network events: on-site audits by the finance arm, and issues dealers raise with HQ."""

from __future__ import annotations

from typing import Literal

from chalicelib.events.common import Count, EventData, Flag, Id, Instant, Label, Ratio, Text


class DealerAuditCompleted(EventData):
    """An on-site check of stock, documents and GPS devices; any shortfall is a risk signal."""

    audited_at: Instant
    inventory_expected: Count
    inventory_found: Count
    documents_complete: Flag
    gps_online_ratio: Ratio


class DealerFeedbackOpened(EventData):
    """A dealer raised an issue with HQ (first reply due within 24 h, solution within 72 h)."""

    feedback_id: Id
    category: Label
    text: Text
    opened_at: Instant


class DealerFeedbackReplied(EventData):
    """HQ answered a dealer's feedback, stopping its first-reply or solution clock."""

    feedback_id: Id
    by: Id
    at: Instant
    kind: Literal["first_reply", "solution"]
    dealer_id: Id | None = None
    """The dealer whose feedback it answers; needed only when two dealers used the same id."""
