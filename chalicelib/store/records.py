"""Customers, vehicles and their ownership, odometer readings, services, timeline entries.

Every write here is idempotent (upserts of the same values, or puts under keys derived from
the event), so an event processed twice after a crash converges to the same state. Everything
a dealer's event writes lives under a key naming that dealer; only the ownership item
`VIN#<vin>` is shared between dealers, and it is never shown by a read API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.expressions.condition import Condition

from chalicelib import clock
from chalicelib.domain import odometer, services
from chalicelib.domain.ownership import Tenure, successor
from chalicelib.store import bind, conditional_update
from chalicelib.store.models import (
    CustomerItem,
    Item,
    Person,
    ReminderItem,
    TaskRefItem,
    TimelineItem,
    VehicleItem,
    VehicleOwnerItem,
    WaitItem,
)

OWNER_SK = "OWNER"


def _set_or_remove(attribute: Any, value: Any) -> Any:
    """An update action that stores `value`, or drops the attribute when it is None."""
    return attribute.remove() if value is None else attribute.set(value)


def customer_pk(dealer_id: str, customer_id: str) -> str:
    """Customers belong to the dealer whose systems named them: ids are unique per dealer only."""
    return f"CUST#{dealer_id}#{customer_id}"


def vehicle_pk(dealer_id: str, vin: str) -> str:
    """One dealer's view of one vehicle: a resold car gets a fresh partition at its new dealer."""
    return f"VEH#{dealer_id}#{vin}"


def dealer_pk(dealer_id: str) -> str:
    """The dealer's own partition: its tasks, risk signals, and the timeline of its records
    (complaints, alerts, leads, feedback, audits, customers, loans)."""
    return f"DEALER#{dealer_id}"


def partner_pk(partner_id: str) -> str:
    """A partner's own timeline, for events about nothing more specific."""
    return f"PARTNER#{partner_id}"


RECORD_KEYS = (
    ("complaint_id", "COMPLAINT"),
    ("lead_id", "LEAD"),
    ("loan_id", "LOAN"),
    ("feedback_id", "FEEDBACK"),
    ("customer_id", "CUST"),
)


def record_pk(partner_id: str, dealer_id: str | None, data: Any) -> str:
    """The sender's own record an event is about, under the sender's name (its ids are its own).

    A customer belongs to a dealer (the finance arm's events name the loan's dealer).
    """
    for name, prefix in RECORD_KEYS:
        value = getattr(data, name, None)
        if isinstance(value, str) and value:
            if prefix == "CUST" and dealer_id:
                return customer_pk(dealer_id, value)
            return f"{prefix}#{partner_id}#{value}"
    return partner_pk(partner_id)


# --- ownership ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    vin: str
    tenure: Tenure
    tenures: tuple[Tenure, ...]  # every dealer's latest claimed delivery, oldest first (current last)
    accepted_km: int | None
    accepted_read_at: datetime | None

    def claimed(self, tenure: Tenure) -> bool:
        """Whether `tenure` was once the current delivery (it may have been superseded since)."""
        return tenure in self.tenures

    def after(self, tenure: Tenure) -> Tenure | None:
        """The delivery that superseded `tenure`, if any."""
        return successor(list(self.tenures), tenure)

    @property
    def dealer_id(self) -> str:
        return self.tenure.dealer_id

    @property
    def delivered_at(self) -> datetime:
        return self.tenure.delivered_at


def _owner_item(vin: str) -> VehicleOwnerItem:
    return VehicleOwnerItem(f"VIN#{vin}", OWNER_SK)


def get_owner(vin: str) -> Owner | None:
    bind()
    try:
        item = VehicleOwnerItem.get(f"VIN#{vin}", OWNER_SK, consistent_read=True)
    except VehicleOwnerItem.DoesNotExist:
        return None
    tenures = sorted(
        (Tenure(dealer, datetime.fromisoformat(at)) for dealer, at in (item.tenures or {}).items()),
        key=lambda t: t.delivered_at,
    )
    return Owner(
        item.vin,
        Tenure(item.dealer_id, item.delivered_at),
        tuple(tenures),
        int(item.accepted_km) if item.accepted_km is not None else None,
        item.accepted_read_at,
    )


