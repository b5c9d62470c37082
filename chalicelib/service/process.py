"""Apply an accepted event: state, tasks, timeline and outbox, idempotently.

No transaction: every write is an upsert of the same values or a put under a key derived from
the event, and the inbox item is marked processed last. A crash anywhere is healed by running
the whole event again (stream retry, SQS retry or sweeper re-drive); nothing doubles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import tasks as task_rules
from chalicelib.observability import logger
from chalicelib.outbound import staff
from chalicelib.store import inbox, outbox, records, tasks

PII_KEYS = frozenset({"name", "phone", "birthday", "customer_name"})
OCCURRED_FIELDS = ("delivered_at", "read_at", "completed_at", "opened_at", "captured_at", "audited_at", "at")
SUBJECT_FIELDS = (
    ("vin", "VEH#"),
    ("customer_id", "CUST#"),
    ("complaint_id", "COMPLAINT#"),
    ("lead_id", "LEAD#"),
    ("loan_id", "LOAN#"),
    ("feedback_id", "FEEDBACK#"),
)


class ForeignVehicle(Exception):
    """A dealer sent an event about another dealer's vehicle: kept, but never shown to that dealer."""


class NotReady(Exception):
    """The event refers to something not yet known (out-of-order delivery): retry later."""


@dataclass(frozen=True)
class Context:
    partner_id: str
    partner_kind: str
    webhook_id: str
    event_type: str
    received_at: datetime
    dealer_id: str | None


def redact(value: Any) -> Any:
    """Event data without personal fields, for the timeline (names and phones stay on the profile)."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k not in PII_KEYS}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def occurred_at(data: Any, fallback: datetime) -> datetime:
    for name in OCCURRED_FIELDS:
        found = getattr(data, name, None)
        if isinstance(found, datetime):
            return found
    return fallback


def timeline_owner(data: Any, partner_id: str, dealer_id: str | None) -> str:
    for name, prefix in SUBJECT_FIELDS:
        found = getattr(data, name, None)
        if isinstance(found, str) and found:
            if prefix == "CUST#":
                return records.customer_pk(dealer_id or partner_id, found)
            return prefix + found
    return f"PARTNER#{partner_id}"


def _open_tasks(dealer_id: str, new_tasks: list[task_rules.NewTask], now: datetime) -> None:
    for new in new_tasks:
        tasks.create(dealer_id, new, now)
        # Recorded whether or not this run created the task: a crash between the two writes heals.
        outbox.put(staff.task_created(tasks.as_task(dealer_id, new, now)), now)


def _own_vehicle(ctx: Context, vin: str) -> records.VehicleItem:
    vehicle = records.get_vehicle(vin)
    if vehicle is None:
        raise NotReady(f"vehicle {vin} is not delivered yet")
    if vehicle.dealer_id != ctx.dealer_id:
        raise ForeignVehicle(f"vehicle {vin} belongs to another dealer")
    return vehicle


def on_delivered(ctx: Context, data: Any, now: datetime) -> None:
    """Customer, then the delivery's tasks, then the vehicle last.

    An event that closes a task first checks the vehicle; written last, the vehicle proves its
    tasks exist, even if this run crashed half-way and is being retried.
    """
    dealer_id = ctx.dealer_id or ctx.partner_id
    existing = records.get_vehicle(data.vin)
    if existing is not None and existing.delivered_at > data.delivered_at:
        logger.info(
            "stale delivery ignored", extra={"partner_id": ctx.partner_id, "webhook_id": ctx.webhook_id}
        )
        return
    customer = data.customer
    records.upsert_customer(
        customer.id,
        dealer_id,
        customer.name,
        customer.phone,
        customer.locale,
        customer.preferred_channel,
        customer.birthday.isoformat() if customer.birthday else None,
        now,
    )
    _open_tasks(
        dealer_id,
        task_rules.delivery_tasks(
            data.vin, data.delivered_at, data.sales_advisor.id, data.service_specialist.id
        ),
        now,
    )
    records.upsert_delivery(
        data.vin,
        dealer_id,
        {
            "model": data.model,
            "powertrain": data.powertrain,
            "packages": list(data.packages),
            "delivered_at": data.delivered_at,
            "customer_id": customer.id,
            "sales_advisor": data.sales_advisor.model_dump(mode="json"),
            "service_specialist": data.service_specialist.model_dump(mode="json"),
            "plan": {
                "first_service": data.first_service.model_dump(mode="json"),
                "maintenance_plan": data.maintenance_plan.model_dump(mode="json"),
            },
            "loan_id": data.loan_id,
        },
    )


def _close_for_event(ctx: Context, vehicle: records.VehicleItem, by: str, now: datetime) -> None:
    """Close the task this event fulfils, for the vehicle's current delivery."""
    kind = task_rules.CLOSED_BY_EVENT[ctx.event_type]
    task_id = task_rules.delivery_task_id(kind, vehicle.vin, vehicle.delivered_at)
    tasks.close(ctx.dealer_id or ctx.partner_id, task_id, now, by)


