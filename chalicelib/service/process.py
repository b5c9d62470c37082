"""Apply an accepted event: state, tasks, timeline and outbox, idempotently, and record its outcome.

No transaction: every write is an upsert of the same values or a put under a key derived from
the event, and the inbox item's outcome is written last. A crash anywhere is healed by running
the whole event again (stream retry, SQS retry or sweeper re-drive); nothing doubles.

Whose data an event may touch is decided in one place (`ownership.resolve`, deliveries in
`delivery.apply`); handlers get the result and write under that dealer's keys only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import tasks as task_rules
from chalicelib.events import EventSpec
from chalicelib.observability import count, logger
from chalicelib.service import delivery
from chalicelib.service.ownership import FOREIGN_VEHICLE, UNKNOWN_VEHICLE, Target, Wait, resolve
from chalicelib.store import inbox, records, tasks
from chalicelib.store.inbox import InboxRef

PII_KEYS = frozenset({"name", "phone", "birthday", "customer_name"})
OCCURRED_FIELDS = ("delivered_at", "read_at", "completed_at", "opened_at", "captured_at", "audited_at", "at")
SENDER_REASONS = {FOREIGN_VEHICLE: UNKNOWN_VEHICLE}
"""What a sender is told instead of the true reason (nothing may tell it that a VIN is known)."""


@dataclass(frozen=True)
class Context:
    partner_id: str
    partner_kind: str
    webhook_id: str
    event_type: str
    received_at: datetime
    waited: bool = False  # it waited for its delivery: no check at accept time saw it as the sender's


Handler = Callable[[Context, Any, Target, datetime], None]


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


def timeline_owners(spec: EventSpec, ctx: Context, data: Any, target: Target) -> list[str]:
    """Where the event shows: the target dealer's vehicle, and the sender's own record it is about."""
    owners = []
    if target.vehicle is not None and target.dealer_id is not None:
        owners.append(records.vehicle_pk(target.dealer_id, target.vehicle.vin))
    if spec.subject == "record":
        owners.append(records.record_pk(ctx.partner_id, target.dealer_id, data))
    return owners or [records.partner_pk(ctx.partner_id)]


# --- handlers: one per event type that changes state ---------------------------------------------


def _vehicle(target: Target) -> tuple[str, Any]:
    assert target.dealer_id is not None and target.vehicle is not None, "resolved to the sender's vehicle"
    return target.dealer_id, target.vehicle


def _close_for_event(ctx: Context, target: Target, by: str, now: datetime) -> None:
    """Close the task this event fulfils, for the vehicle's current delivery."""
    dealer_id, vehicle = _vehicle(target)
    kind = task_rules.CLOSED_BY_EVENT[ctx.event_type]
    tasks.close(dealer_id, task_rules.delivery_task_id(kind, vehicle.vin, vehicle.delivered_at), now, by)


