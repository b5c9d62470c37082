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
    """This delivery is (now) the current one; `previous` is the delivery it superseded, if any."""

    previous: Tenure | None


@dataclass(frozen=True)
class AlreadySuperseded:
    """This delivery was applied, then superseded by a later one (a retry after a crash)."""


def claim(vin: str, tenure: Tenure, webhook_id: str, now: datetime) -> Claimed | Ignored | AlreadySuperseded:
    """Settle who owns `vin` once this delivery is applied (optimistic on the ownership item)."""
    for _ in range(MAX_CLAIMS):
        owner = records.get_owner(vin)
        if owner is None:
            if records.claim_owner(vin, tenure, None, None):
                return Claimed(None)
            continue
        if owner.tenure == tenure:
            return Claimed(owner.previous)  # a replay: finish what the first run started
        if owner.previous == tenure:
            return AlreadySuperseded()
        if tenure.delivered_at <= owner.delivered_at:
            if owner.dealer_id == tenure.dealer_id:
                return Ignored(STALE_DELIVERY)
            outbox.put(ops.delivery_conflict(vin, owner.tenure, tenure, webhook_id), now)
            return Ignored(DELIVERY_CONFLICT)
        if records.claim_owner(vin, tenure, owner, owner.tenure):
            return Claimed(owner.tenure)
    raise RuntimeError(f"the ownership of {vin} kept changing")


def _open_tasks(dealer_id: str, tenure: Tenure, new_tasks: list[task_rules.NewTask], now: datetime) -> None:
    for new in new_tasks:
        tasks.create(dealer_id, new, now, delivered_at=tenure.delivered_at)
        # Recorded whether or not this run created the task: a crash between the two writes heals.
        outbox.put(staff.task_created(tasks.as_task(dealer_id, new, now)), now)


def _supersede(vin: str, previous: Tenure, tenure: Tenure, webhook_id: str, now: datetime) -> None:
    """End the superseded delivery: its open tasks are cancelled; another dealer's view ends there."""
    for task_id in records.task_ids(previous, vin):
        tasks.cancel(previous.dealer_id, task_id, now, SUPERSEDED)
    if previous.dealer_id == tenure.dealer_id:
        return
    records.mark_transferred(previous, vin, tenure.delivered_at)
    entry_id = f"transfer-{tenure.delivered_at.timestamp():.0f}"
    for tenure_side, direction in ((previous, "out"), (tenure, "in")):
        records.put_timeline(
            records.vehicle_pk(tenure_side.dealer_id, vin),
            tenure.delivered_at,
            entry_id,
            "vehicle.transferred",
            SYSTEM,
            tenure_side.dealer_id,
            {"vin": vin, "direction": direction, "transferred_at": clock.iso(tenure.delivered_at)},
        )
    outbox.put(ops.vehicle_transferred(vin, previous, tenure, webhook_id), now)


def apply(dealer_id: str, webhook_id: str, data: Any, now: datetime) -> Ignored | None:
    """Apply one delivery idempotently; an `Ignored` when it takes nothing over."""
    tenure = Tenure(dealer_id, data.delivered_at)
    claimed = claim(data.vin, tenure, webhook_id, now)
    if isinstance(claimed, Ignored):
        return claimed
    if isinstance(claimed, AlreadySuperseded):
        return None
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
    )
    if claimed.previous is not None:
        _supersede(data.vin, claimed.previous, tenure, webhook_id, now)
    return None
