"""Whose data an event may touch, and what its sender learns of its fate (DESIGN.md §3, §4, §6).

Dealer A (`dealer-a`) delivered the example VIN; dealer B (`dealer-b`) is a second, hostile
dealer. Everything B sends about A's vehicle must read, to B, exactly like an event about a VIN
nobody delivered, and change nothing of A's.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import NOW, Harness, example
from tests.functional.test_lifecycle import body_of, subscribe

A, B = "dealer-a", "dealer-b"
VIN = "LSVAU2180N2123456"
NOBODYS_VIN = "LSVAU2180N2000000"
DELIVERED_AT = datetime.fromisoformat(example("vehicle.delivered")["data"]["delivered_at"])


def event(event_type: str, vin: str = VIN, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(example(event_type))
    if "vin" in payload["data"]:
        payload["data"]["vin"] = vin
    payload["data"].update(changes)
    return payload


def vehicle_types(kind: str = "dealer") -> list[str]:
    from chalicelib.events import EVENT_SPECS

    return sorted(t for t, spec in EVENT_SPECS.items() if spec.subject == "vehicle" and kind in spec.kinds)


def outcome(harness: Harness, sender: str, webhook_id: str, reader: str | None = None) -> Any:
    response = harness.get(f"/partners/{sender}/events/{webhook_id}", partner_id=reader or sender)
    return response.status_code, body_of(response)


def comparable(found: dict[str, Any]) -> dict[str, Any]:
    """An outcome without what differs between any two events (their id and arrival time)."""
    return {k: v for k, v in found.items() if k not in ("id", "received_at")}


def view(harness: Harness, dealer: str, vin: str = VIN) -> Any:
    response = harness.get(f"/dealers/{dealer}/vehicles/{vin}", partner_id=dealer)
    return body_of(response) if response.status_code == 200 else response.status_code


def deliver_to_a(harness: Harness) -> None:
    assert harness.post(A, example("vehicle.delivered"), msg_id="a-delivery").status_code == 202
    harness.drain()


def read_emf(out: str, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [m for m in lines if m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == name]


# --- every vehicle event, from a foreign dealer ---------------------------------------------------


def test_the_registry_gives_every_event_type_a_subject_and_handlers_only_for_known_types() -> None:
    from chalicelib.events import EVENT_SPECS
    from chalicelib.service.process import HANDLERS

    assert {spec.subject for spec in EVENT_SPECS.values()} == {"delivery", "vehicle", "record"}
    assert set(HANDLERS) <= set(EVENT_SPECS)
    assert vehicle_types() == sorted(
        [
            "delivery.feedback_submitted",
            "handover.confirmed",
            "handover.submitted",
            "insurance.policy_updated",
            "odometer.reported",
            "service.completed",
            "survey.completed",
        ]
    )


def test_every_vehicle_event_about_another_dealers_vin_reads_exactly_like_an_unknown_vin(
    harness: Harness, clock_at: Any, capsys: Any
) -> None:
    from chalicelib.service.sweep import sweep
    from chalicelib.store import inbox

    deliver_to_a(harness)
    assert harness.post(A, example("odometer.reported")).status_code == 202
    harness.drain()
    before = view(harness, A)
    read_at = datetime.fromisoformat(example("odometer.reported")["data"]["read_at"])
    # Readings that would be implausible against A's (90,001 km a day later): never judged.
    implausible = {
        "odometer.reported": {"odometer_km": 90_001, "read_at": (read_at + timedelta(days=1)).isoformat()},
        "service.completed": {
            "odometer_km": 90_001,
            "completed_at": (read_at + timedelta(days=1)).isoformat(),
        },
    }
    types = vehicle_types()
    for event_type in types:
        changes = implausible.get(event_type, {})
        foreign = harness.post(B, event(event_type, VIN, **changes), msg_id=f"foreign-{event_type}")
        unknown = harness.post(B, event(event_type, NOBODYS_VIN, **changes), msg_id=f"unknown-{event_type}")
        assert foreign.status_code == unknown.status_code == 202, (event_type, foreign.body)
        assert body_of(foreign)["status"] == body_of(unknown)["status"] == "accepted"
    harness.drain()
    for event_type in types:
        seen = [outcome(harness, B, f"{kind}-{event_type}") for kind in ("foreign", "unknown")]
        assert seen[0][0] == seen[1][0] == 200
        assert comparable(seen[0][1]) == comparable(seen[1][1])
        assert comparable(seen[0][1]) == {
            "type": event_type,
            "outcome": "pending",
            "reason": "awaiting_delivery",
            "attempts": 0,
            "applied_at": None,
        }
    assert view(harness, A) == before  # nothing of A's changed
    assert view(harness, B) == view(harness, B, NOBODYS_VIN) == 404

    capsys.readouterr()
    clock_at(NOW + timedelta(days=7, minutes=1))
    report = sweep(NOW + timedelta(days=7, minutes=1))
    assert report.waiting_expired == 2 * len(types)
    for event_type in types:
        seen = [outcome(harness, B, f"{kind}-{event_type}")[1] for kind in ("foreign", "unknown")]
        assert comparable(seen[0]) == comparable(seen[1])
        assert (seen[0]["outcome"], seen[0]["reason"]) == ("ignored", "unknown_vehicle")
        stored = inbox.load(inbox.InboxRef(B, f"foreign-{event_type}"))
        assert stored is not None and stored.ops_reason == "foreign_vehicle"  # only ops learn the truth
    ignored = read_emf(capsys.readouterr().out, "EventsIgnored")
    assert sorted(m["reason"] for m in ignored) == sorted(
        ["foreign_vehicle"] * len(types) + ["unknown_vehicle"] * len(types)
    )
    assert sweep(NOW + timedelta(days=8)).waiting_expired == 0


def test_record_events_carrying_another_dealers_vin_stay_with_the_sender(harness: Harness) -> None:
    from chalicelib.store import records

    deliver_to_a(harness)
    before = view(harness, A)
    for event_type in ("complaint.opened", "lead.captured", "customer.preferences_updated"):
        assert harness.post(B, event(event_type), msg_id=f"b-{event_type}").status_code == 202
    harness.drain()
    for event_type in ("complaint.opened", "lead.captured", "customer.preferences_updated"):
        assert outcome(harness, B, f"b-{event_type}")[1]["outcome"] == "applied"
    assert view(harness, A) == before
    assert view(harness, B) == 404
    b_customer = records.get_customer(B, "C-1001")
    assert b_customer is not None and b_customer.name is None  # first mention: B's own customer
    a_customer = records.get_customer(A, "C-1001")
    assert a_customer is not None and a_customer.preferred_channel == "sms"  # B's update touched nothing
    # A's own complaint about its own vehicle does show on A's vehicle.
    assert harness.post(A, example("complaint.opened")).status_code == 202
    harness.drain()
    timeline = [e["type"] for e in view(harness, A)["timeline"]]
    assert timeline == ["vehicle.delivered", "complaint.opened", "alert.raised"]  # its text is red


def test_finance_insurance_applies_to_the_current_dealers_vehicle_and_never_waits(harness: Harness) -> None:
    insurance = event("insurance.policy_updated", NOBODYS_VIN)
    assert harness.post("finance-demo", insurance, msg_id="fin-ins-1").status_code == 202
    deliver_to_a(harness)
    assert (
        harness.post("finance-demo", event("insurance.policy_updated"), msg_id="fin-ins-2").status_code == 202
    )
    harness.drain()
    assert outcome(harness, "finance-demo", "fin-ins-1")[1]["outcome"] == "applied"
    assert view(harness, A)["insurance"]["policy_no"] == insurance["data"]["policy_no"]


# --- deliveries: transfer, conflict, stale --------------------------------------------------------


def resale_to_b(at: datetime) -> dict[str, Any]:
    resale = event("vehicle.delivered", delivered_at=at.isoformat())
    resale["data"]["customer"] = {
        "id": "B-CUST-9",
        "name": "Other Buyer",
        "phone": "+8613911112222",
        "preferred_channel": "phone",
    }
    resale["data"]["sales_advisor"] = {"id": "B-S-1"}
    resale["data"]["service_specialist"] = {"id": "B-A-1"}
    return resale


def test_a_later_delivery_by_another_dealer_is_a_transfer(harness: Harness) -> None:
    from chalicelib.service import work

    ops = subscribe("ops")
    deliver_to_a(harness)
    for event_type in ("handover.submitted", "odometer.reported", "service.completed"):
        assert harness.post(A, example(event_type)).status_code == 202
    harness.drain()
    a_before = view(harness, A)
    resold_at = DELIVERED_AT + timedelta(days=400)
    assert harness.post(B, resale_to_b(resold_at), msg_id="b-resale").status_code == 202
    harness.drain()
    assert outcome(harness, B, "b-resale")[1]["outcome"] == "applied"

    b_view = view(harness, B)
    assert b_view["status"] == "current" and b_view["customer"]["id"] == "B-CUST-9"
    assert b_view["odometer"] == {"km": None, "read_at": None, "readings": []}
    assert b_view["services"] == [] and b_view["last_service"] is None and b_view["handover"] is None
    assert sorted(e["type"] for e in b_view["timeline"]) == ["vehicle.delivered", "vehicle.transferred"]
    text = json.dumps(b_view, ensure_ascii=False)
    assert "C-1001" not in text and A not in text and "RO-88231" not in text

    a_after = view(harness, A)
    assert a_after["status"] == "transferred"
    assert datetime.fromisoformat(a_after["transferred_at"]) == resold_at
    assert a_after["odometer"] == a_before["odometer"] and a_after["services"] == a_before["services"]
    assert a_after["timeline"][-1]["type"] == "vehicle.transferred"
    assert B not in json.dumps(a_after, ensure_ascii=False)  # A is not told who bought it

    a_tasks = body_of(harness.get("/dealers/dealer-a/tasks"))["items"]
    # Had the reading (4,520 km) been applied before the first service, it sent the first-service
    # reminder, and the service closed its tasks (the two were applied side by side here).
    reminded = {("first_service_care_call", "done", None), ("first_service_booking", "done", None)}
    assert {(t["kind"], t["status"], t["closed_reason"]) for t in a_tasks} - reminded == {
        ("handover_submit", "done", None),
        ("handover_confirm", "cancelled", "superseded"),
        ("delivery_feedback", "cancelled", "superseded"),
        ("service_return_visit", "cancelled", "superseded"),
    }
    b_tasks = body_of(harness.get("/dealers/dealer-b/tasks", partner_id=B))["items"]
    assert {t["status"] for t in b_tasks} == {"open"} and len(b_tasks) == 3
    transfers = [m["body"] for m in ops() if m["body"]["event"] == "vehicle.transferred"]
    assert len(transfers) == 1
    assert (transfers[0]["from_dealer_id"], transfers[0]["to_dealer_id"]) == (A, B)

    # Processing the transfer again (a crash before its outcome was written) doubles nothing.
    from chalicelib.store import inbox
    from chalicelib.store.models import InboxItem

    InboxItem(*inbox.InboxRef(B, "b-resale").key).update(actions=[InboxItem.status.set("pending")])
    assert work.handle(work.inbox_ref(B, "b-resale")) == "applied"
    harness.drain()
    assert ops() == []
    assert len(body_of(harness.get("/dealers/dealer-b/tasks", partner_id=B))["items"]) == 3
    assert view(harness, B)["timeline"] == b_view["timeline"]

    # A's events about the car it no longer holds wait, like any foreign event...
    after_resale = (resold_at + timedelta(days=1)).isoformat()
    late = event("odometer.reported", odometer_km=99_000, read_at=after_resale)
    assert harness.post(A, late, msg_id="a-late").status_code == 202
    # ...but one that happened before the resale (in flight when it landed) joins A's own history.
    in_flight = event(
        "odometer.reported", odometer_km=5_000, read_at=(resold_at - timedelta(days=1)).isoformat()
    )
    assert harness.post(A, in_flight, msg_id="a-in-flight").status_code == 202
    harness.drain()
    assert outcome(harness, A, "a-late")[1]["reason"] == "awaiting_delivery"
    assert outcome(harness, A, "a-in-flight")[1]["outcome"] == "applied"
    assert view(harness, A)["odometer"]["km"] == 5_000
    assert view(harness, B)["odometer"]["km"] is None


def test_a_delivery_by_another_dealer_at_the_same_time_is_a_conflict_and_takes_nothing(
    harness: Harness,
) -> None:
    from chalicelib.service import work

    ops = subscribe("ops")
    deliver_to_a(harness)
    before = view(harness, A)
    conflicting = resale_to_b(DELIVERED_AT)
    assert harness.post(B, conflicting, msg_id="b-conflict").status_code == 202
    earlier = resale_to_b(DELIVERED_AT - timedelta(days=1))
    assert harness.post(B, earlier, msg_id="b-earlier").status_code == 202
    harness.drain()
    for webhook_id in ("b-conflict", "b-earlier"):
        found = outcome(harness, B, webhook_id)[1]
        assert (found["outcome"], found["reason"]) == ("ignored", "delivery_conflict")
    assert work.handle(work.inbox_ref(B, "b-conflict")) == "already_ignored"
    harness.drain()
    conflicts = [m["body"] for m in ops() if m["body"]["event"] == "delivery.conflict"]
    assert sorted(c["webhook_id"] for c in conflicts) == ["b-conflict", "b-earlier"]  # once each
    assert view(harness, B) == 404
    assert body_of(harness.get("/dealers/dealer-b/tasks", partner_id=B))["items"] == []
    assert view(harness, A) == before
    assert harness.post(A, example("handover.submitted")).status_code == 202  # A's work goes on
    harness.drain()
    assert view(harness, A)["handover"] is not None


def test_an_older_delivery_by_the_same_dealer_is_stale(harness: Harness) -> None:
    deliver_to_a(harness)
    older = event("vehicle.delivered", delivered_at=(DELIVERED_AT - timedelta(days=30)).isoformat())
    assert harness.post(A, older, msg_id="a-older").status_code == 202
    harness.drain()
    found = outcome(harness, A, "a-older")[1]
    assert (found["outcome"], found["reason"]) == ("ignored", "stale_delivery")


def test_the_same_dealer_selling_the_car_again_supersedes_its_own_earlier_tasks(harness: Harness) -> None:
    deliver_to_a(harness)
    assert harness.post(A, example("odometer.reported")).status_code == 202
    again = event("vehicle.delivered", delivered_at=(DELIVERED_AT + timedelta(days=200)).isoformat())
    assert harness.post(A, again, msg_id="a-again").status_code == 202
    harness.drain()
    statuses = sorted(t["status"] for t in body_of(harness.get("/dealers/dealer-a/tasks"))["items"])
    # The earlier delivery's three tasks and the two its first-service reminder opened (the reading
    # reached 4,500 km) end; the new delivery opens three.
    assert statuses == ["cancelled"] * 5 + ["open"] * 3
    after = view(harness, A)
    assert after["status"] == "current" and after["odometer"]["km"] == 4520  # its own history stays


# --- events that arrive before their delivery -----------------------------------------------------


def test_readings_services_and_handover_sent_before_the_delivery_apply_when_it_arrives(
    harness: Harness,
) -> None:
    for event_type in ("odometer.reported", "service.completed", "handover.submitted"):
        assert harness.post(A, example(event_type), msg_id=f"early-{event_type}").status_code == 202
    harness.drain()
    assert outcome(harness, A, "early-odometer.reported")[1]["reason"] == "awaiting_delivery"
    deliver_to_a(harness)
    for event_type in ("odometer.reported", "service.completed", "handover.submitted"):
        found = outcome(harness, A, f"early-{event_type}")[1]
        assert (found["outcome"], found["reason"]) == ("applied", None)
        assert found["applied_at"] is not None
    got = view(harness, A)
    assert got["odometer"]["km"] == example("service.completed")["data"]["odometer_km"]
    assert len(got["odometer"]["readings"]) == 2 and len(got["services"]) == 1
    assert got["handover"] is not None
    submit = [
        t for t in body_of(harness.get("/dealers/dealer-a/tasks"))["items"] if t["kind"] == "handover_submit"
    ]
    assert submit[0]["status"] == "done"


def test_an_event_parked_while_its_delivery_lands_is_still_applied(
    harness: Harness, monkeypatch: Any
) -> None:
    """The delivery is applied between the event's look-up and its parking: it must not wait 7 days."""
    from chalicelib.service import work
    from chalicelib.store import records

    assert harness.post(A, example("vehicle.delivered"), msg_id="a-delivery").status_code == 202
    harness.stream.handler = lambda event, context: None  # hold both events back from the stream
    harness.drain()
    assert harness.post(A, example("odometer.reported"), msg_id="a-reading").status_code == 202
    harness.drain()
    harness.stream.handler = harness.app.handler_map["table_stream"]
    real_put_wait = records.put_wait

    def delivery_lands_first(*args: Any) -> None:
        work.handle(work.inbox_ref(A, "a-delivery"))  # releases nothing: the note is not written yet
        real_put_wait(*args)

    monkeypatch.setattr(records, "put_wait", delivery_lands_first)
    assert work.handle(work.inbox_ref(A, "a-reading")) == "applied"
    assert view(harness, A)["odometer"]["km"] == example("odometer.reported")["data"]["odometer_km"]
    assert records.waiting(A, VIN) == []


