"""Applying `vehicle.delivered`: a first delivery, the same dealer's again, a transfer, or a conflict.

DESIGN.md §4: a later delivery by another dealer is a transfer (resale): the earlier dealer's
open and overdue tasks for the vehicle end `cancelled` (`superseded`), both timelines show it,
ops are told. The new dealer's vehicle is a fresh partition: it sees nothing of the earlier
dealer's customer, services, readings or complaints, and the earlier dealer keeps its history up
to the transfer. A delivery by another dealer at the same or an earlier time takes nothing over.
What each case is, is decided by `domain.ownership.classify_delivery`.

Who owns the VIN is settled first, with a conditional update of the ownership item, before
anything is written; then customer, tasks and vehicle, the vehicle last (an event that closes a
task reads the vehicle, so a vehicle item proves its tasks exist); then `settle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import ownership as rules
from chalicelib.domain import reminders as reminder_rules
from chalicelib.domain import tasks as task_rules
from chalicelib.domain.ownership import DELIVERY_CONFLICT, STALE_DELIVERY, SUPERSEDED, Tenure
from chalicelib.events.delivery import VehicleDelivered
from chalicelib.outbound import ops, staff
from chalicelib.service import reminders as reminder_service
from chalicelib.store import outbox, records, reminders, tasks, write_all
from chalicelib.store.models import ReminderItem, VehicleItem

MAX_CLAIMS = 5
SYSTEM = "clm"  # the author of entries no partner wrote (a transfer, as each dealer's timeline shows it)


@dataclass(frozen=True)
class Ignored:
    """The delivery changes nothing; `reason` is what its sender sees."""

    reason: str


@dataclass(frozen=True)
class Claimed:
    """How this delivery stands once its claim is settled: `current` (it is the VIN's current one)
    or a superseded one recorded as history; `fresh` when this very run made it current (nothing
    of it can exist yet); `had_car` when the dealer held this VIN before (its own earlier tasks,
    its odometer)."""

    current: bool
    fresh: bool = False
    had_car: bool = True


def claim(vin: str, tenure: Tenure, webhook_id: str, now: datetime) -> Claimed | Ignored:
    """Settle who owns `vin` once this delivery is applied (optimistic on the ownership item)."""
    for _ in range(MAX_CLAIMS):
        owner = records.get_owner(vin)
        meaning = rules.classify_delivery(
            owner.tenure if owner else None, frozenset(owner.tenures if owner else ()), tenure
        )
        if meaning == "replay":
            return Claimed(current=True)
        if meaning == "superseded":
            return Claimed(current=False)
        if meaning == "stale":
            return Ignored(STALE_DELIVERY)
        if meaning == "conflict":
            assert owner is not None
            outbox.put(ops.delivery_conflict(vin, owner.tenure, tenure, webhook_id), now)
            return Ignored(DELIVERY_CONFLICT)
        if records.claim_owner(vin, tenure, owner):
            if owner is not None and owner.dealer_id != tenure.dealer_id:
                # At once, before anything else: from now on the earlier dealer's events about the
                # car are history (if they happened before) or wait, never current.
                records.mark_transferred(owner.tenure, vin, tenure.delivered_at)
            had_car = owner is not None and any(t.dealer_id == tenure.dealer_id for t in owner.tenures)
            return Claimed(current=True, fresh=True, had_car=had_car)
    raise RuntimeError(f"the ownership of {vin} kept changing")


def _open_tasks(
    dealer_id: str,
    tenure: Tenure,
    data: VehicleDelivered,
    fresh: bool,
    now: datetime,
    scheduled: list[ReminderItem],
) -> None:
    """The delivery's tasks, their notes under the vehicle, their announcements, and the
    reminders it schedules (the first service, the customer's birthday).

    A fresh claim writes them in one batch (none can exist yet); a replay writes each only if it
    does not exist, so a task closed or a reminder sent meanwhile stays so.
    """
    opened = task_rules.delivery_tasks(
        data.vin, data.delivered_at, data.sales_advisor.id, data.service_specialist.id
    )
    if fresh:
        items: list[Any] = list(scheduled)
        for new in opened:
            items += tasks.new_items(dealer_id, new, now, tenure.delivered_at)
            items.append(outbox.new_item(staff.task_created(tasks.as_task(dealer_id, new, now)), now))
        write_all(items)
        return
    for reminder in scheduled:
        reminders.put_once(reminder)
    for new in opened:
        tasks.create(dealer_id, new, now, delivered_at=tenure.delivered_at)
        # Recorded whether or not this run created the task: a crash between the two writes heals.
        outbox.put(staff.task_created(tasks.as_task(dealer_id, new, now)), now)


def _end(vin: str, ended: Tenure, successor: Tenure, webhook_id: str, now: datetime) -> None:
    """`successor` (another dealer's delivery) took the car over from `ended`: a transfer.

    The ended delivery's open tasks are cancelled and its vehicle view ends at the transfer; both
    timelines show it; ops are told. Idempotent: every write is conditional or keyed by the transfer.
    """
    for task_id in records.task_ids(ended, vin):
        tasks.cancel(ended.dealer_id, task_id, now, SUPERSEDED)
    records.mark_transferred(ended, vin, successor.delivered_at)
    entry_id = f"transfer-{successor.delivered_at.timestamp():.0f}"
    write_all(
        [
            records.timeline_entry(
                records.vehicle_pk(side.dealer_id, vin),
                successor.delivered_at,
                entry_id,
                "vehicle.transferred",
                SYSTEM,
                side.dealer_id,
                {"vin": vin, "direction": direction, "transferred_at": clock.iso(successor.delivered_at)},
            )
            for side, direction in ((ended, "out"), (successor, "in"))
        ]
    )
    outbox.put(ops.vehicle_transferred(vin, ended, successor, webhook_id), now)


def settle(vin: str, tenure: Tenure, claimed: Claimed, webhook_id: str, now: datetime) -> None:
    """Bring every delivery of `vin` in line with who owns it now, after this one's own writes.

    The current delivery ends every earlier one not yet ended (and the same dealer's earlier
    tasks); a superseded one ends itself. Run last, by every delivery, this converges whatever
    the order and whatever crashed: a delivery whose writes landed after a later one settled
    finds itself superseded here and ends itself.
    """
    owner = records.get_owner(vin)
    if owner is None:
        return
    if owner.tenure != tenure:
        successor = owner.after(tenure)
        if successor is not None:
            _end(vin, tenure, successor, webhook_id, now)
        return
    if claimed.had_car:  # the same dealer sold it again: its earlier delivery's tasks end
        for task_id in records.task_ids(tenure, vin, before=True):
            tasks.cancel(tenure.dealer_id, task_id, now, SUPERSEDED)
    for earlier in owner.tenures:  # idempotent, so ended ones are simply ended again
        successor = owner.after(earlier) if earlier != tenure else None
        if successor is not None:
            _end(vin, earlier, successor, webhook_id, now)


def apply(
    dealer_id: str, webhook_id: str, data: VehicleDelivered, now: datetime
) -> Ignored | VehicleItem | None:
    """Apply one delivery idempotently: the dealer's vehicle as it now is, or `Ignored`."""
    tenure = Tenure(dealer_id, data.delivered_at)
    claimed = claim(data.vin, tenure, webhook_id, now)
    if isinstance(claimed, Ignored):
        return claimed
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
    cycle: dict[str, Any] | None = None
    if claimed.current:
        first = reminder_rules.first_service_due(
            data.delivered_at, data.first_service.due_months, data.first_service.due_km
        )
        reminder, cycle = reminder_service.service_reminder(
            dealer_id, data.vin, data.delivered_at, customer.id, first, now
        )
        scheduled = [reminder]
        if customer.birthday is not None:
            scheduled.append(
                reminder_service.birthday_reminder(dealer_id, customer.id, customer.birthday, now)
            )
        _open_tasks(dealer_id, tenure, data, claimed.fresh, now, scheduled)
    vehicle = records.upsert_delivery(
        dealer_id,
        data.vin,
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
        current=claimed.current,
        next_service=cycle,
    )
    odometer_left = vehicle is not None and vehicle.odometer_km is not None and vehicle.odometer_read_at
    if claimed.current and claimed.had_car and vehicle is not None and odometer_left:
        # A dealer that has the car again judges new readings against its own last one.
        records.raise_reading(tenure, data.vin, int(vehicle.odometer_km), vehicle.odometer_read_at)
    settle(data.vin, tenure, claimed, webhook_id, now)
    return vehicle
