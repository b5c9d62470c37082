"""Whose vehicle an event is about (DESIGN.md §3 "Whose data", §4 transfers). Pure rules, no I/O.

The service layer reads the state (the sender's own vehicle record, the VIN's current delivery)
and asks these functions what the state means; the answers decide where an event may apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

UNKNOWN_VEHICLE = "unknown_vehicle"
FOREIGN_VEHICLE = "foreign_vehicle"
STALE_DELIVERY = "stale_delivery"
DELIVERY_CONFLICT = "delivery_conflict"
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Tenure:
    """One dealer's delivery of a VIN: the vehicle is that dealer's from `delivered_at` on."""

    dealer_id: str
    delivered_at: datetime


Standing = Literal["current", "history", "waits"]


def standing(transferred_at: datetime | None, exists: bool, occurred: datetime) -> Standing:
    """What the sender's own record of a vehicle allows an event that happened at `occurred`.

    - ``current``: the sender delivered the car and still has it: the event applies;
    - ``history``: another dealer took it over, after the event happened (it was in flight):
      it joins the sender's history;
    - ``waits``: the sender never delivered it, or the event happened after the transfer: it
      waits for the sender's own delivery, exactly as for a VIN nobody delivered.
    """
    if not exists:
        return "waits"
    if transferred_at is None:
        return "current"
    return "history" if occurred <= transferred_at else "waits"


def wait_reason(owner_dealer: str | None, sender: str) -> str:
    """Why an event waits, for ops only: another dealer's vehicle, or one nobody delivered."""
    return FOREIGN_VEHICLE if owner_dealer is not None and owner_dealer != sender else UNKNOWN_VEHICLE


Claim = Literal["claim", "replay", "superseded", "stale", "conflict"]


def classify_delivery(current: Tenure | None, claimed_before: frozenset[Tenure], delivery: Tenure) -> Claim:
    """What a delivery means against the VIN's current one (§4).

    - ``claim``: the first delivery, or a later one (the same dealer selling it again, or another
      dealer's: a transfer): it becomes current;
    - ``replay``: it is the current one (processed again after a crash): finish it;
    - ``superseded``: it was current once and a later one has taken over: record it as history;
    - ``stale``: the same dealer's older delivery: ignored;
    - ``conflict``: another dealer's delivery at the same time or earlier: ignored, ops told.
    """
    if current is None:
        return "claim"
    if current == delivery:
        return "replay"
    if delivery in claimed_before:
        return "superseded"
    if delivery.delivered_at <= current.delivered_at:
        return "stale" if current.dealer_id == delivery.dealer_id else "conflict"
    return "claim"


def successor(tenures: list[Tenure], ended: Tenure) -> Tenure | None:
    """The delivery that followed `ended` among a VIN's deliveries, if any."""
    later = sorted((t for t in tenures if t.delivered_at > ended.delivered_at), key=lambda t: t.delivered_at)
    return later[0] if later else None