# --- the odometer rule at accept time -------------------------------------------------------------


def reading(km: int, at: datetime) -> dict[str, Any]:
    return event("odometer.reported", odometer_km=km, read_at=at.isoformat())


def test_a_reading_is_judged_against_the_latest_accepted_one_even_before_it_is_applied(
    harness: Harness,
) -> None:
    deliver_to_a(harness)
    t0 = DELIVERED_AT + timedelta(days=10)
    assert harness.post(A, reading(800, t0)).status_code == 202
    jump = harness.post(A, reading(90_000, t0 + timedelta(days=1)))  # sent back to back, nothing drained
    assert jump.status_code == 422 and body_of(jump)["type"].endswith("implausible")
    assert harness.post(A, reading(2_700, t0 + timedelta(days=1))).status_code == 202
    assert harness.post(A, reading(2_600, t0 + timedelta(days=2))).status_code == 422  # backwards


def test_a_services_odometer_is_judged_like_a_reading(harness: Harness) -> None:
    deliver_to_a(harness)
    t0 = DELIVERED_AT + timedelta(days=10)
    assert harness.post(A, reading(800, t0)).status_code == 202
    service = event(
        "service.completed", odometer_km=90_000, completed_at=(t0 + timedelta(days=1)).isoformat()
    )
    problem = body_of(harness.post(A, service))
    assert problem["status"] == 422 and problem["errors"][0]["field"] == "data.odometer_km"
    plausible = event(
        "service.completed", odometer_km=1_500, completed_at=(t0 + timedelta(days=1)).isoformat()
    )
    assert harness.post(A, plausible).status_code == 202
    assert harness.post(A, reading(1_400, t0 + timedelta(days=2))).status_code == 422


