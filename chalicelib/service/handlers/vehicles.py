"""The "1+1" handover, first-use feedback, insurance: what dealers record on a delivered vehicle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import tasks as task_rules
from chalicelib.events.handover import DeliveryFeedbackSubmitted, HandoverConfirmed, HandoverSubmitted
from chalicelib.events.vehicle import InsurancePolicyUpdated
from chalicelib.service import profiles, reminders
from chalicelib.service.handlers import Context, Effects, handles, vehicle_of
from chalicelib.service.ownership import Target
from chalicelib.store import cases, records, tasks


@dataclass(frozen=True)
class Closing:
    """An event that files something on the vehicle and closes the delivery task it fulfils."""

    field: str  # the vehicle attribute it fills
    by: str  # the data field naming who did it
    at: str  # the key of its time in the stored record


CLOSING: dict[str, Closing] = {
    "handover.submitted": Closing("handover", "submitted_by", "submitted_at"),
    "handover.confirmed": Closing("handover_confirmation", "confirmed_by", "confirmed_at"),
    "delivery.feedback_submitted": Closing("delivery_feedback", "submitted_by", "submitted_at"),
}


def _filed(data: Any) -> dict[str, Any]:
    """What each closing event files, beside who and when."""
    if isinstance(data, HandoverSubmitted):
        return {"form": data.form.model_dump(mode="json")}
    if isinstance(data, HandoverConfirmed):
        return {"corrections": list(data.corrections), "accurate": not data.corrections}
    assert isinstance(data, DeliveryFeedbackSubmitted)
    return {"questions": list(data.questions), "needs": list(data.needs)}


@handles(HandoverSubmitted, HandoverConfirmed, DeliveryFeedbackSubmitted)
def on_closing_event(
    ctx: Context,
    data: HandoverSubmitted | HandoverConfirmed | DeliveryFeedbackSubmitted,
    target: Target,
    effects: Effects,
) -> None:
    """File the record on the vehicle, then close the task of the vehicle's current delivery."""
    dealer_id, vehicle = vehicle_of(target)
    closing = CLOSING[ctx.event_type]
    by = getattr(data, closing.by)
    record = {closing.by: by, closing.at: clock.iso(ctx.received_at), **_filed(data)}
    if isinstance(data, HandoverConfirmed):
        # A handover counts once in the week's accuracy, in the week it was first confirmed; a
        # confirmation sent again (under any id) replaces its figures, not its week.
        first = (vehicle.handover_confirmation or {}).get("confirmed_at")
        counts_at = datetime.fromisoformat(first) if first else ctx.received_at
        record[closing.at] = clock.iso(counts_at)
        subject = task_rules.delivery_subject(vehicle.vin, vehicle.delivered_at)
        accurate = {"accurate": not data.corrections, "corrections": len(data.corrections)}
        effects.puts.append(cases.fact(dealer_id, counts_at, "handover", subject, accurate))
    records.set_vehicle_fields(dealer_id, vehicle.vin, **{closing.field: record})
    if isinstance(data, HandoverSubmitted):  # the customer's needs go to their tags
        effects.puts.append(profiles.handover(dealer_id, vehicle.customer_id, data, ctx.received_at))
    kind = task_rules.CLOSED_BY_EVENT[ctx.event_type]
    tasks.close(dealer_id, task_rules.delivery_task_id(kind, vehicle.vin, vehicle.delivered_at), ctx.now, by)


@handles(InsurancePolicyUpdated)
def on_insurance(ctx: Context, data: InsurancePolicyUpdated, target: Target, effects: Effects) -> None:
    """Keep the current policy on the vehicle and schedule its renewal reminders (30 and 7 days
    before `expires_on`). A newer policy is a renewal: the earlier one's renewal task is done and
    its reminders are dropped when due. An older one than the vehicle's is only recorded."""
    if target.vehicle is None or target.dealer_id is None:
        return  # the finance arm insured a car no dealer has delivered: kept on its own timeline
    vehicle = target.vehicle
    previous = vehicle.insurance
    policy = {
        "insurer": data.insurer,
        "policy_no": data.policy_no,
        "expires_on": data.expires_on.isoformat(),
    }
    if previous and previous.get("expires_on", "") > policy["expires_on"]:
        return  # a newer policy is already on file: this one is history (on the timeline)
    records.set_vehicle_fields(
        target.dealer_id, vehicle.vin, insurance={**policy, "updated_by": ctx.partner_id}
    )
    effects.puts += reminders.insurance_reminders(target.dealer_id, vehicle, policy, ctx.now)
    same = previous and all(previous.get(k) == policy[k] for k in ("policy_no", "expires_on"))
    if previous and not same:
        renewal = reminders.renewal_task_id(target.dealer_id, vehicle.vin, vehicle.delivered_at, previous)
        tasks.close(target.dealer_id, renewal, ctx.now, ctx.partner_id)