def on_handover_submitted(ctx: Context, data: Any, now: datetime) -> None:
    vehicle = _own_vehicle(ctx, data.vin)
    records.set_vehicle_fields(
        data.vin,
        handover={
            "submitted_by": data.submitted_by,
            "submitted_at": clock.iso(ctx.received_at),
            "form": data.form.model_dump(mode="json"),
        },
    )
    _close_for_event(ctx, vehicle, data.submitted_by, now)


def on_handover_confirmed(ctx: Context, data: Any, now: datetime) -> None:
    vehicle = _own_vehicle(ctx, data.vin)
    records.set_vehicle_fields(
        data.vin,
        handover_confirmation={
            "confirmed_by": data.confirmed_by,
            "confirmed_at": clock.iso(ctx.received_at),
            "corrections": list(data.corrections),
            "accurate": not data.corrections,
        },
    )
    _close_for_event(ctx, vehicle, data.confirmed_by, now)


def on_delivery_feedback(ctx: Context, data: Any, now: datetime) -> None:
    vehicle = _own_vehicle(ctx, data.vin)
    records.set_vehicle_fields(
        data.vin,
        delivery_feedback={
            "submitted_by": data.submitted_by,
            "submitted_at": clock.iso(ctx.received_at),
            "questions": list(data.questions),
            "needs": list(data.needs),
        },
    )
    _close_for_event(ctx, vehicle, data.submitted_by, now)


def _record_reading(vin: str, km: int, read_at: datetime, source: str) -> None:
    moved = records.advance_odometer(vin, km, read_at)
    if not moved:
        vehicle = records.get_vehicle(vin)
        moved = vehicle is not None and vehicle.odometer_read_at == read_at and vehicle.odometer_km == km
    records.put_odometer(vin, km, read_at, source, applied=moved)


def on_odometer(ctx: Context, data: Any, now: datetime) -> None:
    _record_reading(data.vin, data.odometer_km, data.read_at, data.source)


def on_service(ctx: Context, data: Any, now: datetime) -> None:
    dealer_id = ctx.dealer_id or ctx.partner_id
    records.put_service(
        data.vin,
        dealer_id,
        data.repair_order_id,
        data.kind,
        data.odometer_km,
        data.completed_at,
        list(data.items),
    )
    _record_reading(data.vin, data.odometer_km, data.completed_at, "service")
    if data.kind in ("first_service", "maintenance"):
        vehicle = records.get_vehicle(data.vin)
        last = vehicle.last_service if vehicle is not None else None
        if vehicle is not None and (not last or last["completed_at"] <= clock.iso(data.completed_at)):
            records.set_vehicle_fields(
                data.vin,
                last_service={
                    "kind": data.kind,
                    "repair_order_id": data.repair_order_id,
                    "odometer_km": data.odometer_km,
                    "completed_at": clock.iso(data.completed_at),
                },
            )


HANDLERS: dict[str, Callable[[Context, Any, datetime], None]] = {
    "vehicle.delivered": on_delivered,
    "handover.submitted": on_handover_submitted,
    "handover.confirmed": on_handover_confirmed,
    "delivery.feedback_submitted": on_delivery_feedback,
    "odometer.reported": on_odometer,
    "service.completed": on_service,
}


def dealer_of(partner_kind: str, partner_id: str, data: Any) -> str | None:
    if partner_kind == "dealer":
        return partner_id
    found = getattr(data, "dealer_id", None)
    return found if isinstance(found, str) else None


def process(ref: inbox.InboxRef) -> str:
    """Apply one accepted event; safe to call any number of times."""
    item = inbox.load(ref)
    if item is None:
        raise LookupError(f"inbox item {ref} not found")
    if item.status == "processed":
        return "already_processed"
    from chalicelib.events import spec_for, validate_event
    from chalicelib.inbound import partners

    partner = partners.get(ref.partner_id)
    spec = spec_for(item.event_type)
    if partner is None or spec is None:
        raise LookupError(f"partner or event type of {ref} is gone")
    event = validate_event(spec, json.loads(item.body))
    data = event.data
    ctx = Context(
        ref.partner_id,
        partner.kind,
        ref.webhook_id,
        spec.type,
        item.received_at,
        dealer_of(partner.kind, ref.partner_id, data),
    )
    now = clock.now()
    handler = HANDLERS.get(spec.type)
    owner = timeline_owner(data, ref.partner_id, ctx.dealer_id)
    if handler is not None:
        try:
            handler(ctx, data, now)
        except ForeignVehicle as exc:
            logger.warning(
                "event about another dealer's vehicle; kept on the sender's timeline",
                extra={"reason": str(exc), "partner_id": ref.partner_id},
            )
            owner = f"PARTNER#{ref.partner_id}"
    records.put_timeline(
        owner,
        occurred_at(data, event.timestamp),
        ref.webhook_id,
        spec.type,
        ref.partner_id,
        ctx.dealer_id,
        redact(data.model_dump(mode="json")),
    )
    inbox.mark_processed(item, now)
    logger.info(
        "event applied",
        extra={"partner_id": ref.partner_id, "webhook_id": ref.webhook_id, "event_type": spec.type},
    )
    return "processed"