def _is(owner: Owner) -> Condition:
    """The ownership item still says what `owner` read."""
    return (VehicleOwnerItem.dealer_id == owner.dealer_id) & (
        VehicleOwnerItem.delivered_at == owner.delivered_at
    )


def claim_owner(vin: str, tenure: Tenure, expected: Owner | None) -> bool:
    """Make `tenure` the VIN's current one, if the ownership is still `expected` (optimistic).

    Every dealer's latest claimed delivery is kept (`tenures`), so that whatever runs later, and
    in whatever order, can tell a superseded delivery from a conflicting one and settle it. A new
    dealer starts without an accepted odometer reading: it is judged only against its own.
    """
    bind()
    tenures = {t.dealer_id: t.delivered_at for t in (expected.tenures if expected else ())}
    tenures[tenure.dealer_id] = tenure.delivered_at
    actions = [
        VehicleOwnerItem.entity.set(VehicleOwnerItem),
        VehicleOwnerItem.vin.set(vin),
        VehicleOwnerItem.dealer_id.set(tenure.dealer_id),
        VehicleOwnerItem.delivered_at.set(tenure.delivered_at),
        VehicleOwnerItem.tenures.set({dealer: at.isoformat() for dealer, at in tenures.items()}),
    ]
    if expected is not None and expected.dealer_id != tenure.dealer_id:
        actions += [VehicleOwnerItem.accepted_km.remove(), VehicleOwnerItem.accepted_read_at.remove()]
    condition = VehicleOwnerItem.pk.does_not_exist() if expected is None else _is(expected)
    return conditional_update(_owner_item(vin), actions, condition)


def reserve_reading(owner: Owner, km: int, read_at: datetime) -> bool:
    """Record `km` at `read_at` as the latest accepted reading, if nothing moved it since `owner` was read."""
    bind()
    if owner.accepted_read_at is None:
        unchanged = VehicleOwnerItem.accepted_read_at.does_not_exist()
    else:
        unchanged = (VehicleOwnerItem.accepted_read_at == owner.accepted_read_at) & (
            VehicleOwnerItem.accepted_km == owner.accepted_km
        )
    return conditional_update(
        _owner_item(owner.vin),
        [VehicleOwnerItem.accepted_km.set(km), VehicleOwnerItem.accepted_read_at.set(read_at)],
        _is(owner) & unchanged,
    )


def raise_reading(tenure: Tenure, vin: str, km: int, read_at: datetime) -> bool:
    """Move the latest accepted reading forward to an applied one that was never reserved (it waited
    for its delivery, or it is the odometer a dealer's earlier ownership left); never back."""
    bind()
    newer = VehicleOwnerItem.accepted_read_at.does_not_exist() | (VehicleOwnerItem.accepted_read_at < read_at)
    return conditional_update(
        _owner_item(vin),
        [VehicleOwnerItem.accepted_km.set(km), VehicleOwnerItem.accepted_read_at.set(read_at)],
        (VehicleOwnerItem.dealer_id == tenure.dealer_id)
        & (VehicleOwnerItem.delivered_at == tenure.delivered_at)
        & newer,
    )


def release_reading(owner: Owner, km: int, read_at: datetime) -> bool:
    """Undo `reserve_reading` (the event was not accepted after all), unless a later one moved it on."""
    bind()
    ours = (VehicleOwnerItem.accepted_read_at == read_at) & (VehicleOwnerItem.accepted_km == km)
    return conditional_update(
        _owner_item(owner.vin),
        [
            _set_or_remove(VehicleOwnerItem.accepted_km, owner.accepted_km),
            _set_or_remove(VehicleOwnerItem.accepted_read_at, owner.accepted_read_at),
        ],
        _is(owner) & ours,
    )


# --- customers ------------------------------------------------------------------------------------


