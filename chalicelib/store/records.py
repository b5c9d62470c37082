"""Customers, vehicles, odometer readings, service records and timeline entries.

Every write here is idempotent (upserts of the same values, or puts under keys derived from
the event), so an event processed twice after a crash converges to the same state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib import clock
from chalicelib.store import bind
from chalicelib.store.models import (
    CustomerItem,
    Item,
    OdometerItem,
    Person,
    ServiceItem,
    TimelineItem,
    VehicleItem,
)


def _set_or_remove(attribute: Any, value: Any) -> Any:
    """An update action that stores `value`, or drops the attribute when it is None."""
    return attribute.remove() if value is None else attribute.set(value)


def customer_pk(dealer_id: str, customer_id: str) -> str:
    """Customers belong to the dealer whose systems named them: ids are unique per dealer only."""
    return f"CUST#{dealer_id}#{customer_id}"


def vehicle_pk(vin: str) -> str:
    return f"VEH#{vin}"


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
            CustomerItem.updated_at.set(now),
        ]
    )


def get_customer(dealer_id: str, customer_id: str) -> CustomerItem | None:
    bind()
    try:
        return CustomerItem.get(customer_pk(dealer_id, customer_id), "CUSTOMER")
    except CustomerItem.DoesNotExist:
        return None


def upsert_delivery(vin: str, dealer_id: str, fields: dict[str, Any]) -> bool:
    """Record a delivery on the vehicle item, unless a later delivery is already recorded.

    A newer delivery (the car resold) starts a fresh handover; replaying the same one changes
    nothing. Odometer and service history belong to the car and stay. False when stale.
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
    item = VehicleItem(vehicle_pk(vin), "VEHICLE")
    try:
        item.update(
            actions=common,
            condition=VehicleItem.pk.does_not_exist() | (VehicleItem.delivered_at == delivered_at),
        )
        return True
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
    fresh_start = [
        VehicleItem.handover.remove(),
        VehicleItem.handover_confirmation.remove(),
        VehicleItem.delivery_feedback.remove(),
    ]
    try:
        item.update(actions=common + fresh_start, condition=VehicleItem.delivered_at < delivered_at)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def get_vehicle(vin: str) -> VehicleItem | None:
    bind()
    try:
        return VehicleItem.get(vehicle_pk(vin), "VEHICLE", consistent_read=True)
    except VehicleItem.DoesNotExist:
        return None


def set_vehicle_fields(vin: str, **values: Any) -> bool:
    """Set JSON fields (handover, confirmation, feedback, last_service) on a known vehicle."""
    bind()
    actions = [getattr(VehicleItem, name).set(value) for name, value in values.items()]
    try:
        VehicleItem(vehicle_pk(vin), "VEHICLE").update(actions=actions, condition=VehicleItem.pk.exists())
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def advance_odometer(vin: str, km: int, read_at: datetime) -> bool:
    """Move the vehicle's odometer forward to a newer, not lower reading; never back. True when it moved."""
    bind()
    never_read = VehicleItem.odometer_read_at.does_not_exist()
    try:
        VehicleItem(vehicle_pk(vin), "VEHICLE").update(
            actions=[VehicleItem.odometer_km.set(km), VehicleItem.odometer_read_at.set(read_at)],
            # Newer in time and not lower in km: two readings checked before either was applied
            # (and processed in either order) can never move the odometer back.
            condition=VehicleItem.pk.exists()
            & (never_read | ((VehicleItem.odometer_read_at < read_at) & (VehicleItem.odometer_km <= km))),
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def put_odometer(vin: str, km: int, read_at: datetime, source: str, applied: bool) -> None:
    bind()
    OdometerItem(
        vehicle_pk(vin),
        f"ODO#{clock.iso(read_at)}#{source}",
        odometer_km=km,
        read_at=read_at,
        source=source,
        applied=applied,
    ).save()


def put_service(
    vin: str, dealer_id: str, order_id: str, kind: str, km: int, completed_at: datetime, items: list[str]
) -> None:
    bind()
    ServiceItem(
        vehicle_pk(vin),
        f"SVC#{clock.iso(completed_at)}#{order_id}",
        repair_order_id=order_id,
        kind=kind,
        odometer_km=km,
        completed_at=completed_at,
        items=items,
        dealer_id=dealer_id,
    ).save()


def put_timeline(
    owner_pk: str,
    occurred_at: datetime,
    webhook_id: str,
    event_type: str,
    partner_id: str,
    dealer_id: str | None,
    summary: dict[str, Any],
) -> None:
    bind()
    TimelineItem(
        owner_pk,
        f"T#{clock.iso(occurred_at)}#{partner_id}#{webhook_id}",
        event_type=event_type,
        occurred_at=occurred_at,
        partner_id=partner_id,
        webhook_id=webhook_id,
        dealer_id=dealer_id,
        summary=summary,
    ).save()


def vehicle_partition(vin: str) -> list[Item]:
    """Everything stored under a vehicle (profile, readings, services, timeline) in one query."""
    bind()
    return list(Item.query(vehicle_pk(vin), consistent_read=True))
