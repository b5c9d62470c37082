"""Processing after the 202: state, tasks, timeline, outbox delivery, sweeps, and the read API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.support import content_types

VIN = "LSVAU2180N2123456"


def body_of(response: Any) -> Any:
    return json.loads(response.body)


def subscribe(topic_key: str, policy: dict[str, Any] | None = None, name: str | None = None) -> Any:
    """An SQS queue subscribed to one of our topics, with a filter policy if given (as each role's
    tool would subscribe): what staff tools would receive."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName=f"probe-{name or topic_key}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"RawMessageDelivery": "false"}
    if policy is not None:
        attributes["FilterPolicy"] = json.dumps(policy)
    sns.subscribe(
        TopicArn=get_settings().topics[topic_key], Protocol="sqs", Endpoint=arn, Attributes=attributes
    )

    def received() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for message in got:
                envelope = json.loads(message["Body"])
                out.append(
                    {
                        "body": json.loads(envelope["Message"]),
                        "attributes": envelope.get("MessageAttributes", {}),
                    }
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return received


def deliver(harness: Harness) -> None:
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()


def test_delivery_creates_customer_vehicle_and_three_tasks(harness: Harness) -> None:
    deliver(harness)
    tasks = body_of(harness.get("/dealers/dealer-a/tasks"))
    assert tasks["next"] is None
    by_kind = {t["kind"]: t for t in tasks["items"]}
    delivered_at = datetime.fromisoformat(example("vehicle.delivered")["data"]["delivered_at"])
    assert datetime.fromisoformat(by_kind["handover_submit"]["due_at"]) == delivered_at + timedelta(hours=24)
    assert datetime.fromisoformat(by_kind["delivery_feedback"]["due_at"]) == delivered_at + timedelta(days=3)
    assert {t["status"] for t in tasks["items"]} == {"open"}
    assert all(t["vin"] == VIN for t in tasks["items"])
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert view["delivery"]["model"] == example("vehicle.delivered")["data"]["model"]
    assert view["customer"]["phone"] == "+86138****8000"
    assert view["customer"]["name"].endswith("*")
    assert "13800138000" not in json.dumps(view, ensure_ascii=False)


def test_new_tasks_are_announced_on_staff_tasks_once(harness: Harness) -> None:
    received = subscribe("staff_tasks")
    deliver(harness)
    messages = received()
    assert sorted(m["body"]["task"]["kind"] for m in messages) == [
        "delivery_feedback",
        "handover_confirm",
        "handover_submit",
    ]
    assert {m["attributes"]["dealer_id"]["Value"] for m in messages} == {"dealer-a"}
    assert {m["attributes"]["role"]["Value"] for m in messages} == {"sales", "after_sales"}
    # Processing the same event again (a crash before the inbox was closed) announces nothing new.
    from chalicelib.service import work

    harness.drain()
    from chalicelib import clock
    from chalicelib.outbound.deliver import deliver as deliver_one
    from chalicelib.store import outbox

    pending = outbox.stale(clock.system_now() + timedelta(days=1))  # the pinned clock, not the machine's
    assert pending == []
    for message in messages:
        deliver_one(f"task-created#dealer-a#{message['body']['task']['task_id']}")
    del work
    assert received() == []


def test_handover_and_feedback_events_close_their_tasks(harness: Harness) -> None:
    deliver(harness)
    for event_type in ("handover.submitted", "handover.confirmed", "delivery.feedback_submitted"):
        assert harness.post("dealer-a", example(event_type)).status_code == 202
    harness.drain()
    tasks = body_of(harness.get("/dealers/dealer-a/tasks"))["items"]
    assert {t["status"] for t in tasks} == {"done"}
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert (
        view["handover"]["form"]["basic"]["model"]
        == example("handover.submitted")["data"]["form"]["basic"]["model"]
    )
    assert (
        view["handover_confirmation"]["corrections"] == example("handover.confirmed")["data"]["corrections"]
    )
    assert view["timeline"][0]["type"] == "vehicle.delivered"
    assert len(view["timeline"]) == 4


def test_handover_before_delivery_waits_and_then_applies(harness: Harness) -> None:
    assert harness.post("dealer-a", example("handover.submitted")).status_code == 202
    harness.stream.step()  # fails: vehicle unknown, goes to the retry queue
    deliver(harness)
    from chalicelib.service import work

    # The retry (delayed in SQS) is the same unit of work; run it now.
    work.handle(work.inbox_ref("dealer-a", "msg_1"))
    submit = [
        t for t in body_of(harness.get("/dealers/dealer-a/tasks"))["items"] if t["kind"] == "handover_submit"
    ]
    assert submit[0]["status"] == "done"


def test_sweep_marks_overdue_once_and_tells_staff_and_ops(harness: Harness, clock_at: Any) -> None:
    from chalicelib.service.sweep import sweep

    staff, ops = subscribe("staff_tasks"), subscribe("ops")
    deliver(harness)
    staff()
    delivered_at = datetime.fromisoformat(example("vehicle.delivered")["data"]["delivered_at"])
    report = sweep(delivered_at + timedelta(hours=23))
    assert report.tasks_overdue == 0
    at = delivered_at + timedelta(hours=25)
    assert sweep(at).tasks_overdue == 2
    assert sweep(at).tasks_overdue == 0  # never twice
    harness.drain()
    overdue = body_of(harness.get("/dealers/dealer-a/tasks?status=overdue"))["items"]
    assert sorted(t["kind"] for t in overdue) == ["handover_confirm", "handover_submit"]
    assert sorted(m["body"]["task"]["kind"] for m in staff()) == ["handover_confirm", "handover_submit"]
    assert [m["body"]["event"] for m in ops()] == ["sla.breached", "sla.breached"]
    assert sweep(at + timedelta(days=3)).tasks_overdue == 1
    harness.drain()
    assert len(staff()) == 1


def test_completing_a_task_by_api(harness: Harness) -> None:
    deliver(harness)
    task = body_of(harness.get("/dealers/dealer-a/tasks?status=open"))["items"][0]
    done = harness.client.http.post(
        f"/dealers/dealer-a/tasks/{task['task_id']}/complete",
        headers={"authorization": f"Bearer {harness.creds['dealer-a'].api_key}"},
    )
    assert done.status_code == 200
    assert body_of(done)["status"] == "done"
    again = harness.client.http.post(
        f"/dealers/dealer-a/tasks/{task['task_id']}/complete",
        headers={"authorization": f"Bearer {harness.creds['dealer-a'].api_key}"},
    )
    assert body_of(again)["status"] == "done"
    missing = harness.client.http.post(
        "/dealers/dealer-a/tasks/nope/complete",
        headers={"authorization": f"Bearer {harness.creds['dealer-a'].api_key}"},
    )
    assert missing.status_code == 404
    assert len(body_of(harness.get("/dealers/dealer-a/tasks?status=open"))["items"]) == 2


def test_task_filters_and_pagination(harness: Harness) -> None:
    deliver(harness)
    advisor = example("vehicle.delivered")["data"]["sales_advisor"]["id"]
    mine = body_of(harness.get(f"/dealers/dealer-a/tasks?assignee={advisor}"))["items"]
    assert [t["kind"] for t in mine] == ["handover_submit"]
    seen: list[str] = []
    page = body_of(harness.get("/dealers/dealer-a/tasks?limit=2"))
    seen += [t["task_id"] for t in page["items"]]
    assert len(page["items"]) == 2 and page["next"]
    page = body_of(harness.get(f"/dealers/dealer-a/tasks?limit=2&next={page['next']}"))
    seen += [t["task_id"] for t in page["items"]]
    assert len(set(seen)) == 3
    assert harness.get("/dealers/dealer-a/tasks?status=lost").status_code == 400
    assert harness.get("/dealers/dealer-a/tasks?next=garbage").status_code == 400


def test_tenant_isolation(harness: Harness) -> None:
    deliver(harness)
    assert harness.get("/dealers/dealer-a/tasks", partner_id="dealer-b").status_code == 404
    assert harness.get(f"/dealers/dealer-a/vehicles/{VIN}", partner_id="dealer-b").status_code == 404
    assert harness.get(f"/dealers/dealer-b/vehicles/{VIN}", partner_id="dealer-b").status_code == 404
    assert body_of(harness.get("/dealers/dealer-b/tasks", partner_id="dealer-b"))["items"] == []
    assert harness.get("/dealers/dealer-a/tasks", partner_id="finance-demo").status_code == 404
    assert len(body_of(harness.get("/dealers/dealer-a/tasks", partner_id="hq"))["items"]) == 3
    assert harness.get(f"/dealers/dealer-a/vehicles/{VIN}", partner_id="hq").status_code == 200
    # Another dealer's events about this vehicle never touch it.
    assert harness.post("dealer-b", example("handover.submitted")).status_code == 202
    harness.drain()
    assert all(t["status"] == "open" for t in body_of(harness.get("/dealers/dealer-a/tasks"))["items"])
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert view["handover"] is None
    assert [e["partner_id"] for e in view["timeline"]] == ["dealer-a"]


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer wrong", "Basic abc"])
def test_read_api_needs_a_valid_key(harness: Harness, header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}
    response = harness.client.http.get("/dealers/dealer-a/tasks", headers=headers)
    assert response.status_code == 401
    assert content_types(response) == ["application/problem+json"]


def test_every_event_type_is_accepted_and_kept(harness: Harness) -> None:
    from chalicelib.events import ALL_EVENT_TYPES, EVENT_SPECS

    deliver(harness)
    sender = {"dealer": "dealer-a", "finance": "finance-demo", "hq": "hq"}
    for event_type in ALL_EVENT_TYPES:
        if event_type == "vehicle.delivered":
            continue
        partner = sender[sorted(EVENT_SPECS[event_type].kinds)[0]]
        event = example(event_type)
        if "dealer_id" in event["data"]:
            event["data"]["dealer_id"] = "dealer-a"  # the finance arm names the selling dealer
        response = harness.post(partner, event)
        assert response.status_code == 202, (event_type, response.body)
    harness.drain()
    from chalicelib import clock
    from chalicelib.store import inbox

    assert inbox.stale(clock.system_now() + timedelta(days=30)) == []
    timeline = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["timeline"]
    kept = {e["type"] for e in timeline}
    with_vin = {t for t in ALL_EVENT_TYPES if "vin" in example(t)["data"]}
    assert with_vin <= kept


def test_odometer_history_never_lowers_and_implausible_is_422(harness: Harness) -> None:
    deliver(harness)
    reading = example("odometer.reported")
    at = datetime.fromisoformat(reading["data"]["read_at"])
    assert harness.post("dealer-a", reading).status_code == 202
    harness.drain()
    older = json.loads(json.dumps(reading))
    older["data"].update(
        odometer_km=reading["data"]["odometer_km"] - 100, read_at=(at - timedelta(days=5)).isoformat()
    )
    assert harness.post("dealer-a", older).status_code == 202
    harness.drain()
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert view["odometer"]["km"] == reading["data"]["odometer_km"]
    assert len(view["odometer"]["readings"]) == 2
    jump = json.loads(json.dumps(reading))
    jump["data"].update(
        odometer_km=reading["data"]["odometer_km"] + 2500, read_at=(at + timedelta(days=1)).isoformat()
    )
    problem = body_of(harness.post("dealer-a", jump))
    assert problem["status"] == 422 and problem["type"].endswith("implausible")
    back = json.loads(json.dumps(reading))
    back["data"].update(
        odometer_km=reading["data"]["odometer_km"] - 1, read_at=(at + timedelta(days=1)).isoformat()
    )
    assert harness.post("dealer-a", back).status_code == 422


def test_health(harness: Harness) -> None:
    response = harness.client.http.get("/health")
    assert response.status_code == 200
    assert body_of(response)["status"] == "ok"


def test_tasks_are_listed_by_due_time_then_id_on_every_page(harness: Harness) -> None:
    """Three deliveries: one two days earlier, two at the same instant (equal due times, ordered by id)."""
    base = example("vehicle.delivered")
    at = datetime.fromisoformat(base["data"]["delivered_at"])
    for n, (vin_tail, delivered) in enumerate(
        [("00001", at), ("00002", at - timedelta(days=2)), ("00003", at)], start=1
    ):
        data = {
            **base["data"],
            "vin": base["data"]["vin"][:-5] + vin_tail,
            "delivered_at": delivered.isoformat(),
        }
        data["customer"] = {**data["customer"], "id": f"cust-order-{n}"}
        assert harness.post("dealer-a", {**base, "data": data}).status_code == 202
    harness.drain()

    listed: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = body_of(harness.get(f"/dealers/dealer-a/tasks?limit=2{cursor}"))
        listed += page["items"]
        if not page["next"]:
            break
        cursor = f"&next={page['next']}"
    keys = [(t["due_at"], t["task_id"]) for t in listed]
    assert len(listed) == 9 and len(set(keys)) == 9
    assert keys == sorted(keys)
    assert [t["task_id"] for t in listed] != sorted(t["task_id"] for t in listed)  # not id order
    assert len({t["due_at"] for t in listed}) < 9  # equal due times exist, so the id decides there
    open_only = body_of(harness.get("/dealers/dealer-a/tasks?status=open&limit=100"))["items"]
    assert [(t["due_at"], t["task_id"]) for t in open_only] == sorted(
        (t["due_at"], t["task_id"]) for t in open_only
    )
