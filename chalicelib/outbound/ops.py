"""Messages to ops about vehicles changing hands (DESIGN.md §4, §7): every transfer, every conflict."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.store.outbox import Message
from chalicelib.store.records import Tenure


def _to_ops(outbox_id: str, body: dict[str, str], kind: str, dealer_id: str, source: str) -> Message:
    return Message(
        outbox_id,
        "topic",
        "ops",
        json.dumps(body, ensure_ascii=False),
        {"kind": kind, "dealer_id": dealer_id},
        source=source,
    )


def vehicle_transferred(vin: str, previous: Tenure, tenure: Tenure, webhook_id: str) -> Message:
    """A later delivery by another dealer took the vehicle over (a resale); earlier tasks are cancelled."""
    body = {
        "event": "vehicle.transferred",
        "vin": vin,
        "from_dealer_id": previous.dealer_id,
        "from_delivered_at": clock.iso(previous.delivered_at),
        "to_dealer_id": tenure.dealer_id,
        "to_delivered_at": clock.iso(tenure.delivered_at),
        "webhook_id": webhook_id,
    }
    outbox_id = f"vehicle-transferred#{vin}#{clock.iso(tenure.delivered_at)}"
    return _to_ops(outbox_id, body, "vehicle_transfer", tenure.dealer_id, webhook_id)


def delivery_conflict(vin: str, current: Tenure, attempted: Tenure, webhook_id: str) -> Message:
    """Another dealer delivered a VIN at or before the current delivery: people must sort it out."""
    body = {
        "event": "delivery.conflict",
        "vin": vin,
        "current_dealer_id": current.dealer_id,
        "current_delivered_at": clock.iso(current.delivered_at),
        "dealer_id": attempted.dealer_id,
        "delivered_at": clock.iso(attempted.delivered_at),
        "webhook_id": webhook_id,
    }
    # Once per conflicting delivery, however many times (and under whichever ids) it is sent.
    outbox_id = f"delivery-conflict#{vin}#{attempted.dealer_id}#{clock.iso(attempted.delivered_at)}"
    return _to_ops(outbox_id, body, "delivery_conflict", attempted.dealer_id, webhook_id)
