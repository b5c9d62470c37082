"""Odometer plausibility (DESIGN.md §6): readings never lower the odometer; jumps are rejected."""

from __future__ import annotations

from datetime import datetime

MAX_KM_PER_DAY = 2000


def implausibility(
    latest_km: float | None, latest_at: datetime | None, km: float, read_at: datetime
) -> str | None:
    """Why a reading is implausible given the latest known one, or None when it is acceptable.

    A reading older than (or as old as) the latest is history: it is kept and never lowers the
    vehicle's odometer, so it is not judged against the latest.
    """
    if latest_km is None or latest_at is None or read_at <= latest_at:
        return None
    distance = km - latest_km
    if distance < 0:
        return f"the odometer went back {-distance:g} km since the reading of {latest_at.isoformat()}"
    days = (read_at - latest_at).total_seconds() / 86400
    if distance > MAX_KM_PER_DAY * days:
        return f"{distance:g} km in {days:.2f} days exceeds {MAX_KM_PER_DAY} km a day"
    return None


def moves_odometer(
    current_km: float | None, current_at: datetime | None, km: float, read_at: datetime
) -> bool:
    """Whether a reading moves the vehicle's odometer: the odometer shows the latest reading (of
    two at one instant, the higher), whatever order readings are applied in.

    A later reading was judged at accept time against the latest then accepted, so it is never
    lower than a reading accepted before it; an older reading (history, never judged) never moves
    the odometer, so a late, absurd one cannot set it.
    """
    if current_km is None or current_at is None:
        return True
    return read_at > current_at or (read_at == current_at and km > current_km)
