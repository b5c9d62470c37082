"""Apply an accepted event: state, tasks, timeline and outbox, idempotently, and record its outcome.

No transaction: every write is an upsert of the same values or a put under a key derived from
the event. The conditional updates come first (the ownership claim, a task closed, the odometer
moved); then everything else the event writes goes out in one batch with its outcome. A crash
anywhere is healed by running the whole event again (stream retry, SQS retry or sweeper
re-drive); nothing doubles.

Where an event may apply is decided in one place before any handler runs (`ownership.resolve`,
deliveries in `handlers.deliveries`); handlers (`service/handlers/`) write under that dealer's
keys only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain.masking import mask_phones_in
from chalicelib.domain.ownership import FOREIGN_VEHICLE, UNKNOWN_VEHICLE
from chalicelib.events import EventSpec
from chalicelib.observability import count, error_summary, logger
from chalicelib.service.handlers import HANDLERS, Context, Effects, deliveries
from chalicelib.service.ownership import Target, Wait, resolve
from chalicelib.store import IncompleteWrite, inbox, records, write_all
from chalicelib.store.inbox import InboxRef
from chalicelib.store.models import InboxItem

PII_KEYS = frozenset({"name", "phone", "birthday", "customer_name"})
FREE_TEXT_KEYS = frozenset({"text", "note"})  # kept, without the phone numbers people write in them
OCCURRED_FIELDS = ("delivered_at", "read_at", "completed_at", "opened_at", "captured_at", "audited_at", "at")
SENDER_REASONS = {FOREIGN_VEHICLE: UNKNOWN_VEHICLE}
"""What a sender is told instead of the true reason (nothing may tell it that a VIN is known)."""


def redact(value: Any) -> Any:
    """Event data without personal fields, for the timeline (names and phones stay on the profile)."""
    if isinstance(value, dict):
        return {
            k: mask_phones_in(v) if k in FREE_TEXT_KEYS and isinstance(v, str) else redact(v)
            for k, v in value.items()
            if k not in PII_KEYS
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def occurred_at(data: Any, fallback: datetime) -> datetime:
    for name in OCCURRED_FIELDS:
        found = getattr(data, name, None)
        if isinstance(found, datetime):
            return found
    return fallback


def timeline_entries(
    spec: EventSpec, ref: InboxRef, data: Any, target: Target, occurred: datetime, effects: Effects
) -> list[Any]:
    """The event's entries: on the target dealer's vehicle (with the reading or service it carried),
    on the sender's own record it is about and on that dealer's timeline; on the sender's own
    timeline when none of them."""
    summary = redact(data.model_dump(mode="json"))
    owners: list[tuple[str, bool]] = []
    if target.vehicle is not None and target.dealer_id is not None:
        owners.append((records.vehicle_pk(target.dealer_id, target.vehicle.vin), True))
    if spec.subject == "record":
        owners.append((records.record_pk(ref.partner_id, target.dealer_id, data), False))
        if target.dealer_id is not None:
            owners.append((records.dealer_pk(target.dealer_id), False))
    if not owners:
        owners.append((records.partner_pk(ref.partner_id), False))
    return [
        records.timeline_entry(
            owner_pk,
            occurred,
            ref.webhook_id,
            spec.type,
            ref.partner_id,
            target.dealer_id,
            summary,
            reading=effects.reading if on_vehicle else None,
            service=effects.service if on_vehicle else None,
        )
        for owner_pk, on_vehicle in owners
    ]


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
                extra={"webhook_id": webhook_id, "error": error_summary(exc)},
            )
            work.retry_later(work.inbox_ref(partner_id, webhook_id), exc)


def _park(ref: InboxRef, spec: EventSpec, wait: Wait) -> None:
    records.put_wait(wait.dealer_id, wait.vin, ref.partner_id, ref.webhook_id)
    inbox.park(ref, wait.dealer_id, wait.vin, wait.ops_reason)
    log = logger.warning if wait.ops_reason == FOREIGN_VEHICLE else logger.info
    log(
        "event waits for its delivery",
        extra={"webhook_id": ref.webhook_id, "event_type": spec.type, "reason": wait.ops_reason},
    )


def _target(
    ref: InboxRef, item: InboxItem, spec: EventSpec, partner_kind: str, data: Any, occurred: datetime
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
    target: Target | None
    if spec.subject == "delivery":
        applied = deliveries.apply(ref.partner_id, ref.webhook_id, data, now)
        if isinstance(applied, deliveries.Ignored):
            ignore(ref, spec.type, applied.reason, now)
            return "ignored"
        target, waited = Target(ref.partner_id, applied), False
    else:
        target, waited = _target(ref, item, spec, partner.kind, data, occurred)
    if target is None:
        return "waiting"
    ctx = Context(ref.partner_id, partner.kind, ref.webhook_id, spec.type, item.received_at, now, waited)
    effects = Effects()
    handler = HANDLERS.get(spec.type)
    if handler is not None:
        handler(ctx, data, target, effects)
    if effects.ignored is not None:
        ignore(ref, spec.type, effects.ignored, now)
        return "ignored"
    if spec.subject == "delivery":
        release_waiting(ref.partner_id, data.vin)
    entries = timeline_entries(spec, ref, data, target, occurred, effects)
    deletes = [records.wait_key(ref.partner_id, data.vin, ref.webhook_id)] if waited else []
    closed = inbox.applied_item(item, now)  # last: it goes out in the last request
    try:
        write_all([*entries, *effects.puts, closed], deletes)
    except IncompleteWrite as exc:
        if (closed.pk, closed.sk) not in exc.unprocessed:
            inbox.reopen(ref)  # the outcome landed without all its effects: take it back, retry
        raise
    logger.info(
        "event applied",
        extra={"partner_id": ref.partner_id, "webhook_id": ref.webhook_id, "event_type": spec.type},
    )
    return "applied"
