"""Complaints and service leads: the red-alert triage, the joint solution, the advisor's follow-up
(DESIGN.md §6; seed 002 §3, §5).

Each belongs to the sending dealer (records under its name) and never waits for a delivery. The
vehicle it names is used (its advisor and specialist, its timeline) only when it is the sender's
own current vehicle (`Target.vehicle`); another dealer's VIN is kept as given and nothing of that
vehicle is read or shown.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.domain import cases as rules
from chalicelib.domain.triage import excerpt, triage
from chalicelib.events.care import (
    ComplaintAcknowledged,
    ComplaintOpened,
    ComplaintResolved,
    ComplaintSolutionProposed,
    LeadCaptured,
    LeadFollowedUp,
)
from chalicelib.observability import count, logger
from chalicelib.outbound import alerts
from chalicelib.service.handlers import Context, Effects, handles, open_task
from chalicelib.service.ownership import Target
from chalicelib.store import cases, outbox, records, tasks
from chalicelib.store.models import ComplaintItem, LeadItem

ALERT_ENTRY_OFFSET = timedelta(milliseconds=1)


def _dealer(target: Target) -> str:
    assert target.dealer_id is not None, "a dealer's own record"
    return target.dealer_id


def _staff(target: Target) -> rules.Staff:
    vehicle = target.vehicle
    if vehicle is None:
        return rules.Staff()
    return rules.Staff(vehicle.sales_advisor.id, vehicle.service_specialist.id)


def _alert_entry(dealer_id: str, owners: list[str], record: ComplaintItem, excerpt: str) -> list[Any]:
    """The alert on the complaint's and the vehicle's timelines (what was raised, to whom)."""
    assert record.opened_at is not None and record.alert_id is not None
    summary = {
        "alert_id": record.alert_id,
        "complaint_id": record.complaint_id,
        "severity": record.severity,
        "matched": record.matched,
        "roles": alerts.ALERT_ROLES,
        "excerpt": excerpt,
    }
    raised = record.opened_at + ALERT_ENTRY_OFFSET  # right after the complaint, in any replay
    return [
        records.timeline_entry(owner, raised, record.alert_id, "alert.raised", "clm", dealer_id, summary)
        for owner in owners
    ]


@handles(ComplaintOpened)
def on_complaint_opened(ctx: Context, data: ComplaintOpened, target: Target, effects: Effects) -> None:
    """Triage the text; a red one is published to `red-alerts` before anything else is written.
    Then the joint-solution task (24 h) for the vehicle's advisor, or the dealer's sales role."""
    dealer_id = _dealer(target)
    records.update_customer(dealer_id, data.customer_id, {}, ctx.now)
    triaged = triage(data.text)
    vehicle = target.vehicle
    linked = vehicle.vin if vehicle is not None else None
    task = rules.joint_solution_task(
        dealer_id, data.complaint_id, data.opened_at, linked, _staff(target), triaged.severity
    )
    if triaged.red:
        alert = alerts.red_alert(
            dealer_id, data.complaint_id, data.vin, data.customer_id, data.text, data.opened_at, triaged
        )
        if outbox.put(alert, ctx.now):
            count("RedAlertsRaised")
            logger.warning(
                "red alert raised",
                extra={
                    "dealer_id": dealer_id,
                    "complaint_id": data.complaint_id,
                    "rules": [r.rule_id for r in triaged.matched],
                },
            )
    record = cases.open_complaint(
        dealer_id,
        {
            "complaint_id": data.complaint_id,
            "customer_id": data.customer_id,
            "vin": data.vin,
            "linked_vin": linked,
            "channel": data.channel,
            "text": data.text,
            "opened_at": data.opened_at,
            "severity": triaged.severity,
            "matched": [r.to_json() for r in triaged.matched],
            "near_misses": [r.to_json() for r in triaged.near_misses],
            "alert_id": alerts.alert_id(dealer_id, data.complaint_id) if triaged.red else None,
            "task_id": task.task_id,
        },
        ctx.now,
    )
    if triaged.red:
        owners = [cases.complaint_pk(dealer_id, data.complaint_id), records.dealer_pk(dealer_id)]
        if vehicle is not None:
            owners.append(records.vehicle_pk(dealer_id, vehicle.vin))
        effects.puts += _alert_entry(dealer_id, owners, record, excerpt(data.text))
    open_task(ctx, dealer_id, task, effects, vehicle.delivered_at if vehicle is not None else None)
    # Read again now that the task exists: a step applied meanwhile found no task to close.
    _complaint_settled(ctx, dealer_id, cases.get_record("complaint", record.pk) or record)


@handles(ComplaintAcknowledged, ComplaintSolutionProposed, ComplaintResolved)
def on_complaint_step(
    ctx: Context,
    data: ComplaintAcknowledged | ComplaintSolutionProposed | ComplaintResolved,
    target: Target,
    effects: Effects,
) -> None:
    """A step on the sender's own complaint (one of the same id at another dealer is not touched)."""
    dealer_id = _dealer(target)
    satisfaction = data.satisfaction if isinstance(data, ComplaintResolved) else None
    record = cases.complaint_step(
        dealer_id, data.complaint_id, ctx.event_type, data.by, data.at, satisfaction, ctx.now
    )
    _complaint_settled(ctx, dealer_id, record)


