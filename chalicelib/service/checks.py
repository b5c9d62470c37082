"""Checks that need stored state before an event may be accepted (a 422, not a later failure)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain import odometer
from chalicelib.inbound.problems import Problem


def precheck(event: Any) -> None:
    """Reject what the stored state shows to be impossible. Costs a read only for odometer events."""
    if event.type != "odometer.reported":
        return
    from chalicelib.store import records

    data = event.data
    vehicle = records.get_vehicle(data.vin)
    if vehicle is None:
        return
    why = odometer.implausibility(
        vehicle.odometer_km, vehicle.odometer_read_at, data.odometer_km, data.read_at
    )
    if why is not None:
        raise Problem(
            422,
            "implausible",
            "Unprocessable Content",
            f"The reading is implausible: {why}.",
            [{"field": "data.odometer_km", "message": f"implausible: {why}"}],
            reason="implausible",
        )
