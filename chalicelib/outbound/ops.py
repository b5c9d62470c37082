"""Messages to ops about vehicles changing hands (DESIGN.md §4, §7): every transfer, every conflict."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.store.outbox import Message
from chalicelib.store.records import Tenure


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
    return Message(
        f"vehicle-transferred#{vin}#{clock.iso(tenure.delivered_at)}",
        "topic",
        "ops",
        json.dumps(body, ensure_ascii=False),
        {"kind": "vehicle_transfer", "dealer_id": tenure.dealer_id},
        source=webhook_id,
    )


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
    return Message(
        f"delivery-conflict#{attempted.dealer_id}#{webhook_id}",
        "topic",
        "ops",
        json.dumps(body, ensure_ascii=False),
        {"kind": "delivery_conflict", "dealer_id": attempted.dealer_id},
        source=webhook_id,
    )
