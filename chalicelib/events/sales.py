"""Sales-floor events from dealers: test drives and price negotiations (preference tags, 002 §5)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from chalicelib.events.common import EventData, Id, Instant, Label

Minutes = Annotated[int, Field(strict=True, ge=1, le=24 * 60)]
Rounds = Annotated[int, Field(strict=True, ge=0, le=100)]


class TestDriveCompleted(EventData):
    """A customer drove a model with an advisor (before or after buying); its length hints at interests."""

    __test__ = False  # not a pytest class, whatever its name says

    customer_id: Id
    model: Label
    duration_min: Minutes
    advisor_id: Id
    at: Instant


class NegotiationRecorded(EventData):
    """How many rounds of bargaining a customer took over a model (price sensitivity)."""

    customer_id: Id
    model: Label
    rounds: Rounds
    advisor_id: Id
    at: Instant
