"""Odometer readings and workshop visits: the vehicle's odometer, history and last service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain.ownership import Tenure
from chalicelib.events.vehicle import OdometerReported, ServiceCompleted
from chalicelib.service.handlers import Context, Effects, handles, vehicle_of
from chalicelib.service.ownership import Target
from chalicelib.store import records


def _reading(
    ctx: Context,
    target: Target,
    km: int,
    read_at: datetime,
    source: str,
    service: dict[str, Any] | None = None,
) -> dict[str, Any]:
    dealer_id, vehicle = vehicle_of(target)
    records.record_mileage(vehicle, km, read_at, service)
    if ctx.waited:
        # Accepted before the delivery, so never reserved: the next reading is judged against it too.
        records.raise_reading(Tenure(dealer_id, vehicle.delivered_at), vehicle.vin, km, read_at)
    return {"km": km, "read_at": clock.iso(read_at), "source": source}


@handles(OdometerReported)
def on_odometer(ctx: Context, data: OdometerReported, target: Target, effects: Effects) -> None:
    effects.reading = _reading(ctx, target, data.odometer_km, data.read_at, data.source)


@handles(ServiceCompleted)
def on_service(ctx: Context, data: ServiceCompleted, target: Target, effects: Effects) -> None:
    """A service is a reading too (its odometer at `completed_at`); a first service or maintenance
    becomes the vehicle's last service unless a newer one is recorded."""
    effects.service = {
        "repair_order_id": data.repair_order_id,
        "kind": data.kind,
        "odometer_km": data.odometer_km,
        "completed_at": clock.iso(data.completed_at),
        "items": list(data.items),
    }
    last = {"kind": data.kind, "repair_order_id": data.repair_order_id}
    effects.reading = _reading(ctx, target, data.odometer_km, data.completed_at, "service", last)