def on_handover_submitted(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    dealer_id, vehicle = _vehicle(target)
    records.set_vehicle_fields(
        dealer_id,
        vehicle.vin,
        handover={
            "submitted_by": data.submitted_by,
            "submitted_at": clock.iso(ctx.received_at),
            "form": data.form.model_dump(mode="json"),
        },
    )
    _close_for_event(ctx, target, data.submitted_by, now)


def on_handover_confirmed(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    dealer_id, vehicle = _vehicle(target)
    records.set_vehicle_fields(
        dealer_id,
        vehicle.vin,
        handover_confirmation={
            "confirmed_by": data.confirmed_by,
            "confirmed_at": clock.iso(ctx.received_at),
            "corrections": list(data.corrections),
            "accurate": not data.corrections,
        },
    )
    _close_for_event(ctx, target, data.confirmed_by, now)


def on_delivery_feedback(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    dealer_id, vehicle = _vehicle(target)
    records.set_vehicle_fields(
        dealer_id,
        vehicle.vin,
        delivery_feedback={
            "submitted_by": data.submitted_by,
            "submitted_at": clock.iso(ctx.received_at),
            "questions": list(data.questions),
            "needs": list(data.needs),
        },
    )
    _close_for_event(ctx, target, data.submitted_by, now)


def _record_reading(ctx: Context, target: Target, km: int, read_at: datetime, source: str) -> None:
    dealer_id, vehicle = _vehicle(target)
    moved = records.advance_odometer(dealer_id, vehicle.vin, km, read_at)
    if not moved:
        current = records.get_vehicle(dealer_id, vehicle.vin)
        moved = current is not None and current.odometer_read_at == read_at and current.odometer_km == km
    records.put_odometer(dealer_id, vehicle.vin, km, read_at, source, applied=moved)
    if ctx.waited:
        # Accepted before the delivery, so never reserved: the next reading is judged against it too.
        records.raise_reading(records.Tenure(dealer_id, vehicle.delivered_at), vehicle.vin, km, read_at)


def on_odometer(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    _record_reading(ctx, target, data.odometer_km, data.read_at, data.source)


def on_service(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    dealer_id, vehicle = _vehicle(target)
    records.put_service(
        dealer_id,
        vehicle.vin,
        data.repair_order_id,
        data.kind,
        data.odometer_km,
        data.completed_at,
        list(data.items),
    )
    _record_reading(ctx, target, data.odometer_km, data.completed_at, "service")
    if data.kind in ("first_service", "maintenance"):
        current = records.get_vehicle(dealer_id, vehicle.vin)
        last = current.last_service if current is not None else None
        if current is not None and (not last or last["completed_at"] <= clock.iso(data.completed_at)):
            records.set_vehicle_fields(
                dealer_id,
                vehicle.vin,
                last_service={
                    "kind": data.kind,
                    "repair_order_id": data.repair_order_id,
                    "odometer_km": data.odometer_km,
                    "completed_at": clock.iso(data.completed_at),
                },
            )


def on_insurance(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    if target.vehicle is None or target.dealer_id is None:
        return  # the finance arm insured a car no dealer has delivered: kept on its own timeline
    records.set_vehicle_fields(
        target.dealer_id,
        target.vehicle.vin,
        insurance={
            "insurer": data.insurer,
            "policy_no": data.policy_no,
            "expires_on": data.expires_on.isoformat(),
            "updated_by": ctx.partner_id,
        },
    )


HANDLERS: dict[str, Handler] = {
    "handover.submitted": on_handover_submitted,
    "handover.confirmed": on_handover_confirmed,
    "delivery.feedback_submitted": on_delivery_feedback,
    "odometer.reported": on_odometer,
    "service.completed": on_service,
    "insurance.policy_updated": on_insurance,
}
PREFERENCES = ("sms_opt_out", "care_opt_out", "locale", "preferred_channel", "birthday")


def mention_customer(ctx: Context, data: Any, target: Target, now: datetime) -> None:
    """A record event naming a customer creates that dealer's customer on first mention."""
    customer_id = getattr(data, "customer_id", None)
    if not customer_id or target.dealer_id is None:
        return
    changes: dict[str, Any] = {}
    if ctx.event_type == "customer.preferences_updated":
        changes = {name: getattr(data, name) for name in PREFERENCES}
        if changes["birthday"] is not None:
            changes["birthday"] = changes["birthday"].isoformat()
    records.update_customer(target.dealer_id, customer_id, changes, now)


# --- outcomes -------------------------------------------------------------------------------------


def ignore(ref: InboxRef, event_type: str, ops_reason: str, now: datetime) -> bool:
    """Close an event as ignored. The sender sees `SENDER_REASONS` of the truth; ops see the truth."""
    sender_reason = SENDER_REASONS.get(ops_reason, ops_reason)
    if not inbox.mark_ignored(ref, sender_reason, ops_reason, now):
        return False
    logger.warning(
        "event ignored",
        extra={"webhook_id": ref.webhook_id, "event_type": event_type, "reason": ops_reason},
    )
    count("EventsIgnored", reason=ops_reason)
    return True


def release_waiting(dealer_id: str, vin: str) -> None:
    """A delivery arrived: apply the dealer's events that waited for it. A failure is retried alone."""
    from chalicelib.service import work

    for partner_id, webhook_id in records.waiting(dealer_id, vin):
        ref = InboxRef(partner_id, webhook_id)
        try:
            if process(ref).startswith("already_"):
                records.delete_wait(dealer_id, vin, webhook_id)
        except Exception as exc:
            logger.warning(
                "released event failed; queued for retry",
                extra={"webhook_id": webhook_id, "error": repr(exc)[:300]},
            )
            work.note_failure(work.inbox_ref(partner_id, webhook_id), exc)
            work.enqueue([work.inbox_ref(partner_id, webhook_id)], delay_seconds=work.RETRY_DELAY_SECONDS)


def _park(ref: InboxRef, spec: EventSpec, wait: Wait) -> None:
    records.put_wait(wait.dealer_id, wait.vin, ref.partner_id, ref.webhook_id)
    inbox.park(ref, wait.dealer_id, wait.vin, wait.ops_reason)
    log = logger.warning if wait.ops_reason == FOREIGN_VEHICLE else logger.info
    log(
        "event waits for its delivery",
        extra={"webhook_id": ref.webhook_id, "event_type": spec.type, "reason": wait.ops_reason},
    )


def _target(
    ref: InboxRef, item: Any, spec: EventSpec, partner_kind: str, data: Any, occurred: datetime
) -> tuple[Target | None, bool]:
    """Where the event applies (None while it waits for a delivery, parked), and whether it waited."""
    waited = item.reason == inbox.AWAITING_DELIVERY
    resolved = resolve(spec, partner_kind, ref.partner_id, data, occurred)
    if isinstance(resolved, Wait) and item.gsi1pk != inbox.WAITING_QUEUE:
        _park(ref, spec, resolved)  # not parked yet, or replayed from the DLQ
        waited = True
        # A delivery applied meanwhile may have released its waiting events before this one was
        # noted: look once more, now that it is.
        resolved = resolve(spec, partner_kind, ref.partner_id, data, occurred)
    if isinstance(resolved, Wait):
        return None, waited
    if waited:
        inbox.unpark(ref)
    return resolved, waited


def process(ref: InboxRef) -> str:
    """Apply one accepted event; safe to call any number of times. Returns what happened."""
    item = inbox.load(ref)
    if item is None:
        raise LookupError(f"inbox item {ref} not found")
    if item.status in inbox.FINAL:
        return f"already_{item.status}"
    from chalicelib.events import spec_for, validate_event
    from chalicelib.inbound import partners

    partner = partners.get(ref.partner_id)
    spec = spec_for(item.event_type)
    if partner is None or spec is None:
        raise LookupError(f"partner or event type of {ref} is gone")
    event = validate_event(spec, json.loads(item.body))
    data: Any = event.data
    now = clock.now()
    occurred = occurred_at(data, event.timestamp)
    if spec.subject == "delivery":
        ignored = delivery.apply(ref.partner_id, ref.webhook_id, data, now)
        if ignored is not None:
            ignore(ref, spec.type, ignored.reason, now)
            return "ignored"
        target: Target | None = Target(ref.partner_id, records.get_vehicle(ref.partner_id, data.vin))
        waited = False
    else:
        target, waited = _target(ref, item, spec, partner.kind, data, occurred)
    if target is None:
        return "waiting"
    ctx = Context(ref.partner_id, partner.kind, ref.webhook_id, spec.type, item.received_at, waited)
    handler = HANDLERS.get(spec.type)
    if handler is not None:
        handler(ctx, data, target, now)
    if spec.subject == "record":
        mention_customer(ctx, data, target, now)
    for owner_pk in timeline_owners(spec, ctx, data, target):
        records.put_timeline(
            owner_pk,
            occurred,
            ref.webhook_id,
            spec.type,
            ref.partner_id,
            target.dealer_id,
            redact(data.model_dump(mode="json")),
        )
    if spec.subject == "delivery":
        release_waiting(ref.partner_id, data.vin)
    if waited:
        records.delete_wait(ref.partner_id, data.vin, ref.webhook_id)
    inbox.mark_applied(ref, now)
    logger.info(
        "event applied",
        extra={"partner_id": ref.partner_id, "webhook_id": ref.webhook_id, "event_type": spec.type},
    )
    return "applied"