def upsert_customer(
    customer_id: str,
    dealer_id: str,
    name: str,
    phone: str,
    locale: str,
    preferred_channel: str,
    birthday: str | None,
    now: datetime,
) -> None:
    bind()
    CustomerItem(customer_pk(dealer_id, customer_id), "CUSTOMER").update(
        actions=[
            CustomerItem.entity.set(CustomerItem),
            CustomerItem.customer_id.set(customer_id),
            CustomerItem.dealer_id.set(dealer_id),
            CustomerItem.name.set(name),
            CustomerItem.phone.set(phone),
            CustomerItem.locale.set(locale),
            CustomerItem.preferred_channel.set(preferred_channel),
            _set_or_remove(CustomerItem.birthday, birthday),
            CustomerItem.sms_opt_out.set(CustomerItem.sms_opt_out | False),
            CustomerItem.care_opt_out.set(CustomerItem.care_opt_out | False),
            CustomerItem.updated_at.set(now),
        ]
    )


CUSTOMER_DEFAULTS: dict[str, Any] = {
    "locale": "zh-CN",
    "preferred_channel": "sms",
    "sms_opt_out": False,
    "care_opt_out": False,
}


def update_customer(dealer_id: str, customer_id: str, changes: dict[str, Any], now: datetime) -> None:
    """Create the dealer's customer on first mention, and set the given preferences (None: unchanged)."""
    bind()
    actions: list[Any] = [
        CustomerItem.entity.set(CustomerItem),
        CustomerItem.customer_id.set(customer_id),
        CustomerItem.dealer_id.set(dealer_id),
        CustomerItem.updated_at.set(now),
    ]
    for name, default in CUSTOMER_DEFAULTS.items():
        attribute = getattr(CustomerItem, name)
        value = changes.get(name)
        actions.append(attribute.set(value) if value is not None else attribute.set(attribute | default))
    if changes.get("birthday") is not None:
        actions.append(CustomerItem.birthday.set(changes["birthday"]))
    CustomerItem(customer_pk(dealer_id, customer_id), "CUSTOMER").update(actions=actions)


def note_past_due(dealer_id: str, customer_id: str, loan_key: str, *, past_due: bool) -> None:
    """Note one of the customer's loans as 30+ days past due (no care SMS), or as no longer."""
    bind()
    keys = {loan_key}
    action = CustomerItem.past_due_loans.add(keys) if past_due else CustomerItem.past_due_loans.delete(keys)
    conditional_update(
        CustomerItem(customer_pk(dealer_id, customer_id), "CUSTOMER"), [action], CustomerItem.pk.exists()
    )


def get_customer(dealer_id: str, customer_id: str) -> CustomerItem | None:
    bind()
    try:
        return CustomerItem.get(customer_pk(dealer_id, customer_id), "CUSTOMER", consistent_read=True)
    except CustomerItem.DoesNotExist:
        return None


# --- one dealer's vehicle -------------------------------------------------------------------------


def _vehicle_item(dealer_id: str, vin: str) -> VehicleItem:
    return VehicleItem(vehicle_pk(dealer_id, vin), "VEHICLE")


