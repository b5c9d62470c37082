"""The one clock. Every time-driven rule asks `now()`; tests and `clm sweep --at` pin it.

Two kinds of time: business time (`now`: deadlines, reminders, the age of a webhook), which
`clm sweep --at` may move to any instant, and housekeeping time (`system_now`: re-driving
stuck work, expiring events that wait for a delivery), which follows the real clock so that a
sweep far ahead re-drives and expires nothing (DESIGN.md §9). Tests pin both. Nothing else in
the code base reads the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_pinned: datetime | None = None
_pinned_system: datetime | None = None


def now() -> datetime:
    """The current business instant (UTC, timezone-aware), or the pinned one."""
    return _pinned if _pinned is not None else datetime.now(UTC)


def system_now() -> datetime:
    """The real instant for housekeeping; only tests pin it (`pin_system`)."""
    return _pinned_system if _pinned_system is not None else datetime.now(UTC)


def _aware(instant: datetime | None) -> datetime | None:
    if instant is not None and instant.tzinfo is None:
        raise ValueError("the clock takes timezone-aware instants only")
    return instant.astimezone(UTC) if instant is not None else None


def pin(instant: datetime | None) -> None:
    """Pin business time to `instant` (aware), or release it with None."""
    global _pinned
    _pinned = _aware(instant)


def pin_system(instant: datetime | None) -> None:
    """Pin housekeeping time too (tests), or release it with None."""
    global _pinned_system
    _pinned_system = _aware(instant)


@contextmanager
def pinned(instant: datetime) -> Iterator[datetime]:
    """Run a block as of business instant `instant`, then restore whatever was pinned before."""
    previous = _pinned
    pin(instant)
    try:
        yield now()
    finally:
        pin(previous)


def iso(instant: datetime) -> str:
    """Canonical UTC ISO 8601 text used for sort keys and API output (sorts as time)."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
