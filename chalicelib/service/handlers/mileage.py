"""Odometer readings and workshop visits: the vehicle's odometer, history, service cycle and the
reminders they set off (DESIGN.md §6, mileage paragraph)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import reminders as reminder_rules
from chalicelib.domain import tasks as task_rules
from chalicelib.domain.ownership import Tenure
from chalicelib.domain.tasks import NewTask
from chalicelib.events.vehicle import OdometerReported, ServiceCompleted, SurveyCompleted
from chalicelib.service import profiles, reminders
from chalicelib.service.handlers import Context, Effects, handles, open_task, vehicle_of
from chalicelib.service.ownership import Target
from chalicelib.store import cases, records, tasks
from chalicelib.store.models import VehicleItem

RETURN_VISIT_WINDOW = timedelta(days=3)  # the specialist's call after a service, 004 §4


def _reading(
    ctx: Context,
    target: Target,
    km: int,
    read_at: datetime,
    source: str,
    service: dict[str, Any] | None = None,
    next_service: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], records.ServiceRecorded | None]:
    dealer_id, vehicle = vehicle_of(target)
    recorded = records.record_mileage(vehicle, km, read_at, service, next_service)
    if ctx.waited:
        # Accepted before the delivery, so never reserved: the next reading is judged against it too.
        records.raise_reading(Tenure(dealer_id, vehicle.delivered_at), vehicle.vin, km, read_at)
    return {"km": km, "read_at": clock.iso(read_at), "source": source}, recorded


@handles(OdometerReported)
def on_odometer(ctx: Context, data: OdometerReported, target: Target, effects: Effects) -> None:
    """A reading that reaches the current cycle's threshold (due km - 500) sends its reminder now."""
    effects.reading, _ = _reading(ctx, target, data.odometer_km, data.read_at, data.source)
    _, vehicle = vehicle_of(target)
    if reminders.reached_threshold(vehicle, data.odometer_km):
        reminders.fire_by_km(vehicle, ctx.now, data.read_at)


def _return_visit(
    ctx: Context, dealer_id: str, vehicle: VehicleItem, data: ServiceCompleted, effects: Effects
) -> None:
    """Every service opens the specialist's return visit, due 3 days after it was completed."""
    subject = f"{task_rules.delivery_subject(vehicle.vin, vehicle.delivered_at)}#{data.repair_order_id}"
    task = NewTask(
        task_rules.task_id("service_return_visit", subject),
        "service_return_visit",
        vehicle.service_specialist.id,
        "after_sales",
        data.completed_at + RETURN_VISIT_WINDOW,
        vehicle.vin,
    )
    open_task(ctx, dealer_id, task, effects, vehicle.delivered_at)


@handles(ServiceCompleted)
def on_service(ctx: Context, data: ServiceCompleted, target: Target, effects: Effects) -> None:
    """A service is a reading too (its odometer at `completed_at`); a first service or maintenance
    becomes the vehicle's last service unless a newer one is recorded, and starts the next cycle:
    due at its odometer + interval_km and its date + interval_months, reminded 7 days / 500 km
    before. The cycle it ends closes its reminder's tasks."""
    dealer_id, vehicle = vehicle_of(target)
    effects.service = {
        "repair_order_id": data.repair_order_id,
        "kind": data.kind,
        "odometer_km": data.odometer_km,
        "completed_at": clock.iso(data.completed_at),
        "items": list(data.items),
    }
    last = {"kind": data.kind, "repair_order_id": data.repair_order_id}
    cycle: dict[str, Any] | None = None
    if reminder_rules.restarts_cycle(data.kind):
        plan = (vehicle.plan or {}).get("maintenance_plan") or {}
        due = reminder_rules.next_service_due(
            data.repair_order_id,
            data.completed_at,
            data.odometer_km,
            int(plan.get("interval_months", 12)),
            int(plan.get("interval_km", 10000)),
        )
        reminder, cycle = reminders.service_reminder(
            dealer_id, vehicle.vin, vehicle.delivered_at, vehicle.customer_id, due, ctx.now
        )
    effects.reading, recorded = _reading(
        ctx, target, data.odometer_km, data.completed_at, "service", last, cycle
    )
    if recorded is not None and cycle is not None:
        effects.puts.append(reminder)
        ended = recorded.ended_cycle
        if ended is not None and ended.get("cycle") != cycle["cycle"] and recorded.ended_cycle_fired:
            reminders.close_cycle_tasks(
                dealer_id, ended["reminder_id"], ended["kind"], ctx.now, data.repair_order_id
            )
    _return_visit(ctx, dealer_id, vehicle, data, effects)
    effects.puts.append(profiles.service(dealer_id, vehicle.customer_id, data))


@handles(SurveyCompleted)
def on_survey(ctx: Context, data: SurveyCompleted, target: Target, effects: Effects) -> None:
    """The customer's survey answers the return visits still open on the vehicle, and counts in the
    week's joint satisfaction and the month's satisfaction of the vehicle's advisor."""
    dealer_id, vehicle = vehicle_of(target)
    values = {"score": data.score, "advisor_id": vehicle.sales_advisor.id, "vin": vehicle.vin}
    effects.puts.append(cases.fact(dealer_id, data.at, "survey", vehicle.vin, values))
    tenure = Tenure(dealer_id, vehicle.delivered_at)
    for task_id in records.task_ids(tenure, vehicle.vin):
        if task_id.startswith("service_return_visit-"):
            tasks.close(dealer_id, task_id, ctx.now, "survey")
