"""One registry of typed event handlers, grouped by capability (one module each).

A handler is registered beside the capability it belongs to with `@handles(EventModel)`; it
receives the event's own pydantic model, where the event applies (`Target`, decided by
`service.ownership` before any handler runs), and the `Effects` it adds to: the unconditional
writes that go out with the event's outcome in one batch, and the reading or service record the
vehicle's timeline entry carries. Conditional updates (a task closed, the odometer moved) a
handler makes itself, through the store.

Event types without a handler are still kept: the runner writes their timeline entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from chalicelib.domain.tasks import NewTask
from chalicelib.events import EVENT_SPECS
from chalicelib.events.common import EventData
from chalicelib.service.ownership import Target


@dataclass(frozen=True)
class Context:
    """Who sent the event and when; `waited`: it waited for its delivery (no accept-time check saw it
    as the sender's own vehicle)."""

    partner_id: str
    partner_kind: str
    webhook_id: str
    event_type: str
    received_at: datetime
    now: datetime
    waited: bool = False


@dataclass
class Effects:
    """What applying one event writes with its outcome (one BatchWriteItem)."""

    puts: list[Any] = field(default_factory=list)
    reading: dict[str, Any] | None = None  # carried by the vehicle's timeline entry
    service: dict[str, Any] | None = None
    ignored: str | None = None  # the event applies to nothing, for this reason (its outcome says so)


Handler = Callable[[Context, Any, Target, Effects], None]
HANDLERS: dict[str, Handler] = {}
MODELS: dict[str, type[EventData]] = {spec.type: spec.model for spec in EVENT_SPECS.values()}
H = TypeVar("H", bound=Callable[..., None])


def handles(*models: type[EventData]) -> Callable[[H], H]:
    """Register a handler for the event types whose data models are `models`."""

    def register(handler: H) -> H:
        for model in models:
            types = [t for t, m in MODELS.items() if m is model]
            if not types:
                raise ValueError(f"{model.__name__} is the model of no registered event type")
            for event_type in types:
                if event_type in HANDLERS:
                    raise ValueError(f"{event_type} has two handlers")
                HANDLERS[event_type] = handler
        return handler

    return register


def open_task(
    ctx: Context, dealer_id: str, task: NewTask, effects: Effects, delivered_at: datetime | None = None
) -> bool:
    """Open a task in the event's batch (`service.tasks.open_task`); True when this run opened it."""
    from chalicelib.service.tasks import open_task as opening

    return opening(dealer_id, task, ctx.now, effects.puts, delivered_at)


def vehicle_of(target: Target) -> tuple[str, Any]:
    """The dealer and its vehicle an event resolved to (`ownership` guarantees both for vehicle events)."""
    assert target.dealer_id is not None and target.vehicle is not None, "resolved to the sender's vehicle"
    return target.dealer_id, target.vehicle


# The capability modules register their handlers as they are imported.
from chalicelib.service.handlers import care, customers, dealers, finance, mileage, vehicles  # noqa: E402, F401
