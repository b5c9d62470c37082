"""The staff read API's use cases: who may see what, and the shapes they see."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import clock, errors, store
from chalicelib.domain import loans as loan_rules
from chalicelib.domain.cases import complaint_status
from chalicelib.domain.masking import mask_name, mask_phone, mask_phones_in
from chalicelib.domain.tasks import STATUSES, may_complete
from chalicelib.inbound import partners
from chalicelib.store import cases, inbox, loans, records, tasks

MAX_PAGE = 100
DEFAULT_PAGE = 50


def authorize(authorization: str | None, dealer_id: str | None) -> partners.Partner:
    """The caller behind a Bearer key, allowed to read `dealer_id` (404 when it is not theirs)."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise errors.Unauthenticated("missing_api_key")
    partner = partners.for_api_key(key.strip())
    if partner is None:
        raise errors.Unauthenticated("bad_api_key")
    if (
        dealer_id is not None
        and partner.kind != "hq"
        and not (partner.kind == "dealer" and partner.partner_id == dealer_id)
    ):
        raise errors.NotFound("dealer")
    return partner


def _limit(query: dict[str, str]) -> int:
    try:
        limit = int(query.get("limit") or DEFAULT_PAGE)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise errors.BadRequest(
            "Bad limit.", errors=[{"field": "limit", "message": f"an integer 1-{MAX_PAGE}"}]
        )
    return limit


def _bad_cursor(exc: Exception) -> errors.BadRequest:
    return errors.BadRequest(str(exc), errors=[{"field": "next", "message": str(exc)}])


def timeline_entry_view(entry: Any) -> dict[str, Any]:
    return {
        "type": entry.event_type,
        "at": clock.iso(entry.occurred_at),
        "partner_id": entry.partner_id,
        "webhook_id": entry.webhook_id,
        "data": entry.summary,
    }


def dealer_timeline(dealer_id: str, query: dict[str, str]) -> dict[str, Any]:
    """The dealer's records as they happened, newest first: complaints and their red alerts, leads,
    feedback, audits, customers' preferences, loans (vehicle events are on each vehicle)."""
    try:
        found, cursor = records.dealer_timeline_page(dealer_id, _limit(query), query.get("next") or None)
    except store.BadCursor as exc:
        raise _bad_cursor(exc) from exc
    return {"items": [timeline_entry_view(e) for e in found if e.dealer_id == dealer_id], "next": cursor}


def list_tasks(dealer_id: str, query: dict[str, str]) -> dict[str, Any]:
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise errors.BadRequest(
            "Unknown status.", errors=[{"field": "status", "message": f"one of {', '.join(STATUSES)}"}]
        )
    limit = _limit(query)
    try:
        found, cursor = tasks.page(
            dealer_id, status, query.get("assignee") or None, limit, query.get("next") or None
        )
    except store.BadCursor as exc:
        raise _bad_cursor(exc) from exc
    from chalicelib.service import overdue, profiles

    holds = overdue.task_holds(dealer_id, found)
    tagged = profiles.task_tags(dealer_id, found)
    items = [
        {
            **t.to_json(),
            **({"hold": holds[t.task_id]} if t.task_id in holds else {}),
            **({"customer_tags": tagged[t.task_id]} if t.task_id in tagged else {}),
        }
        for t in found
    ]
    return {"items": items, "next": cursor}


def complete_task(dealer_id: str, task_id: str, partner: partners.Partner) -> dict[str, Any]:
    """Close a task by hand. Completing a done task again answers its current state.

    A dealer's key completes its own staff's tasks; the HQ key completes HQ's (DESIGN.md §8).
    """
    existing = tasks.get(dealer_id, task_id)
    if existing is None:
        raise errors.NotFound("task")
    if not may_complete(partner.kind, existing.assignee_role):
        raise errors.Forbidden(
            f"A {partner.kind} key may not complete a task of the {existing.assignee_role} role.",
            reason="role_not_allowed",
        )
    closed = tasks.close(dealer_id, task_id, clock.now(), partner.partner_id)
    return (closed or tasks.get(dealer_id, task_id) or existing).to_json()


def event_outcome(partner: partners.Partner, partner_id: str, webhook_id: str) -> dict[str, Any]:
    """What became of an accepted event: only for the partner that sent it (anyone else: 404)."""
    if partner.partner_id != partner_id:
        raise errors.NotFound("event")
    item = inbox.load(inbox.InboxRef(partner_id, webhook_id))
    if item is None:
        raise errors.NotFound("event")
    return inbox.outcome(item)


def _masked_handover(handover: dict[str, Any] | None) -> dict[str, Any] | None:
    """The handover form as filed, with the customer's name masked."""
    if not handover:
        return handover
    masked = json.loads(json.dumps(handover))
    basic = masked.get("form", {}).get("basic", {})
    if "customer_name" in basic:
        basic["customer_name"] = mask_name(basic["customer_name"])
    return masked


