"""The event catalog (DESIGN.md §4): one pydantic model per type, and who may send it.

Imported on the first request only (pydantic models cost cold-start time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chalicelib.events import care, dealer, finance, vehicle
from chalicelib.events.common import Envelope, EventData

DEALER, FINANCE, HQ = frozenset({"dealer"}), frozenset({"finance"}), frozenset({"hq"})


@dataclass(frozen=True)
class EventSpec:
    name: str
    model: type[EventData]
    kinds: frozenset[str]

    @property
    def type(self) -> str:
        """The event type as partners send it (`vehicle.delivered`)."""
        return self.name


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class EventValidationError(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


@dataclass(frozen=True)
class ParsedEvent:
    type: str
    timestamp: datetime
    data: Any


EVENT_SPECS: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec("vehicle.delivered", vehicle.VehicleDelivered, DEALER),
        EventSpec("handover.submitted", vehicle.HandoverSubmitted, DEALER),
        EventSpec("handover.confirmed", vehicle.HandoverConfirmed, DEALER),
        EventSpec("delivery.feedback_submitted", vehicle.DeliveryFeedbackSubmitted, DEALER),
        EventSpec("odometer.reported", vehicle.OdometerReported, DEALER),
        EventSpec("service.completed", vehicle.ServiceCompleted, DEALER),
        EventSpec("survey.completed", vehicle.SurveyCompleted, DEALER),
        EventSpec("complaint.opened", care.ComplaintOpened, DEALER),
        EventSpec("complaint.acknowledged", care.ComplaintAcknowledged, DEALER),
        EventSpec("complaint.solution_proposed", care.ComplaintSolutionProposed, DEALER),
        EventSpec("complaint.resolved", care.ComplaintResolved, DEALER),
        EventSpec("lead.captured", care.LeadCaptured, DEALER),
        EventSpec("lead.followed_up", care.LeadFollowedUp, DEALER),
        EventSpec("customer.preferences_updated", care.CustomerPreferencesUpdated, DEALER),
        EventSpec("dealer.audit_completed", dealer.DealerAuditCompleted, DEALER),
        EventSpec("dealer.feedback_opened", dealer.DealerFeedbackOpened, DEALER),
        EventSpec("dealer.feedback_replied", dealer.DealerFeedbackReplied, HQ),
        EventSpec("loan.booked", finance.LoanBooked, FINANCE),
        EventSpec("loan.settled", finance.LoanSettled, FINANCE),
    )
}
ALL_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SPECS)


def spec_for(event_type: object) -> EventSpec | None:
    return EVENT_SPECS.get(event_type) if isinstance(event_type, str) else None


def parse_envelope_type(payload: object) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get("type"), str):
        found: str = payload["type"]
        return found
    return None


def _field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    """Pydantic errors as dotted paths and messages, never echoing the input (it may be personal)."""
    out = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        message = error["msg"].removeprefix("Value error, ")
        out.append(FieldError(path, message))
    return out


def validate_event(spec: EventSpec, payload: dict[str, Any]) -> ParsedEvent:
    """Validate the envelope and the data together, reporting every error at once."""
    errors: list[FieldError] = []
    timestamp: datetime | None = None
    try:
        envelope = Envelope.model_validate(payload)
        timestamp = envelope.timestamp
    except ValidationError as exc:
        errors += _field_errors(exc, "")
    raw_data = payload.get("data")
    data: Any = None
    if not isinstance(raw_data, dict):
        if not any(e.field == "data" for e in errors):
            errors.append(FieldError("data", "Input should be a valid dictionary"))
    else:
        try:
            data = spec.model.model_validate(raw_data)
        except ValidationError as exc:
            errors += _field_errors(exc, "data")
    if errors or timestamp is None:
        raise EventValidationError(errors)
    return ParsedEvent(spec.type, timestamp, data)
