"""The one clock. Every time-driven rule asks `now()`; tests and `clm sweep --at` pin it.

Nothing else in the code base reads the wall clock, so any instant can be replayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_pinned: datetime | None = None


def now() -> datetime:
    """The current instant (UTC, timezone-aware), or the pinned one."""
    return _pinned if _pinned is not None else datetime.now(UTC)


def pin(instant: datetime | None) -> None:
    """Pin the clock to `instant` (aware), or release it with None."""
    global _pinned
    if instant is not None and instant.tzinfo is None:
        raise ValueError("the clock takes timezone-aware instants only")
    _pinned = instant.astimezone(UTC) if instant is not None else None


@contextmanager
def pinned(instant: datetime) -> Iterator[datetime]:
    """Run a block as of `instant`, then restore whatever was pinned before."""
    previous = _pinned
    pin(instant)
    try:
        yield now()
    finally:
        pin(previous)


def iso(instant: datetime) -> str:
    """Canonical UTC ISO 8601 text used for sort keys and API output (sorts as time)."""
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