def test_a_reading_refused_as_a_conflict_does_not_move_the_accepted_one(harness: Harness) -> None:
    deliver_to_a(harness)
    t0 = DELIVERED_AT + timedelta(days=10)
    assert harness.post(A, reading(800, t0), msg_id="r-1").status_code == 202
    reused = harness.post(A, reading(2_700, t0 + timedelta(days=1)), msg_id="r-1")  # same id, other body
    assert reused.status_code == 409
    # Judged against 800 km (not the refused 2,700): 2,600 km a day later is plausible.
    assert harness.post(A, reading(2_600, t0 + timedelta(days=1))).status_code == 202


def test_readings_about_a_vin_nobody_delivered_are_not_judged(harness: Harness) -> None:
    t0 = DELIVERED_AT + timedelta(days=10)
    assert harness.post(A, reading(800, t0)).status_code == 202
    assert harness.post(A, reading(90_000, t0 + timedelta(days=1))).status_code == 202


# --- the outcome API ------------------------------------------------------------------------------


def test_an_events_outcome_is_served_to_its_sender_only(harness: Harness) -> None:
    deliver_to_a(harness)
    status, found = outcome(harness, A, "a-delivery")
    assert status == 200
    assert set(found) == {"id", "type", "received_at", "outcome", "reason", "attempts", "applied_at"}
    assert (found["id"], found["type"], found["outcome"], found["reason"], found["attempts"]) == (
        "a-delivery",
        "vehicle.delivered",
        "applied",
        None,
        0,
    )
    assert datetime.fromisoformat(found["applied_at"]) >= datetime.fromisoformat(found["received_at"])
    for reader in (B, "hq", "finance-demo"):
        status, problem = outcome(harness, A, "a-delivery", reader=reader)
        assert status == 404 and problem["title"] == "Not Found"
    assert outcome(harness, A, "never-sent")[0] == 404
    assert harness.client.http.get("/partners/dealer-a/events/a-delivery").status_code == 401


