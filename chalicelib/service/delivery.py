"""Applying `vehicle.delivered`: a first delivery, the same dealer's again, a transfer, or a conflict.

DESIGN.md §4: a later delivery by another dealer is a transfer (resale): the earlier dealer's
open and overdue tasks for the vehicle end `cancelled` (`superseded`), both timelines show it,
ops are told. The new dealer's vehicle is a fresh partition: it sees nothing of the earlier
dealer's customer, services, readings or complaints, and the earlier dealer keeps its history up
to the transfer. A delivery by another dealer at the same or an earlier time takes nothing over.

Who owns the VIN is settled first, with a conditional update of the ownership item, before
anything is written; then customer, tasks and vehicle, the vehicle last (an event that closes a
task checks the vehicle, so a vehicle item proves its tasks exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain import tasks as task_rules
from chalicelib.outbound import ops, staff
from chalicelib.store import outbox, records, tasks
from chalicelib.store.records import Tenure

STALE_DELIVERY = "stale_delivery"
DELIVERY_CONFLICT = "delivery_conflict"
SUPERSEDED = "superseded"
MAX_CLAIMS = 5
SYSTEM = "clm"  # the author of entries no partner wrote (a transfer, as each dealer's timeline shows it)


@dataclass(frozen=True)
class Ignored:
    """The delivery changes nothing; `reason` is what its sender sees."""

    reason: str


@dataclass(frozen=True)
class Claimed:
    """This delivery is (now) the vehicle's current one."""


@dataclass(frozen=True)
class Superseded:
    """This delivery was once the current one and a later one has taken over (a retry after a
    crash, or two deliveries applied at once): it is recorded as history, opens no tasks."""


def claim(vin: str, tenure: Tenure, webhook_id: str, now: datetime) -> Claimed | Superseded | Ignored:
    """Settle who owns `vin` once this delivery is applied (optimistic on the ownership item)."""
    for _ in range(MAX_CLAIMS):
        owner = records.get_owner(vin)
        if owner is not None and owner.tenure == tenure:
            return Claimed()  # a replay: finish what the first run started
        if owner is not None and owner.claimed(tenure):
            return Superseded()
        if owner is not None and tenure.delivered_at <= owner.delivered_at:
            if owner.dealer_id == tenure.dealer_id:
                return Ignored(STALE_DELIVERY)
            outbox.put(ops.delivery_conflict(vin, owner.tenure, tenure, webhook_id), now)
            return Ignored(DELIVERY_CONFLICT)
        if records.claim_owner(vin, tenure, owner):
            return Claimed()
    raise RuntimeError(f"the ownership of {vin} kept changing")


def _open_tasks(dealer_id: str, tenure: Tenure, new_tasks: list[task_rules.NewTask], now: datetime) -> None:
    for new in new_tasks:
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
    for side, direction in ((ended, "out"), (successor, "in")):
        records.put_timeline(
            records.vehicle_pk(side.dealer_id, vin),
            successor.delivered_at,
            entry_id,
            "vehicle.transferred",
            SYSTEM,
            side.dealer_id,
            {"vin": vin, "direction": direction, "transferred_at": clock.iso(successor.delivered_at)},
        )
    outbox.put(ops.vehicle_transferred(vin, ended, successor, webhook_id), now)


def settle(vin: str, tenure: Tenure, webhook_id: str, now: datetime) -> None:
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
    for task_id in records.task_ids(tenure, vin, before=True):  # the same dealer sold it again
        tasks.cancel(tenure.dealer_id, task_id, now, SUPERSEDED)
    for earlier in owner.tenures:
        if earlier == tenure:
            continue
        vehicle = records.get_vehicle(earlier.dealer_id, vin)
        if vehicle is not None and vehicle.transferred_at is not None:
            continue  # ended before
        successor = owner.after(earlier)
        if successor is not None:
            _end(vin, earlier, successor, webhook_id, now)


def apply(dealer_id: str, webhook_id: str, data: Any, now: datetime) -> Ignored | None:
    """Apply one delivery idempotently; an `Ignored` when it takes nothing over."""
    tenure = Tenure(dealer_id, data.delivered_at)
    claimed = claim(data.vin, tenure, webhook_id, now)
    if isinstance(claimed, Ignored):
        return claimed
    current = isinstance(claimed, Claimed)
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
    if current:
        _open_tasks(
            dealer_id,
            tenure,
            task_rules.delivery_tasks(
                data.vin, data.delivered_at, data.sales_advisor.id, data.service_specialist.id
            ),
            now,
        )
    records.upsert_delivery(
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
        current=current,
    )
    if current:
        # A dealer that has the car again judges new readings against its own last one.
        vehicle = records.get_vehicle(dealer_id, data.vin)
        if vehicle is not None and vehicle.odometer_km is not None and vehicle.odometer_read_at is not None:
            records.raise_reading(tenure, data.vin, int(vehicle.odometer_km), vehicle.odometer_read_at)
    settle(data.vin, tenure, webhook_id, now)
    return None