def upsert_delivery(
    dealer_id: str,
    vin: str,
    fields: dict[str, Any],
    current: bool = True,
    next_service: dict[str, Any] | None = None,
) -> VehicleItem | None:
    """Record the dealer's delivery on its vehicle item, unless a later one of its own is recorded.

    Replaying the same delivery changes nothing; a later one by the same dealer (sold again) starts
    a fresh handover and keeps the dealer's odometer and service history. A `current` delivery
    clears a transfer mark (the dealer has the car again). `next_service` is the delivery's first
    service cycle: set once (a replay keeps the cycle later services moved on). The vehicle as it
    now is; None when stale.
    """
    bind()
    advisor, specialist = fields["sales_advisor"], fields["service_specialist"]
    delivered_at = fields["delivered_at"]
    common = [
        VehicleItem.entity.set(VehicleItem),
        VehicleItem.vin.set(vin),
        VehicleItem.dealer_id.set(dealer_id),
        VehicleItem.model.set(fields["model"]),
        VehicleItem.powertrain.set(fields["powertrain"]),
        VehicleItem.packages.set(fields["packages"]),
        VehicleItem.delivered_at.set(delivered_at),
        VehicleItem.customer_id.set(fields["customer_id"]),
        VehicleItem.sales_advisor.set(Person(**advisor)),
        VehicleItem.service_specialist.set(Person(**specialist)),
        VehicleItem.plan.set(fields["plan"]),
        _set_or_remove(VehicleItem.loan_id, fields.get("loan_id")),
    ]
    if current:
        common.append(VehicleItem.transferred_at.remove())
    item = _vehicle_item(dealer_id, vin)
    same = VehicleItem.pk.does_not_exist() | (VehicleItem.delivered_at == delivered_at)
    keep_cycle = (
        [VehicleItem.next_service.set(VehicleItem.next_service | next_service)] if next_service else []
    )
    if conditional_update(item, common + keep_cycle, same):
        return item
    fresh_start = [
        VehicleItem.handover.remove(),
        VehicleItem.handover_confirmation.remove(),
        VehicleItem.delivery_feedback.remove(),
        _set_or_remove(VehicleItem.next_service, next_service),
        VehicleItem.service_reminder_fired.remove(),
    ]
    if conditional_update(item, common + fresh_start, VehicleItem.delivered_at < delivered_at):
        return item
    return None


def get_vehicle(dealer_id: str, vin: str) -> VehicleItem | None:
    bind()
    try:
        return VehicleItem.get(vehicle_pk(dealer_id, vin), "VEHICLE", consistent_read=True)
    except VehicleItem.DoesNotExist:
        return None


def set_vehicle_fields(dealer_id: str, vin: str, **values: Any) -> bool:
    """Set JSON fields (handover, confirmation, feedback, last_service, insurance) on a known vehicle."""
    bind()
    actions = [getattr(VehicleItem, name).set(value) for name, value in values.items()]
    return conditional_update(_vehicle_item(dealer_id, vin), actions, VehicleItem.pk.exists())


def hold_for_complaint(dealer_id: str, vin: str, complaint_id: str, *, open_: bool) -> bool:
    """Note a red-alert complaint on the dealer's vehicle as open (its overdue SMS pause, its
    collections task shows the hold) or as resolved; False when the dealer has no such vehicle."""
    bind()
    ids = {complaint_id}
    action = VehicleItem.red_complaints.add(ids) if open_ else VehicleItem.red_complaints.delete(ids)
    return conditional_update(_vehicle_item(dealer_id, vin), [action], VehicleItem.pk.exists())


def mark_reminded(vehicle: VehicleItem, reminder_id: str, now: datetime, *, cycle: bool) -> bool:
    """Note that a reminder about the vehicle went out (for a service `cycle`: that its reminder
    did), unless the vehicle moved on since `vehicle` was read: sold again, transferred, or (a
    cycle) serviced. Then whoever fired the reminder ends the tasks it opened, since the change
    that ended them may have looked before they existed: with `record_mileage`'s and the
    transfer's order of writes, one of the two always sees the other."""
    bind()
    actions: list[Any] = [VehicleItem.reminded_at.set(now)]
    unchanged = (
        VehicleItem.delivered_at == vehicle.delivered_at
    ) & VehicleItem.transferred_at.does_not_exist()
    if cycle:
        actions.append(VehicleItem.service_reminder_fired.set(reminder_id))
        unchanged &= VehicleItem.next_service == vehicle.next_service
    return conditional_update(_vehicle_item(vehicle.dealer_id, vehicle.vin), actions, unchanged)


def mark_transferred(tenure: Tenure, vin: str, at: datetime) -> bool:
    """The dealer's delivery `tenure` was superseded by another dealer's at `at`: its view ends there."""
    bind()
    return conditional_update(
        _vehicle_item(tenure.dealer_id, vin),
        [VehicleItem.transferred_at.set(at)],
        VehicleItem.delivered_at == tenure.delivered_at,
    )


MILEAGE_TRIES = 5


@dataclass(frozen=True)
class ServiceRecorded:
    """A service that became the vehicle's last one, and the service cycle it ended."""

    ended_cycle: dict[str, Any] | None
    ended_cycle_fired: bool


