"""Checks that need stored state before an event may be accepted (a 422 now, never a failure later).

The odometer rule of DESIGN.md §6: a reading (an `odometer.reported`, or the odometer of a
`service.completed`) that implies more than 2,000 km a day since the latest *accepted* reading,
or a lower odometer at a later time, is refused. The latest accepted reading sits on the VIN's
ownership item and moves with a conditional update, optimistic on its previous value, so two
readings sent back to back are judged one after the other. The check runs only against the
sender's own vehicle: a reading about another dealer's VIN (or one nobody delivered) is not
judged at all, so its answer cannot tell the VIN is known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib import errors
from chalicelib.domain import odometer

if TYPE_CHECKING:
    from chalicelib.store import records

READINGS: dict[str, Callable[[Any], tuple[int, datetime]]] = {
    "odometer.reported": lambda data: (data.odometer_km, data.read_at),
    "service.completed": lambda data: (data.odometer_km, data.completed_at),
}
MAX_TRIES = 5


@dataclass(frozen=True)
class Reservation:
    """A reading recorded as the latest accepted one before its event is stored; undone if it is not."""

    owner: records.Owner
    km: int
    read_at: datetime

    def release(self) -> None:
        from chalicelib.store import records

        records.release_reading(self.owner, self.km, self.read_at)


def implausible(why: str, field: str) -> errors.Invalid:
    return errors.Invalid(
        f"The reading is implausible: {why}.",
        code="implausible",
        errors=[{"field": field, "message": f"implausible: {why}"}],
    )


def precheck(partner_kind: str, partner_id: str, event_type: str, data: Any) -> Reservation | None:
    """Judge a reading against the sender's own vehicle; reserve it as the latest accepted one.

    Costs a read (and, for a new latest reading, a conditional write) only for events that carry
    an odometer reading; raises `errors.Invalid` when the reading is implausible.
    """
    reading = READINGS.get(event_type)
    if reading is None or partner_kind != "dealer":
        return None
    km, read_at = reading(data)
    from chalicelib.store import records  # only events that carry a reading read the store here

    for _ in range(MAX_TRIES):
        owner = records.get_owner(data.vin)
        if owner is None or owner.dealer_id != partner_id:
            return None
        why = odometer.implausibility(owner.accepted_km, owner.accepted_read_at, km, read_at)
        if why is not None:
            raise implausible(why, "data.odometer_km")
        if owner.accepted_read_at is not None and read_at <= owner.accepted_read_at:
            return None  # history: recorded, never lowers the odometer, moves nothing
        if records.reserve_reading(owner, km, read_at):
            return Reservation(owner, km, read_at)
    raise errors.Unavailable(
        "Readings for this vehicle arrive faster than they can be judged; send again.",
        code="busy",
        reason="contention",
    )
