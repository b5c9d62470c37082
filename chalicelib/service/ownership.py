"""Whose data an event may touch (DESIGN.md §3, "Whose data"). Every event but a delivery passes here.

The event registry says what each type is about (`EventSpec.subject`); this module reads the
state and lets `domain.ownership` decide the one dealer whose records the event may change, and
that dealer's vehicle when the event names one. Handlers receive the result and write only under
that dealer's keys, so a new event type cannot forget the rule:

- a dealer's vehicle event applies only to the sender's own current vehicle (or, if it happened
  before another dealer took the car over, to the sender's history of it); otherwise it waits,
  exactly as for a VIN nobody delivered (only ops learn `foreign_vehicle`);
- a record event (customer, complaint, lead, loan, dealer) belongs to its sender (for the finance
  arm, to the loan's dealer) and never waits; a `vin` it carries is linked only if it is that
  dealer's own current vehicle;
- the finance arm's vehicle events (insurance) apply to the vehicle's current dealer, never waiting.

The sender's own vehicle record answers most of it in one read: deliveries keep it current
(`transferred_at` once another dealer took over, set when the transfer settles).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain import ownership as rules
from chalicelib.events import EventSpec
from chalicelib.store import records
from chalicelib.store.models import VehicleItem


class NotReady(Exception):
    """The vehicle's current delivery is being applied right now: retry in a moment."""


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
    """The dealer an event speaks for: a dealer itself, the dealer a finance event names, or the
    dealer of the finance partner's loan it names (`loan.settled`)."""
    if partner_kind == "dealer":
        return partner_id
    found = getattr(data, "dealer_id", None)
    if isinstance(found, str):
        return found
    loan_id = getattr(data, "loan_id", None)
    if partner_kind == "finance" and isinstance(loan_id, str):
        from chalicelib.store import loans

        return loans.dealer_of(partner_id, loan_id)
    return None


def _current(dealer_id: str | None, vin: str | None) -> VehicleItem | None:
    """`vin` as `dealer_id`'s own current vehicle, or None."""
    if not dealer_id or not vin:
        return None
    vehicle = records.get_vehicle(dealer_id, vin)
    return vehicle if vehicle is not None and vehicle.transferred_at is None else None


def resolve(
    spec: EventSpec, partner_kind: str, partner_id: str, data: Any, occurred: datetime
) -> Target | Wait:
    """Where an accepted event applies, or that it must wait for a delivery.

    `occurred` is when the event happened (its reading, its service, or its sending).
    """
    if spec.subject == "delivery":
        raise ValueError("a delivery decides its own ownership (service.handlers.deliveries)")
    dealer_id = dealer_of(partner_kind, partner_id, data)
    if spec.subject == "record":
        return Target(dealer_id, _current(dealer_id, getattr(data, "vin", None)))
    vin: str = data.vin  # every vehicle event names one
    if partner_kind != "dealer":
        owner = records.get_owner(vin)
        if owner is None:
            return Target(None)
        vehicle = _current(owner.dealer_id, vin)
        if vehicle is None:
            raise NotReady(f"the delivery of {vin} is being applied")
        return Target(owner.dealer_id, vehicle)
    assert dealer_id is not None
    vehicle = records.get_vehicle(dealer_id, vin)
    standing = rules.standing(vehicle.transferred_at if vehicle else None, vehicle is not None, occurred)
    if standing != "waits":
        return Target(dealer_id, vehicle)
    owner = records.get_owner(vin)
    return Wait(dealer_id, vin, rules.wait_reason(owner.dealer_id if owner else None, dealer_id))