def test_an_event_that_keeps_failing_is_dead_lettered_and_a_replay_makes_it_pending(
    harness: Harness, monkeypatch: Any, capsys: Any
) -> None:
    from chalicelib import aws
    from chalicelib.service import process, work
    from chalicelib.settings import get_settings
    from clm.cli import main

    deliver_to_a(harness)
    monkeypatch.setattr(work, "RETRY_DELAY_SECONDS", 0)
    aws.client("sqs").set_queue_attributes(
        QueueUrl=get_settings().queue_urls["work"], Attributes={"VisibilityTimeout": "0"}
    )

    def broken(*args: Any) -> None:
        raise RuntimeError("handler bug")

    monkeypatch.setitem(process.HANDLERS, "handover.submitted", broken)
    assert harness.post(A, example("handover.submitted"), msg_id="doomed").status_code == 202
    for _ in range(12):
        harness.stream.step()
        harness.queue.step_now()
    found = outcome(harness, A, "doomed")[1]
    assert (found["outcome"], found["attempts"]) == ("dead_lettered", 6)  # the stream's try + 5 receives
    assert "handler bug" not in json.dumps(found)  # errors are for ops, not for the sender
    capsys.readouterr()
    assert main(["event", "show", A, "doomed"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["outcome"] == "dead_lettered" and "handler bug" in shown["last_error"]
    monkeypatch.undo()
    assert main(["dlq", "replay"]) == 0
    assert outcome(harness, A, "doomed")[1]["outcome"] == "pending"
    harness.drain()
    assert outcome(harness, A, "doomed")[1]["outcome"] == "applied"


def test_clm_event_show_tells_ops_the_true_reason(harness: Harness, capsys: Any) -> None:
    from clm.cli import main

    deliver_to_a(harness)
    assert harness.post(B, example("handover.submitted"), msg_id="b-foreign").status_code == 202
    harness.drain()
    capsys.readouterr()
    assert main(["event", "show", B, "b-foreign"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["outcome"], shown["reason"], shown["ops_reason"]) == (
        "pending",
        "awaiting_delivery",
        "foreign_vehicle",
    )
    assert main(["event", "show", B, "nope"]) == 1


# --- who completes which task ---------------------------------------------------------------------


def test_hq_may_not_complete_a_dealers_staff_task(harness: Harness) -> None:
    deliver_to_a(harness)
    task = body_of(harness.get("/dealers/dealer-a/tasks?status=open"))["items"][0]
    path = f"/dealers/dealer-a/tasks/{task['task_id']}/complete"
    as_hq = harness.client.http.post(path, headers={"authorization": f"Bearer {harness.creds['hq'].api_key}"})
    assert as_hq.status_code == 403
    as_b = harness.client.http.post(path, headers={"authorization": f"Bearer {harness.creds[B].api_key}"})
    assert as_b.status_code == 404
    assert (
        body_of(harness.get("/dealers/dealer-a/tasks?status=open"))["items"][0]["task_id"] == task["task_id"]
    )
    as_a = harness.client.http.post(path, headers={"authorization": f"Bearer {harness.creds[A].api_key}"})
    assert as_a.status_code == 200 and body_of(as_a)["status"] == "done"


@pytest.mark.parametrize(
    ("kind", "role", "allowed"),
    [
        ("dealer", "sales", True),
        ("dealer", "after_sales", True),
        ("dealer", "qc", True),
        ("dealer", "collections", False),
        ("dealer", "ops", False),
        ("hq", "collections", True),
        ("hq", "ops", True),
        ("hq", "hq", True),
        ("hq", "sales", False),
        ("finance", "collections", False),
    ],
)
def test_who_may_complete_which_role(kind: str, role: str, allowed: bool) -> None:
    from chalicelib.domain.tasks import may_complete

    assert may_complete(kind, role) is allowed


# --- what a review found: crashes, races and replays around deliveries and readings ---------------


def test_readings_that_waited_for_the_delivery_count_as_accepted(harness: Harness) -> None:
    early = event("odometer.reported", odometer_km=50_000)
    assert harness.post(A, early, msg_id="early").status_code == 202
    deliver_to_a(harness)
    assert view(harness, A)["odometer"]["km"] == 50_000
    read_at = datetime.fromisoformat(early["data"]["read_at"])
    lower = event("odometer.reported", odometer_km=100, read_at=(read_at + timedelta(days=1)).isoformat())
    assert harness.post(A, lower).status_code == 422  # lower at a later time: judged against the 50,000
    true = event("odometer.reported", odometer_km=50_500, read_at=(read_at + timedelta(days=1)).isoformat())
    assert harness.post(A, true).status_code == 202


def test_a_dealer_that_has_the_car_again_judges_readings_against_its_own_last_one(harness: Harness) -> None:
    deliver_to_a(harness)
    assert harness.post(A, example("odometer.reported")).status_code == 202
    harness.drain()
    read_at = datetime.fromisoformat(example("odometer.reported")["data"]["read_at"])
    assert harness.post(B, resale_to_b(read_at + timedelta(days=10)), msg_id="to-b").status_code == 202
    harness.drain()
    back = event("vehicle.delivered", delivered_at=(read_at + timedelta(days=20)).isoformat())
    assert harness.post(A, back, msg_id="back-to-a").status_code == 202
    harness.drain()
    assert view(harness, A)["status"] == "current" and view(harness, B)["status"] == "transferred"
    lower = event("odometer.reported", odometer_km=10, read_at=(read_at + timedelta(days=21)).isoformat())
    assert harness.post(A, lower).status_code == 422


def test_a_transfer_that_crashed_after_its_claim_is_settled_by_whatever_runs_next(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib.service import work
    from chalicelib.store import records

    deliver_to_a(harness)
    real_upsert = records.upsert_customer

    def crash_for_b(customer_id: str, dealer_id: str, *args: Any) -> None:
        if dealer_id == B:
            raise ConnectionError("Lambda died after the claim")
        real_upsert(customer_id, dealer_id, *args)

    monkeypatch.setattr(records, "upsert_customer", crash_for_b)
    assert harness.post(B, resale_to_b(DELIVERED_AT + timedelta(days=100)), msg_id="to-b").status_code == 202
    harness.stream.step()  # B's claim lands, then the crash; its retry waits in the queue
    monkeypatch.undo()
    from chalicelib.inbound import partners

    harness.creds["dealer-c"] = partners.add("dealer-c", "dealer")
    to_c = resale_to_b(DELIVERED_AT + timedelta(days=200))
    assert harness.post("dealer-c", to_c, msg_id="to-c").status_code == 202
    harness.stream.step()
    assert work.handle(work.inbox_ref(B, "to-b")) == "applied"  # B's retry, after C took over
    harness.drain()
    a_tasks = body_of(harness.get("/dealers/dealer-a/tasks"))["items"]
    assert {t["status"] for t in a_tasks} == {"cancelled"}
    assert view(harness, A)["status"] == "transferred"
    assert view(harness, B)["status"] == "transferred"
    assert body_of(harness.get("/dealers/dealer-b/tasks", partner_id=B))["items"] == []
    c_tasks = body_of(harness.get("/dealers/dealer-c/tasks", partner_id="dealer-c"))["items"]
    assert {t["status"] for t in c_tasks} == {"open"}


def test_a_transfer_overtaken_while_it_was_being_written_ends_itself(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib.inbound import partners
    from chalicelib.service import work
    from chalicelib.service.handlers import deliveries as delivery

    deliver_to_a(harness)
    harness.creds["dealer-c"] = partners.add("dealer-c", "dealer")
    assert harness.post(B, resale_to_b(DELIVERED_AT + timedelta(days=100)), msg_id="to-b").status_code == 202
    assert (
        harness.post("dealer-c", resale_to_b(DELIVERED_AT + timedelta(days=200)), msg_id="to-c").status_code
        == 202
    )
    harness.stream.handler = lambda event, context: None
    harness.drain()
    harness.stream.handler = harness.app.handler_map["table_stream"]
    real_open = delivery._open_tasks

    def c_lands_meanwhile(dealer_id: str, *args: Any) -> None:
        if dealer_id == B:
            assert work.handle(work.inbox_ref("dealer-c", "to-c")) == "applied"
        real_open(dealer_id, *args)

    monkeypatch.setattr(delivery, "_open_tasks", c_lands_meanwhile)
    assert work.handle(work.inbox_ref(B, "to-b")) == "applied"
    harness.drain()
    b_tasks = body_of(harness.get("/dealers/dealer-b/tasks", partner_id=B))["items"]
    assert len(b_tasks) == 3 and {t["status"] for t in b_tasks} == {"cancelled"}
    assert view(harness, B)["status"] == "transferred"
    assert view(harness, A)["status"] == "transferred"
    assert {t["status"] for t in body_of(harness.get("/dealers/dealer-a/tasks"))["items"]} == {"cancelled"}


def test_a_replayed_waiting_event_waits_again_and_still_expires(harness: Harness, clock_at: Any) -> None:
    from chalicelib.service import work
    from chalicelib.service.sweep import sweep
    from chalicelib.store import inbox
    from chalicelib.store.models import InboxItem

    deliver_to_a(harness)
    assert harness.post(B, example("handover.submitted"), msg_id="parked").status_code == 202
    harness.drain()
    ref = inbox.InboxRef(B, "parked")
    # It failed later and was dead-lettered; ops replay it.
    InboxItem(*ref.key).update(
        actions=[InboxItem.status.set("dead_lettered"), InboxItem.gsi1pk.set("FAILED#INBOX")]
    )
    assert inbox.requeue(ref, NOW)
    assert work.handle(work.inbox_ref(B, "parked")) == "waiting"
    assert sweep(NOW, real_now=NOW + timedelta(minutes=5)).inbox_redriven == 0  # not re-driven while waiting
    clock_at(NOW + timedelta(days=7, minutes=1))
    assert sweep(NOW + timedelta(days=7, minutes=1)).waiting_expired == 1
    assert outcome(harness, B, "parked")[1]["outcome"] == "ignored"


def test_processing_an_older_reading_again_keeps_what_it_found_the_first_time(harness: Harness) -> None:
    from chalicelib.service import work
    from chalicelib.store import inbox
    from chalicelib.store.models import InboxItem

    deliver_to_a(harness)
    t0 = DELIVERED_AT + timedelta(days=10)
    assert harness.post(A, reading(800, t0), msg_id="r1").status_code == 202
    harness.drain()
    assert harness.post(A, reading(850, t0 + timedelta(hours=1)), msg_id="r2").status_code == 202
    harness.drain()
    InboxItem(*inbox.InboxRef(A, "r1").key).update(actions=[InboxItem.status.set("pending")])
    assert work.handle(work.inbox_ref(A, "r1")) == "applied"  # a retry after a crash
    readings = view(harness, A)["odometer"]["readings"]
    assert [(r["km"], r["applied"]) for r in readings] == [(800, True), (850, True)]


def test_ops_hear_of_a_conflicting_delivery_once_however_often_it_is_resent(harness: Harness) -> None:
    ops = subscribe("ops")
    deliver_to_a(harness)
    for webhook_id in ("again-1", "again-2", "again-3"):
        assert harness.post(B, resale_to_b(DELIVERED_AT), msg_id=webhook_id).status_code == 202
    harness.drain()
    assert [m["body"]["event"] for m in ops()] == ["delivery.conflict"]


def test_a_vehicle_task_without_its_delivery_is_refused() -> None:
    from chalicelib.domain.tasks import NewTask
    from chalicelib.store import tasks

    with pytest.raises(ValueError, match="delivered_at"):
        tasks.create(A, NewTask("t-1", "handover_submit", "S-01", "sales", NOW, vin=VIN), NOW)


# --- what a second review found ------------------------------------------------------------------


def test_a_late_absurd_older_reading_never_sets_the_odometer(harness: Harness) -> None:
    deliver_to_a(harness)
    t0 = DELIVERED_AT + timedelta(days=10)
    assert harness.post(A, reading(800, t0)).status_code == 202
    assert harness.post(A, reading(1_500, t0 + timedelta(days=2))).status_code == 202
    assert harness.post(A, reading(90_000, t0 + timedelta(days=1))).status_code == 202  # older: not judged
    harness.drain()
    got = view(harness, A)["odometer"]
    assert got["km"] == 1_500
    assert [(r["km"], r["applied"]) for r in got["readings"]] == [(800, True), (90_000, False), (1_500, True)]
    assert harness.post(A, reading(1_600, t0 + timedelta(days=3))).status_code == 202


def test_an_outcome_never_lands_without_its_effects(harness: Harness, monkeypatch: Any) -> None:
    from chalicelib import aws
    from chalicelib.service import work

    deliver_to_a(harness)
    harness.stream.handler = lambda event, context: None
    assert harness.post(A, example("odometer.reported"), msg_id="half").status_code == 202
    harness.drain()
    harness.stream.handler = harness.app.handler_map["table_stream"]
    ddb = aws.client("dynamodb")
    real = ddb.batch_write_item

    def keeps_the_entries_back(**kwargs: Any) -> Any:
        table, requests = next(iter(kwargs["RequestItems"].items()))
        inbox_only = [r for r in requests if r["PutRequest"]["Item"]["pk"]["S"].startswith("INBOX#")]
        if inbox_only:
            real(RequestItems={table: inbox_only})
        return {"UnprocessedItems": {table: [r for r in requests if r not in inbox_only]}}

    monkeypatch.setattr(ddb, "batch_write_item", keeps_the_entries_back)
    monkeypatch.setattr("time.sleep", lambda _: None)
    with pytest.raises(Exception, match="unprocessed"):
        work.handle(work.inbox_ref(A, "half"))
    assert outcome(harness, A, "half")[1]["outcome"] == "pending"  # taken back
    monkeypatch.undo()
    assert work.handle(work.inbox_ref(A, "half")) == "applied"
    assert len(view(harness, A)["odometer"]["readings"]) == 1


def crash_b_after_its_claim(harness: Harness, monkeypatch: Any, at: datetime) -> None:
    from chalicelib.store import records

    real_upsert = records.upsert_customer

    def crash_for_b(customer_id: str, dealer_id: str, *args: Any) -> None:
        if dealer_id == B:
            raise ConnectionError("Lambda died after the claim")
        real_upsert(customer_id, dealer_id, *args)

    monkeypatch.setattr(records, "upsert_customer", crash_for_b)
    assert harness.post(B, resale_to_b(at), msg_id="to-b").status_code == 202
    harness.stream.step()
    monkeypatch.undo()


def test_the_earlier_dealer_loses_the_car_the_moment_it_is_claimed(
    harness: Harness, monkeypatch: Any
) -> None:
    deliver_to_a(harness)
    resold_at = DELIVERED_AT + timedelta(days=100)
    crash_b_after_its_claim(harness, monkeypatch, resold_at)
    late = event("odometer.reported", odometer_km=9_000, read_at=(resold_at + timedelta(days=1)).isoformat())
    assert harness.post(A, late, msg_id="a-after").status_code == 202
    harness.stream.step()
    assert outcome(harness, A, "a-after")[1]["reason"] == "awaiting_delivery"
    assert view(harness, A)["status"] == "transferred"


def test_the_finance_arm_s_policy_waits_for_a_delivery_being_applied(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib.service import work

    deliver_to_a(harness)
    crash_b_after_its_claim(harness, monkeypatch, DELIVERED_AT + timedelta(days=100))
    assert harness.post("finance-demo", event("insurance.policy_updated"), msg_id="policy").status_code == 202
    harness.stream.step()  # B's vehicle is not written yet: retried, not lost
    assert outcome(harness, "finance-demo", "policy")[1]["outcome"] == "pending"
    assert work.handle(work.inbox_ref(B, "to-b")) == "applied"
    assert work.handle(work.inbox_ref("finance-demo", "policy")) == "applied"
    assert (
        view(harness, B)["insurance"]["policy_no"] == example("insurance.policy_updated")["data"]["policy_no"]
    )
