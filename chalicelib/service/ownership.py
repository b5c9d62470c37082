"""Whose data an event may touch (DESIGN.md §3, "Whose data"). Every event but a delivery passes here.

The event registry says what each type is about (`EventSpec.subject`); this module turns that
into the one dealer whose records the event may change, and that dealer's vehicle when the event
names one. A handler receives the result and writes only under that dealer's keys, so a new
event type cannot forget the rule:

- a dealer's vehicle event applies only while the sender is the vehicle's dealer; otherwise it
  waits, exactly as for a VIN nobody delivered (only ops learn `foreign_vehicle`);
- a record event (customer, complaint, lead, loan, dealer) belongs to its sender (for the finance
  arm, to the loan's dealer) and never waits; a `vin` it carries is linked only if it is that
  dealer's own vehicle;
- the finance arm's vehicle events (insurance) apply to the vehicle's current dealer, and never wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.events import EventSpec
from chalicelib.store import records
from chalicelib.store.models import VehicleItem

UNKNOWN_VEHICLE = "unknown_vehicle"
FOREIGN_VEHICLE = "foreign_vehicle"


class NotReady(Exception):
    """The vehicle's delivery is being applied right now: retry in a moment."""


@dataclass(frozen=True)
class Target:
    """What an event applies to: the dealer whose records it changes, and that dealer's vehicle if any."""

    dealer_id: str | None
    vehicle: VehicleItem | None = None


@dataclass(frozen=True)
class Wait:
    """The event must wait for `dealer_id`'s delivery of `vin`; `ops_reason` is for ops only."""

    dealer_id: str
    vin: str
    ops_reason: str


def dealer_of(partner_kind: str, partner_id: str, data: Any) -> str | None:
    """The dealer an event speaks for: a dealer itself, or the dealer a finance event names."""
    if partner_kind == "dealer":
        return partner_id
    found = getattr(data, "dealer_id", None)
    return found if isinstance(found, str) else None


def current_vehicle(owner: records.Owner) -> VehicleItem:
    """The current dealer's vehicle item for the current delivery (written before the claim settles)."""
    vehicle = records.get_vehicle(owner.dealer_id, owner.vin)
    if vehicle is None or vehicle.delivered_at != owner.delivered_at:
        raise NotReady(f"the delivery of {owner.vin} is being applied")
    return vehicle


def own_vehicle(dealer_id: str | None, vin: str | None) -> VehicleItem | None:
    """`vin` as `dealer_id`'s own vehicle, or None when it is not theirs (or nobody's)."""
    if not dealer_id or not vin:
        return None
    owner = records.get_owner(vin)
    if owner is None or owner.dealer_id != dealer_id:
        return None
    return current_vehicle(owner)


def earlier_history(dealer_id: str, vin: str, occurred: datetime) -> VehicleItem | None:
    """The sender's own vehicle as it was before another dealer took it over, when the event
    happened before that transfer (it was in flight): it belongs to the sender's history."""
    vehicle = records.get_vehicle(dealer_id, vin)
    if vehicle is not None and vehicle.transferred_at is not None and occurred <= vehicle.transferred_at:
        return vehicle
    return None


def resolve(
    spec: EventSpec, partner_kind: str, partner_id: str, data: Any, occurred: datetime
) -> Target | Wait:
    """Where an accepted event applies, or that it must wait for a delivery.

    `occurred` is when the event happened (its reading, service, or sending time).
    """
    if spec.subject == "delivery":
        raise ValueError("a delivery decides its own ownership (service.delivery)")
    dealer_id = dealer_of(partner_kind, partner_id, data)
    if spec.subject == "record":
        return Target(dealer_id, own_vehicle(dealer_id, getattr(data, "vin", None)))
    vin: str = data.vin  # every vehicle event names one
    owner = records.get_owner(vin)
    if partner_kind != "dealer":
        return Target(None) if owner is None else Target(owner.dealer_id, current_vehicle(owner))
    assert dealer_id is not None
    if owner is None:
        return Wait(dealer_id, vin, UNKNOWN_VEHICLE)
    if owner.dealer_id != dealer_id:
        history = earlier_history(dealer_id, vin, occurred)
        if history is not None:
            return Target(dealer_id, history)
        return Wait(dealer_id, vin, FOREIGN_VEHICLE)
    return Target(dealer_id, current_vehicle(owner))
