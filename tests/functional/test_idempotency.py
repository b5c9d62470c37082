"""Every handler is idempotent under re-delivery and order: run twice, and interleaved with the
neighbouring events of the same vehicle in both orders, the final state is the same.

Each variant runs on a vehicle of its own in one table; states are compared with the VIN and the
webhook ids taken out.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.functional.test_lifecycle import body_of

NEIGHBOURS = ("odometer.reported", "handover.submitted")


def handled_types() -> list[str]:
    from chalicelib.events import EVENT_SPECS
    from chalicelib.service.handlers import HANDLERS

    # The dealers' events; the finance arm's (loans) and HQ's (feedback replies) have their own
    # order tests in test_loans and test_cases.
    return sorted(t for t in {*HANDLERS, "vehicle.delivered"} if "dealer" in EVENT_SPECS[t].kinds)


BELOW_FIRST_REMINDER_KM = 3000


def on_vehicle(event_type: str, vin: str) -> dict[str, Any]:
    payload = copy.deepcopy(example(event_type))
    if "vin" in payload["data"]:
        payload["data"]["vin"] = vin
    for name in ("complaint_id", "lead_id", "feedback_id"):  # each variant's own record
        if name in payload["data"]:
            payload["data"][name] = f"{payload['data'][name]}-{vin}"
    if event_type == "odometer.reported":
        # Below the first-service threshold: a reading that crosses it sends an SMS, and whether it
        # does depends on order by design (a reminder for a service already done is never sent;
        # one sent is never unsent). test_reminders covers that reading run twice and reordered.
        payload["data"]["odometer_km"] = BELOW_FIRST_REMINDER_KM
    return payload


def state(harness: Harness, vin: str) -> Any:
    """The dealer's view of the vehicle and its tasks, without what names this variant."""
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{vin}"))
    tasks = [t for t in body_of(harness.get("/dealers/dealer-a/tasks?limit=100"))["items"] if t["vin"] == vin]
    for entry in view["timeline"]:
        entry.pop("webhook_id")
    text = json.dumps(
        {"view": view, "tasks": sorted((t["kind"], t["status"]) for t in tasks)}, sort_keys=True
    )
    # Ids derived from the VIN (reminders, the tasks they opened) differ per variant by design.
    return json.loads(re.sub(r"\b([a-z_]+)-[0-9a-f]{16}\b", r"\1-ID", text.replace(vin, "VIN")))


def run(harness: Harness, vin: str, order: list[str], twice: str | None) -> Any:
    """Accept the vehicle's events, then apply them in `order` (the one named `twice` twice over,
    as after a crash before its outcome was written)."""
    from chalicelib.service import work
    from chalicelib.store import inbox
    from chalicelib.store.models import InboxItem

    real = harness.stream.handler
    harness.stream.handler = lambda event, context: None
    for event_type in order:
        assert (
            harness.post("dealer-a", on_vehicle(event_type, vin), msg_id=f"{vin}-{event_type}").status_code
            == 202
        )
    harness.drain()
    harness.stream.handler = real
    for event_type in order:
        ref = work.inbox_ref("dealer-a", f"{vin}-{event_type}")
        assert work.handle(ref) in ("applied", "waiting")
        if event_type == twice:
            key = inbox.InboxRef("dealer-a", f"{vin}-{event_type}").key
            InboxItem(*key).update(actions=[InboxItem.status.set("pending")])
            assert work.handle(ref) == "applied"
    harness.drain()
    return state(harness, vin)


@pytest.mark.parametrize("event_type", handled_types())
def test_a_handler_run_twice_and_in_either_order_ends_in_the_same_state(
    harness: Harness, event_type: str
) -> None:
    neighbours = [n for n in NEIGHBOURS if n != event_type]
    rest = [event_type, *neighbours] if event_type != "vehicle.delivered" else list(NEIGHBOURS)
    first = ["vehicle.delivered", *rest]
    once = run(harness, "LSVAU2180N2000001", first, twice=None)
    twice = run(harness, "LSVAU2180N2000002", first, twice=event_type)
    reordered = ["vehicle.delivered", *reversed(rest)]
    other_order = run(harness, "LSVAU2180N2000003", reordered, twice=event_type)
    assert json.dumps(twice, indent=1, sort_keys=True) == json.dumps(once, indent=1, sort_keys=True)
    assert json.dumps(other_order, indent=1, sort_keys=True) == json.dumps(once, indent=1, sort_keys=True)