def _next_service(cycle: dict[str, Any] | None) -> dict[str, Any] | None:
    """When the next service is due (date and km), and when its reminder goes out."""
    if not cycle:
        return None
    return {k: cycle[k] for k in ("kind", "due_at", "due_km", "remind_at", "remind_km")}


def _reminder(reminder: Any, cycle: dict[str, Any] | None) -> dict[str, Any]:
    """A reminder as staff see it: what, when, and what became of it (and why)."""
    status, reason = reminder.status, reminder.reason
    current = (cycle or {}).get("reminder_id") == reminder.reminder_id
    if status == "scheduled" and reminder.kind in ("first_service", "maintenance") and not current:
        status, reason = "closed", "serviced"  # its cycle ended first; the sweep closes it when due
    return {
        "reminder_id": reminder.reminder_id,
        "kind": reminder.kind,
        "status": status,
        "reason": reason,
        "remind_at": clock.iso(reminder.trigger_at),
        "fired_at": clock.iso(reminder.fired_at) if reminder.fired_at else None,
        "fired_by": reminder.fired_by,
        "send_at": clock.iso(reminder.send_at) if reminder.send_at else None,
        "details": {k: v for k, v in reminder.details.items() if k != "birthday"},
    }


def vehicle_timeline(dealer_id: str, vin: str) -> dict[str, Any]:
    """The dealer's own view of a vehicle: what it delivered and recorded, and nothing of another dealer.

    After a transfer the earlier dealer still sees its history up to `transferred_at`.
    """
    found = records.vehicle_records(dealer_id, vin)
    vehicle = found.vehicle
    if vehicle is None:
        raise errors.NotFound("vehicle")
    customer = records.get_customer(dealer_id, vehicle.customer_id)
    staff = {
        role: {"id": person.id, "name": mask_name(person.name), "phone": mask_phone(person.phone)}
        for role, person in (
            ("sales_advisor", vehicle.sales_advisor),
            ("service_specialist", vehicle.service_specialist),
        )
    }
    return {
        "vin": vehicle.vin,
        "dealer_id": dealer_id,
        "status": "transferred" if vehicle.transferred_at else "current",
        "transferred_at": clock.iso(vehicle.transferred_at) if vehicle.transferred_at else None,
        "delivery": {
            "model": vehicle.model,
            "powertrain": vehicle.powertrain,
            "packages": list(vehicle.packages),
            "delivered_at": clock.iso(vehicle.delivered_at),
            "plan": vehicle.plan,
            "loan_id": vehicle.loan_id,
            **staff,
        },
        "customer": None
        if customer is None
        else {
            "id": customer.customer_id,
            "name": mask_name(customer.name),
            "phone": mask_phone(customer.phone),
            "locale": customer.locale,
            "preferred_channel": customer.preferred_channel,
            "sms_opt_out": customer.sms_opt_out,
        },
        "handover": _masked_handover(vehicle.handover),
        "handover_confirmation": vehicle.handover_confirmation,
        "delivery_feedback": vehicle.delivery_feedback,
        "insurance": vehicle.insurance,
        "odometer": {
            "km": vehicle.odometer_km,
            "read_at": clock.iso(vehicle.odometer_read_at) if vehicle.odometer_read_at else None,
            "readings": found.readings,
        },
        "services": found.services,
        "last_service": vehicle.last_service,
        "next_service": _next_service(vehicle.next_service),
        "reminders": [_reminder(r, vehicle.next_service) for r in found.reminders],
        **_cases(dealer_id, found.timeline),
        "loans": [
            {k: v for k, v in loan_view(item, customer, _today()).items() if k != "customer"}
            for item in loans.of_vehicle(dealer_id, vin)
        ],
        "timeline": [
            timeline_entry_view(i)
            for i in found.timeline
            # Only this dealer's own events (and the finance arm's about its customers).
            if i.dealer_id == dealer_id
        ],
    }


