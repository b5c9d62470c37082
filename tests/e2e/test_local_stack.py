"""The local stack end to end: post a signed event over HTTP with `clm send`, watch it land."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import PATIENCE, ROOT, RunningStack
from tests.support import signed_headers

EXAMPLE_VIN = json.loads((ROOT / "examples" / "events" / "vehicle.delivered.json").read_text())["data"]["vin"]


def tasks_of_vin(stack: RunningStack, key: str, status: str | None = None) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    items: list[dict[str, Any]] = stack.get(f"/dealers/dealer-demo/tasks{query}", key).json()["items"]
    return [t for t in items if t["vin"] == EXAMPLE_VIN]


@pytest.mark.e2e
def test_signed_event_over_http_reaches_the_read_api_within_two_seconds(stack: RunningStack) -> None:
    creds = stack.credentials
    assert set(creds) >= {"dealer-demo", "finance-demo", "hq"}
    sent = stack.cli(
        "send", str(ROOT / "examples" / "events" / "vehicle.delivered.json"), "--partner", "dealer-demo"
    )
    assert json.loads(sent.stdout)["status"] == 202
    key = creds["dealer-demo"]["api_key"]
    stack.wait_for(lambda: len(tasks_of_vin(stack, key)) == 3, what="the delivery's three tasks")
    outcome = stack.settled_outcome("dealer-demo", json.loads(sent.stdout)["webhook_id"], key)
    assert outcome["outcome"] == "applied"
    answer = stack.get(f"/dealers/dealer-demo/vehicles/{EXAMPLE_VIN}", key)
    view = answer.json()
    assert view["timeline"][0]["type"] == "vehicle.delivered"
    assert "张".encode() in answer.body and b"\\u" not in answer.body  # UTF-8 as it is, no \u escapes
    info = json.loads(stack.cli("info").stdout)
    assert info["api_url"] == stack.api
    assert set(info["topics"]) == {"red_alerts", "staff_tasks", "ops"}

    # Ten copies of one handover at once over HTTP: one acceptance, nine duplicates, no 5xx.
    body = (ROOT / "examples" / "events" / "handover.submitted.json").read_bytes()
    headers = signed_headers(creds["dealer-demo"]["webhook_secret"], body, "msg_e2e_burst", int(time.time()))

    def post(_: int) -> int:
        request = urllib.request.Request(f"{stack.api}/webhooks/dealer-demo", data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            status: int = response.status
            return status

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert sorted(pool.map(post, range(10))) == [200] * 9 + [202]
    stack.wait_for(lambda: tasks_of_vin(stack, key, "done"), what="the handover closing its task")
    swept = json.loads(stack.cli("sweep", "--at", "2030-01-01T00:00:00+08:00").stdout)
    assert swept["tasks_overdue"] >= 2
    overdue = tasks_of_vin(stack, key, "overdue")
    assert sorted(t["kind"] for t in overdue) == ["delivery_feedback", "handover_confirm"]
    assert '"EventsAccepted"' in "".join(stack.output)  # EMF metrics, as CloudWatch would receive them


@pytest.mark.e2e
def test_sixty_four_concurrent_senders_are_all_served_and_each_event_is_its_own(stack: RunningStack) -> None:
    """Every connection served (backlog) and every request answered as itself (no request served
    with another thread's body: Chalice's local app keeps the current request per thread)."""
    from tests.e2e.conftest import new_vin

    creds = stack.credentials["dealer-demo"]
    base = json.loads((ROOT / "examples" / "events" / "odometer.reported.json").read_text())
    events = []
    for n in range(64):
        event = json.loads(json.dumps(base))
        event["data"]["vin"] = new_vin("LCNCR")
        events.append((f"conc-{n}-{event['data']['vin']}", event))
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda e: stack.post_event("dealer-demo", e[1], webhook_id=e[0]), events))
    assert [a.status for a in answers] == [202] * 64
    assert [a.json()["id"] for a in answers] == [webhook_id for webhook_id, _ in events]
    for webhook_id, _ in events:
        assert stack.outcome("dealer-demo", webhook_id, creds["api_key"]).status == 200


@pytest.mark.e2e
def test_a_traditional_brake_failure_complaint_reaches_every_role_within_two_seconds(
    stack: RunningStack,
) -> None:
    """Over HTTP, through the workers and the embedded SNS, to one SQS queue per role subscribed
    with a `roles` filter, as QC, sales and after-sales tools would subscribe."""
    import boto3

    info = json.loads(stack.cli("info").stdout)
    aws = {
        "endpoint_url": info["aws_endpoint"],
        "region_name": info["topics"]["red_alerts"].split(":")[3],
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    sqs, sns = boto3.client("sqs", **aws), boto3.client("sns", **aws)
    queues: dict[str, str] = {}
    for role in ("qc", "sales", "after_sales", "collections"):
        url = sqs.create_queue(QueueName=f"e2e-red-alerts-{role}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(
            TopicArn=info["topics"]["red_alerts"],
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"FilterPolicy": json.dumps({"roles": [role]})},
        )
        queues[role] = url
    payload = json.loads((ROOT / "examples" / "events" / "complaint.opened.json").read_text())
    payload["data"].update(complaint_id="CP-e2e-red", text="客戶說高速上剎車失靈，很危險")
    payload["data"]["opened_at"] = payload["timestamp"]
    answered = stack.post_event("dealer-demo", payload)
    assert answered.status == 202
    received: dict[str, dict[str, Any]] = {}

    def every_role_has_it() -> bool:
        for role in ("qc", "sales", "after_sales"):
            if role not in received:
                got = sqs.receive_message(QueueUrl=queues[role], MaxNumberOfMessages=10).get("Messages", [])
                if got:
                    received[role] = json.loads(json.loads(got[0]["Body"])["Message"])
        return len(received) == 3

    # Polled: two seconds is what it takes on an idle machine, not what a busy one can promise.
    stack.wait_for(every_role_has_it, what="the red alert at QC, sales and after-sales")
    for body in received.values():
        assert body["complaint_id"] == "CP-e2e-red" and body["severity"] == "red"
        assert body["dealer_id"] == "dealer-demo"
    assert sqs.receive_message(QueueUrl=queues["collections"]).get("Messages", []) == []
