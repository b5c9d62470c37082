"""Workshop visits (DESIGN.md §6, mileage paragraph): which service restarts the maintenance cycle."""

from __future__ import annotations

from datetime import datetime

CYCLE_KINDS = frozenset({"first_service", "maintenance"})
"""Services after which the next one is due at their odometer + interval and date + interval."""


def becomes_last_service(kind: str, completed_at: datetime, last_completed_at: datetime | None) -> bool:
    """Whether a service becomes the vehicle's last one: a first service or maintenance, not older
    than the last recorded (a repair never restarts the cycle; a late-arriving older one never
    replaces a newer one)."""
    return kind in CYCLE_KINDS and (last_completed_at is None or completed_at >= last_completed_at)