def _cases(dealer_id: str, timeline: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The complaints and leads the dealer opened about the vehicle, as they stand now."""
    ids: dict[str, list[str]] = {"complaint": [], "lead": []}
    for entry in timeline:
        if entry.dealer_id != dealer_id:
            continue
        if entry.event_type == "complaint.opened":
            ids["complaint"].append(entry.summary.get("complaint_id"))
        elif entry.event_type == "lead.captured":
            ids["lead"].append(entry.summary.get("lead_id"))
    complaints = [
        cases.get_record("complaint", cases.complaint_pk(dealer_id, i))
        for i in dict.fromkeys(ids["complaint"])
    ]
    leads = [cases.get_record("lead", cases.lead_pk(dealer_id, i)) for i in dict.fromkeys(ids["lead"])]
    return {
        "complaints": [complaint_view(c) for c in complaints if c is not None],
        "leads": [lead_view(lead) for lead in leads if lead is not None],
    }


def _at(value: Any) -> str | None:
    return clock.iso(value) if value is not None else None


def _seconds(start: Any, end: Any) -> float | None:
    return None if start is None or end is None else max(0.0, (end - start).total_seconds())


def complaint_view(record: Any) -> dict[str, Any]:
    """A complaint as staff see it: where it stands, its triage; the text without phone numbers."""
    return {
        "complaint_id": record.complaint_id,
        "status": complaint_status(record),
        "severity": record.severity,
        "matched": record.matched or [],
        "near_misses": record.near_misses or [],
        "alert_id": record.alert_id,
        "task_id": record.task_id,
        "channel": record.channel,
        "text": mask_phones_in(record.text) if record.text else None,
        "opened_at": _at(record.opened_at),
        "acknowledged_at": _at(record.acknowledged_at),
        "solution_at": _at(record.solution_at),
        "resolved_at": _at(record.resolved_at),
        "satisfaction": int(record.satisfaction) if record.satisfaction is not None else None,
    }


def lead_view(record: Any) -> dict[str, Any]:
    status = record.closed_outcome or ("contacted" if record.followed_up_at else "open")
    return {
        "lead_id": record.lead_id,
        "kind": record.kind,
        "grade": record.grade,
        "status": status,
        "captured_by": record.captured_by,
        "captured_at": _at(record.captured_at),
        "pushed_at": _at(record.pushed_at),
        "push_seconds": _seconds(record.captured_at, record.pushed_at),
        "followed_up_at": _at(record.followed_up_at),
        "follow_up_hours": None
        if (hours := _seconds(record.pushed_at, record.followed_up_at)) is None
        else round(hours / 3600, 2),
        "closed_at": _at(record.closed_at),
        "task_id": record.task_id,
    }


LOAN_STATUSES = ("current", "overdue", "settled")


def loan_view(item: Any, customer: Any, today: Any) -> dict[str, Any]:
    """A loan as the dealer sees it: where it stands today; the customer's name and phone masked."""
    schedule = loan_rules.installments(item.schedule, item.paid_seqs or ())
    settled = item.settled_at is not None
    upcoming = None if settled else loan_rules.next_due(schedule)
    days = 0 if settled else loan_rules.days_past_due(schedule, today)
    return {
        "loan_id": item.loan_id,
        "finance_id": item.finance_id,
        "vin": item.vin,
        "customer_id": item.customer_id,
        "customer": {
            "name": mask_name(customer.name) if customer is not None else None,
            "phone": mask_phone(customer.phone) if customer is not None else None,
        },
        "currency": item.currency,
        "principal_minor": int(item.principal_minor),
        "next_due_date": upcoming.due_date.isoformat() if upcoming is not None else None,
        "days_past_due": days,
        "dpd_bucket": loan_rules.dpd_bucket(days),
        "outstanding_minor": 0 if settled else loan_rules.outstanding_minor(schedule),
        "installments_paid": sum(1 for i in schedule if i.paid),
        "installments": len(schedule),
        "status": loan_rules.status(schedule, today, settled),
        "settled_at": _at(item.settled_at),
    }


def _today() -> Any:
    from chalicelib.settings import get_settings

    return loan_rules.local_day(clock.now(), get_settings().local_tz)


def list_loans(dealer_id: str, query: dict[str, str]) -> dict[str, Any]:
    """The dealer's loans, a page at a time; `status` filters by where each stands today."""
    status = query.get("status") or None
    if status is not None and status not in LOAN_STATUSES:
        raise errors.BadRequest(
            "Unknown status.", errors=[{"field": "status", "message": f"one of {', '.join(LOAN_STATUSES)}"}]
        )
    try:
        found, cursor = loans.page(dealer_id, _limit(query), query.get("next") or None)
    except store.BadCursor as exc:
        raise _bad_cursor(exc) from exc
    today = _today()
    views = [loan_view(i, records.get_customer(dealer_id, i.customer_id), today) for i in found]
    return {"items": [v for v in views if status is None or v["status"] == status], "next": cursor}


def kpis(dealer_id: str, query: dict[str, str]) -> dict[str, Any]:
    from chalicelib.service import kpis as board

    return board.board(dealer_id, query.get("week") or None)


def customer_profile(dealer_id: str, customer_id: str) -> dict[str, Any]:
    """The dealer's own customer of that id (ids are per dealer): another dealer's is not found."""
    from chalicelib.service import profiles

    found = profiles.profile(dealer_id, customer_id)
    if found is None:
        raise errors.NotFound("customer")
    return found


def tag_counts(dealer_id: str, query: dict[str, str]) -> dict[str, Any]:
    from chalicelib.service import profiles

    return profiles.tag_counts(dealer_id)


def incentives(dealer_id: str, query: dict[str, str]) -> dict[str, Any]:
    from chalicelib.service import kpis as board

    return board.incentives(dealer_id, query.get("month") or None)


def health() -> dict[str, Any]:
    """Whether the table answers; a 503 tells the load balancer (and ops) otherwise."""
    try:
        store.ping()
    except Exception as exc:
        raise errors.Unavailable("The table does not answer.", reason=type(exc).__name__) from exc
    return {"status": "ok", "time": clock.iso(clock.now())}