def record_mileage(
    vehicle: VehicleItem,
    km: int,
    read_at: datetime,
    service: dict[str, Any] | None = None,
    next_service: dict[str, Any] | None = None,
) -> ServiceRecorded | None:
    """Move the vehicle's odometer to a reading that moves it and, for a service (`kind`,
    `repair_order_id`) that becomes the last one, record it as such with the service cycle it
    starts (`next_service`); one update. What the service ended when it became the last one.

    Optimistic on what `vehicle` showed (a concurrent reading re-reads and decides again), so the
    odometer never moves back whatever order readings are applied in.
    """
    bind()
    current: VehicleItem | None = vehicle
    for _ in range(MILEAGE_TRIES):
        if current is None:
            return None
        shown_km = current.odometer_km
        shown_at = current.odometer_read_at
        actions: list[Any] = []
        if odometer.moves_odometer(shown_km, shown_at, km, read_at):
            actions += [VehicleItem.odometer_km.set(km), VehicleItem.odometer_read_at.set(read_at)]
        last = current.last_service
        last_at = datetime.fromisoformat(last["completed_at"]) if last else None
        becomes_last = service is not None and services.becomes_last_service(
            service["kind"], read_at, last_at
        )
        if becomes_last and service is not None:
            actions.append(
                VehicleItem.last_service.set(
                    {**service, "odometer_km": km, "completed_at": clock.iso(read_at)}
                )
            )
            if next_service is not None:
                actions.append(VehicleItem.next_service.set(next_service))
        if not actions:
            return None
        unchanged = (
            VehicleItem.odometer_read_at.does_not_exist()
            if shown_at is None
            else (VehicleItem.odometer_read_at == shown_at) & (VehicleItem.odometer_km == shown_km)
        )
        if becomes_last:
            unchanged &= (
                VehicleItem.last_service.does_not_exist()
                if last is None
                else VehicleItem.last_service == last
            )
            # Whether the cycle it ends was reminded, as read: a reminder firing meanwhile makes
            # this try again and see it (see `mark_cycle_reminded`).
            reminded = current.service_reminder_fired
            unchanged &= (
                VehicleItem.service_reminder_fired.does_not_exist()
                if reminded is None
                else VehicleItem.service_reminder_fired == reminded
            )
        if conditional_update(_vehicle_item(current.dealer_id, current.vin), actions, unchanged):
            if not becomes_last:
                return None
            ended = current.next_service
            was_reminded = ended is not None and current.service_reminder_fired == ended.get("reminder_id")
            return ServiceRecorded(ended, was_reminded)
        current = get_vehicle(current.dealer_id, current.vin)
    raise RuntimeError(f"readings of {vehicle.vin} kept changing its odometer")


def task_ref_item(dealer_id: str, vin: str, task_id: str, delivered_at: datetime) -> TaskRefItem:
    """The note, under the dealer's vehicle, of a task of one of its deliveries."""
    return TaskRefItem(
        vehicle_pk(dealer_id, vin), f"TASKREF#{task_id}", task_id=task_id, delivered_at=delivered_at
    )


def task_ids(tenure: Tenure, vin: str, *, before: bool = False) -> list[str]:
    """The dealer's tasks about the vehicle from the delivery `tenure` (`before`: from its earlier ones)."""
    bind()
    return [
        ref.task_id
        for ref in TaskRefItem.query(
            vehicle_pk(tenure.dealer_id, vin), TaskRefItem.sk.startswith("TASKREF#"), consistent_read=True
        )
        if isinstance(ref, TaskRefItem)
        and (ref.delivered_at < tenure.delivered_at if before else ref.delivered_at == tenure.delivered_at)
    ]


def put_wait(dealer_id: str, vin: str, partner_id: str, webhook_id: str) -> None:
    bind()
    WaitItem(
        vehicle_pk(dealer_id, vin), f"WAIT#{webhook_id}", partner_id=partner_id, webhook_id=webhook_id
    ).save()