def _complaint_settled(ctx: Context, dealer_id: str, record: ComplaintItem) -> None:
    """Whatever order its events came in: once a solution (or the resolution) is on file the joint
    task is done, and once the complaint is open too, the 24-hour KPI counts it. A red one holds
    the vehicle's overdue SMS and collections until it is resolved."""
    answered = [at for at in (record.solution_at, record.resolved_at) if at is not None]
    answered_at = min(answered) if answered else None
    if record.severity == "red" and record.linked_vin:
        # Open until resolved: meanwhile the customer's overdue SMS waits and collections hold.
        records.hold_for_complaint(
            dealer_id, record.linked_vin, record.complaint_id, open_=record.resolved_at is None
        )
    if record.opened_at is not None:
        due = record.opened_at + rules.JOINT_SOLUTION_WINDOW
        cases.mirror_fact(
            dealer_id,
            "complaint",
            record.complaint_id,
            int(record.rev),
            due,
            due_at=due,
            solution_at=answered_at,
        )
    if answered_at is not None:
        by = record.solution_by or record.resolved_by or "clm"
        task_id = rules.joint_solution_task_id(dealer_id, record.complaint_id)
        tasks.close(dealer_id, task_id, ctx.now, by)


@handles(LeadCaptured)
def on_lead_captured(ctx: Context, data: LeadCaptured, target: Target, effects: Effects) -> None:
    """Push the lead to the advisor at once: a `lead_follow_up` task due 24 h after the push, on
    `staff-tasks`. The push latency (capture to push) is measured."""
    dealer_id = _dealer(target)
    records.update_customer(dealer_id, data.customer_id, {}, ctx.now)
    vehicle = target.vehicle
    linked = vehicle.vin if vehicle is not None else None
    fields = {
        "lead_id": data.lead_id,
        "customer_id": data.customer_id,
        "vin": data.vin,
        "linked_vin": linked,
        "kind": data.kind,
        "grade": data.grade,
        "captured_by": data.captured_by,
        "captured_at": data.captured_at,
        "task_id": rules.lead_task_id(dealer_id, data.lead_id),
    }
    effects.puts.append(cases.staff_member(dealer_id, "after_sales", data.captured_by))
    record = cases.capture_lead(dealer_id, fields, ctx.now)
    assert record.pushed_at is not None
    task = rules.lead_task(
        dealer_id, data.lead_id, record.pushed_at, linked, _staff(target), data.grade, data.kind
    )
    if open_task(ctx, dealer_id, task, effects, vehicle.delivered_at if vehicle is not None else None):
        latency = max(0.0, (record.pushed_at - data.captured_at).total_seconds())
        count("LeadPushSeconds", latency, unit="Seconds")
    # Read again now that the task exists: a follow-up applied meanwhile found no task to close.
    _lead_settled(ctx, dealer_id, cases.get_record("lead", record.pk) or record)


@handles(LeadFollowedUp)
def on_lead_followed_up(ctx: Context, data: LeadFollowedUp, target: Target, effects: Effects) -> None:
    """The first follow-up ends the advisor's task; `converted` or `lost` closes the lead."""
    dealer_id = _dealer(target)
    effects.puts.append(cases.staff_member(dealer_id, "sales", data.advisor_id))
    record = cases.follow_up_lead(dealer_id, data.lead_id, data.advisor_id, data.outcome, data.at, ctx.now)
    _lead_settled(ctx, dealer_id, record)


def _lead_settled(ctx: Context, dealer_id: str, record: LeadItem) -> None:
    """In any order of its events: the task ends at the first follow-up; the KPIs count the
    follow-up time and the closing once both ends of each are on file."""
    if record.followed_up_at is None:
        return
    tasks.close(
        dealer_id, rules.lead_task_id(dealer_id, record.lead_id), ctx.now, record.followed_up_by or "clm"
    )
    rev = int(record.rev)
    if record.pushed_at is not None:
        hours = max(0.0, (record.followed_up_at - record.pushed_at).total_seconds() / 3600)
        values = {"hours": round(hours, 3), "advisor_id": record.followed_up_by}
        cases.mirror_fact(dealer_id, "follow_up", record.lead_id, rev, record.followed_up_at, values)
    if record.closed_at is not None and record.captured_at is not None:
        values = {
            "outcome": record.closed_outcome,
            "advisor_id": record.closed_by,
            "captured_by": record.captured_by,
            "grade": record.grade,
        }
        cases.mirror_fact(dealer_id, "lead_closed", record.lead_id, rev, record.closed_at, values)
