"""The event catalog (DESIGN.md §4): for every event type, its pydantic model and who may send it.

Imported on the first request, not at cold start (pydantic models take time to build). No AWS here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias

from pydantic import ValidationError

from chalicelib.events.common import Envelope, EventData

DEALER = frozenset({"dealer"})
FINANCE = frozenset({"finance"})
HQ = frozenset({"hq"})

DataModel: TypeAlias = type[EventData]

Subject = Literal["delivery", "vehicle", "record"]
"""What an event is about, which decides whose data it may touch (DESIGN.md §3 "Whose data").

- ``delivery``: `vehicle.delivered`; it makes its sender the vehicle's dealer, or is a transfer
  or a conflict (§4).
- ``vehicle``: keyed by `data.vin`; applies only to the sender's own vehicle, and waits
  (`awaiting_delivery`) while the VIN is not the sender's.
- ``record``: the sender's own customer, complaint, lead, loan or dealer record; never waits.
  A `vin` it carries is linked only when it is the sender's own vehicle.
"""


@dataclass(frozen=True)
class EventSpec:
    """One event type: the model of its `data`, who may send it, and what it is about.

    The model is named (`module.Class` under `chalicelib.events`) and imported when first asked
    for: a cold webhook builds the models of the one area it needs, not all of them.
    """

    type: str
    model_name: str
    kinds: frozenset[str]
    subject: Subject

    @property
    def model(self) -> DataModel:
        module, _, name = self.model_name.partition(".")
        found: DataModel = getattr(importlib.import_module(f"chalicelib.events.{module}"), name)
        return found


@dataclass(frozen=True)
class FieldError:
    """One invalid field, by its dotted path from the envelope (`data.customer.phone`)."""

    field: str
    message: str


class EventValidationError(Exception):
    """The event's fields are invalid; `errors` lists every one of them, so a sender fixes all at once."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s): {', '.join(e.field for e in errors)}")
        self.errors = errors


@dataclass(frozen=True)
class ParsedEvent:
    """A validated event: its type, when the sender emitted it, and its typed data."""

    type: str
    timestamp: datetime
    data: EventData


_SPECS = (
    EventSpec("vehicle.delivered", "delivery.VehicleDelivered", DEALER, "delivery"),
    EventSpec("handover.submitted", "handover.HandoverSubmitted", DEALER, "vehicle"),
    EventSpec("handover.confirmed", "handover.HandoverConfirmed", DEALER, "vehicle"),
    EventSpec("delivery.feedback_submitted", "handover.DeliveryFeedbackSubmitted", DEALER, "vehicle"),
    EventSpec("odometer.reported", "vehicle.OdometerReported", DEALER, "vehicle"),
    EventSpec("service.completed", "vehicle.ServiceCompleted", DEALER, "vehicle"),
    EventSpec("survey.completed", "vehicle.SurveyCompleted", DEALER, "vehicle"),
    EventSpec("insurance.policy_updated", "vehicle.InsurancePolicyUpdated", DEALER | FINANCE, "vehicle"),
    EventSpec("complaint.opened", "care.ComplaintOpened", DEALER, "record"),
    EventSpec("complaint.acknowledged", "care.ComplaintAcknowledged", DEALER, "record"),
    EventSpec("complaint.solution_proposed", "care.ComplaintSolutionProposed", DEALER, "record"),
    EventSpec("complaint.resolved", "care.ComplaintResolved", DEALER, "record"),
    EventSpec("lead.captured", "care.LeadCaptured", DEALER, "record"),
    EventSpec("lead.followed_up", "care.LeadFollowedUp", DEALER, "record"),
    EventSpec("customer.preferences_updated", "care.CustomerPreferencesUpdated", DEALER, "record"),
    EventSpec("sales.test_drive_completed", "sales.TestDriveCompleted", DEALER, "record"),
    EventSpec("sales.negotiation_recorded", "sales.NegotiationRecorded", DEALER, "record"),
    EventSpec("dealer.audit_completed", "dealer.DealerAuditCompleted", DEALER, "record"),
    EventSpec("dealer.feedback_opened", "dealer.DealerFeedbackOpened", DEALER, "record"),
    EventSpec("loan.booked", "finance.LoanBooked", FINANCE, "record"),
    EventSpec("loan.settled", "finance.LoanSettled", FINANCE, "record"),
    EventSpec("dealer.feedback_replied", "dealer.DealerFeedbackReplied", HQ, "record"),
)
EVENT_SPECS: dict[str, EventSpec] = {spec.type: spec for spec in _SPECS}
ALL_EVENT_TYPES: tuple[str, ...] = tuple(EVENT_SPECS)


def spec_for(event_type: object) -> EventSpec | None:
    """The spec of a known event type; None for anything else, whatever its Python type."""
    return EVENT_SPECS.get(event_type) if isinstance(event_type, str) else None


def parse_envelope_type(payload: object) -> str | None:
    """The envelope's `type` when the payload is an object with a string `type`; None otherwise."""
    if isinstance(payload, dict):
        found = payload.get("type")
        if isinstance(found, str):
            return found
    return None


def _field_errors(exc: ValidationError, prefix: tuple[str, ...]) -> list[FieldError]:
    """Pydantic's errors as dotted paths and messages; the input is never echoed (it may be personal)."""
    out: list[FieldError] = []
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        path = ".".join(str(part) for part in (*prefix, *error["loc"]))
        out.append(FieldError(path, error["msg"].removeprefix("Value error, ")))
    return out


def _one_per_field(errors: list[FieldError]) -> list[FieldError]:
    """Merge the messages of one field (a union can fail in several ways) so each field appears once."""
    merged: dict[str, list[str]] = {}
    for error in errors:
        messages = merged.setdefault(error.field, [])
        if error.message not in messages:
            messages.append(error.message)
    return [FieldError(field, "; ".join(messages)) for field, messages in merged.items()]


def validate_event(spec: EventSpec, payload: dict[str, Any], *, now: datetime | None = None) -> ParsedEvent:
    """Validate the envelope and its data against `spec`, reporting every invalid field at once.

    With `now` (at accept time), event times more than 5 minutes ahead of it are invalid too.
    """
    context = {"now": now} if now is not None else None
    if not isinstance(payload, dict):
        raise EventValidationError([FieldError("type", "an event is an object: type, timestamp, data")])
    errors: list[FieldError] = []
    if payload.get("type") != spec.type:
        errors.append(FieldError("type", f"expected {spec.type}"))
    timestamp: datetime | None = None
    try:
        timestamp = Envelope.model_validate(payload, context=context).timestamp
    except ValidationError as exc:
        errors += [e for e in _field_errors(exc, ()) if e.field != "type"]
    data: EventData | None = None
    raw_data = payload.get("data")
    if isinstance(raw_data, dict):
        try:
            data = spec.model.model_validate(raw_data, context=context)
        except ValidationError as exc:
            errors += _field_errors(exc, ("data",))
    if errors or timestamp is None or data is None:
        raise EventValidationError(_one_per_field(errors))
    return ParsedEvent(spec.type, timestamp, data)