def waiting(dealer_id: str, vin: str) -> list[tuple[str, str]]:
    """(partner id, webhook id) of the dealer's events waiting for its delivery of `vin`."""
    bind()
    return [
        (w.partner_id, w.webhook_id)
        for w in WaitItem.query(
            vehicle_pk(dealer_id, vin), WaitItem.sk.startswith("WAIT#"), consistent_read=True
        )
        if isinstance(w, WaitItem)
    ]


def wait_key(dealer_id: str, vin: str, webhook_id: str) -> tuple[str, str]:
    return vehicle_pk(dealer_id, vin), f"WAIT#{webhook_id}"


def delete_wait(dealer_id: str, vin: str, webhook_id: str) -> None:
    bind()
    WaitItem(*wait_key(dealer_id, vin, webhook_id)).delete()


def timeline_entry(
    owner_pk: str,
    occurred_at: datetime,
    webhook_id: str,
    event_type: str,
    partner_id: str,
    dealer_id: str | None,
    summary: dict[str, Any],
    *,
    reading: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
) -> TimelineItem:
    """An event's entry on a timeline (one per event and owner); written with the event's outcome.

    On a vehicle the entry is also the record of the reading or service the event carried, so
    applying an event writes one item, not three.
    """
    return TimelineItem(
        owner_pk,
        f"T#{clock.iso(occurred_at)}#{partner_id}#{webhook_id}",
        event_type=event_type,
        occurred_at=occurred_at,
        partner_id=partner_id,
        webhook_id=webhook_id,
        dealer_id=dealer_id,
        summary=summary,
        reading=reading,
        service=service,
    )


@dataclass
class VehicleRecords:
    """Everything one dealer holds about one vehicle: its item, and its timeline in time order,
    with the readings and services the timeline's events carried."""

    vehicle: VehicleItem | None = None
    timeline: list[TimelineItem] = field(default_factory=list)
    reminders: list[ReminderItem] = field(default_factory=list)

    @property
    def readings(self) -> list[dict[str, Any]]:
        """Each reading once (a resent one under another webhook id is the same reading), in time
        order; `applied` when it agrees with the odometer's history: not higher than any later
        reading (an older reading higher than a later one is kept, but does not count).

        Derived from the whole history, so it is the same whatever order readings arrived in.
        """
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in self.timeline:
            if entry.reading:
                seen.setdefault((entry.reading["read_at"], entry.reading["source"]), entry.reading)
        lowest_later: float | None = None
        out = []
        for reading in sorted(seen.values(), key=lambda r: (r["read_at"], r["source"]), reverse=True):
            applied = lowest_later is None or reading["km"] <= lowest_later
            lowest_later = reading["km"] if lowest_later is None else min(lowest_later, reading["km"])
            out.append({**reading, "applied": applied})
        return out[::-1]

    @property
    def services(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for entry in self.timeline:
            if entry.service:
                seen.setdefault(entry.service["repair_order_id"], entry.service)
        return list(seen.values())


def vehicle_records(dealer_id: str, vin: str) -> VehicleRecords:
    """The dealer's vehicle partition (profile and timeline) in one query."""
    bind()
    out = VehicleRecords()
    for item in Item.query(vehicle_pk(dealer_id, vin), consistent_read=True):
        if isinstance(item, VehicleItem):
            out.vehicle = item
        elif isinstance(item, TimelineItem):
            out.timeline.append(item)
        elif isinstance(item, ReminderItem):
            out.reminders.append(item)
    return out


def dealer_timeline_page(
    dealer_id: str, limit: int, cursor: str | None
) -> tuple[list[TimelineItem], str | None]:
    """One page of the dealer's timeline, newest first."""
    from chalicelib.store import decode_cursor, encode_cursor

    bind()
    pk = dealer_pk(dealer_id)
    start = decode_cursor(cursor, pk, "T#")
    result = TimelineItem.query(
        pk,
        TimelineItem.sk.startswith("T#"),
        consistent_read=True,
        scan_index_forward=False,
        limit=limit,
        last_evaluated_key=start,
    )
    found = [item for item in result if isinstance(item, TimelineItem)]
    return found, encode_cursor(result.last_evaluated_key) if len(found) == limit else None
