"""A second dealer tries the local stack as an adversary would, over real HTTP (the issue's items 1-8, 11).

Dealer A is `dealer-demo`; the rival is a dealer added with `clm partner add`. Each test uses
VINs of its own.
"""

from __future__ import annotations

import copy
import gzip
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Answer, RunningStack, new_vin

pytestmark = pytest.mark.e2e
A = "dealer-demo"
EXAMPLES = ROOT / "examples" / "events"


def example(event_type: str, vin: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / f"{event_type}.json").read_text())
    payload = copy.deepcopy(payload)
    if "vin" in payload["data"]:
        payload["data"]["vin"] = vin
    payload["data"].update(changes)
    return payload


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


@pytest.fixture(scope="module")
def rival(stack: RunningStack) -> dict[str, str]:
    return stack.add_partner(f"dealer-rival-{secrets.token_hex(3)}")


def a_key(stack: RunningStack) -> str:
    return stack.credentials[A]["api_key"]


def applied(stack: RunningStack, partner: str, answer: Answer, api_key: str) -> dict[str, Any]:
    assert answer.status == 202, answer.body
    return stack.settled_outcome(partner, answer.json()["id"], api_key)


def delivered_to_a(stack: RunningStack, vin: str) -> dict[str, Any]:
    delivery = example("vehicle.delivered", vin)
    found = applied(stack, A, stack.post_event(A, delivery), a_key(stack))
    assert found["outcome"] == "applied"
    return delivery


def view(stack: RunningStack, dealer: str, vin: str, api_key: str) -> Answer:
    return stack.get(f"/dealers/{dealer}/vehicles/{vin}", api_key)


def rivals_delivery(vin: str, delivered_at: str) -> dict[str, Any]:
    delivery = example("vehicle.delivered", vin, delivered_at=delivered_at)
    delivery["data"]["customer"] = {
        "id": "R-1",
        "name": "Rival Buyer",
        "phone": "+8613911112222",
        "preferred_channel": "phone",
    }
    return delivery


# 1 ------------------------------------------------------------------------------------------------


def test_a_future_delivery_cannot_take_a_vehicle_over_and_a_transfer_shows_nothing_of_the_past(
    stack: RunningStack, rival: dict[str, str]
) -> None:
    vin = new_vin()
    delivered_to_a(stack, vin)
    for event_type in ("odometer.reported", "service.completed"):
        assert (
            applied(stack, A, stack.post_event(A, example(event_type, vin)), a_key(stack))["outcome"]
            == "applied"
        )

    future = rivals_delivery(vin, (datetime.now(UTC) + timedelta(days=1)).isoformat())
    refused = stack.post_event(rival["partner_id"], future, secret=rival["webhook_secret"])
    assert refused.status == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["data.delivered_at"]
    assert view(stack, A, vin, a_key(stack)).json()["status"] == "current"

    resale = stack.post_event(
        rival["partner_id"], rivals_delivery(vin, ago(hours=1).isoformat()), secret=rival["webhook_secret"]
    )
    assert applied(stack, rival["partner_id"], resale, rival["api_key"])["outcome"] == "applied"
    theirs = view(stack, rival["partner_id"], vin, rival["api_key"]).json()
    assert theirs["customer"]["id"] == "R-1"
    assert theirs["odometer"]["readings"] == [] and theirs["services"] == []
    assert "C-1001" not in json.dumps(theirs, ensure_ascii=False)
    ours = view(stack, A, vin, a_key(stack))
    assert ours.status == 200
    assert ours.json()["status"] == "transferred" and len(ours.json()["services"]) == 1


# 2, 3 ---------------------------------------------------------------------------------------------


def test_another_dealers_readings_change_nothing_and_answer_like_an_unknown_vin(
    stack: RunningStack, rival: dict[str, str]
) -> None:
    vin, nobodys = new_vin(), new_vin()
    delivered_to_a(stack, vin)
    reading = example("odometer.reported", vin)
    assert applied(stack, A, stack.post_event(A, reading), a_key(stack))["outcome"] == "applied"
    later = (datetime.fromisoformat(reading["data"]["read_at"]) + timedelta(days=1)).isoformat()
    sent: dict[str, list[Answer]] = {}
    for target in (vin, nobodys):
        sent[target] = [
            stack.post_event(
                rival["partner_id"],
                example("odometer.reported", target, odometer_km=90_001, read_at=later),
                secret=rival["webhook_secret"],
            ),
            stack.post_event(
                rival["partner_id"],
                example("service.completed", target, odometer_km=90_001, completed_at=later),
                secret=rival["webhook_secret"],
            ),
        ]
    for mine, unknown in zip(sent[vin], sent[nobodys], strict=True):
        assert mine.status == unknown.status == 202
        assert mine.json()["status"] == unknown.json()["status"] == "accepted"
        outcomes = [
            stack.settled_outcome(rival["partner_id"], answer.json()["id"], rival["api_key"])
            for answer in (mine, unknown)
        ]
        drop = ("id", "received_at")
        assert [{k: v for k, v in o.items() if k not in drop} for o in outcomes] == [
            {
                "type": outcomes[0]["type"],
                "outcome": "pending",
                "reason": "awaiting_delivery",
                "attempts": 0,
                "applied_at": None,
            }
        ] * 2
    ours = view(stack, A, vin, a_key(stack)).json()
    assert ours["odometer"]["km"] == reading["data"]["odometer_km"] and ours["services"] == []
    true_reading = example("odometer.reported", vin, odometer_km=4_900, read_at=later)
    assert applied(stack, A, stack.post_event(A, true_reading), a_key(stack))["outcome"] == "applied"
    assert view(stack, A, vin, a_key(stack)).json()["odometer"]["km"] == 4_900


# 4, 9 ---------------------------------------------------------------------------------------------


def test_a_services_odometer_is_judged_and_back_to_back_readings_are_judged_in_turn(
    stack: RunningStack,
) -> None:
    vin = new_vin()
    delivered_to_a(stack, vin)
    t0 = ago(days=3)
    first = stack.post_event(A, example("odometer.reported", vin, odometer_km=800, read_at=t0.isoformat()))
    jump = stack.post_event(
        A, example("odometer.reported", vin, odometer_km=90_000, read_at=(t0 + timedelta(days=1)).isoformat())
    )
    assert (first.status, jump.status) == (202, 422)
    assert jump.json()["type"].endswith("implausible")
    service = example(
        "service.completed", vin, odometer_km=90_000, completed_at=(t0 + timedelta(days=1)).isoformat()
    )
    assert stack.post_event(A, service).status == 422


# 5 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59+08:00"])
def test_absurd_dates_are_refused_at_once(stack: RunningStack, when: str) -> None:
    answer = stack.post_event(A, example("vehicle.delivered", new_vin(), delivered_at=when))
    assert answer.status == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["data.delivered_at"]


# 6 ------------------------------------------------------------------------------------------------


def test_the_hq_key_cannot_complete_a_dealers_task(stack: RunningStack, rival: dict[str, str]) -> None:
    vin = new_vin()
    delivered_to_a(stack, vin)
    tasks = [t for t in stack.get(f"/dealers/{A}/tasks", a_key(stack)).json()["items"] if t["vin"] == vin]
    path = f"/dealers/{A}/tasks/{tasks[0]['task_id']}/complete"
    hq = stack.request(
        "POST", path, headers={"Authorization": f"Bearer {stack.credentials['hq']['api_key']}"}
    )
    assert hq.status == 403
    other = stack.request("POST", path, headers={"Authorization": f"Bearer {rival['api_key']}"})
    assert other.status == 404
    mine = stack.request("POST", path, headers={"Authorization": f"Bearer {a_key(stack)}"})
    assert mine.status == 200 and mine.json()["status"] == "done"


# 7 ------------------------------------------------------------------------------------------------


def test_an_unknown_route_is_a_404_that_never_repeats_the_key(stack: RunningStack) -> None:
    key = a_key(stack)
    for method, path in (("GET", "/no/such/route"), ("POST", "/webhooks"), ("GET", "/dealers/x/y/z/w")):
        answer = stack.request(method, path, headers={"Authorization": f"Bearer {key}"})
        assert answer.status == 404, (path, answer.body)
        assert answer.header_values("Content-Type") == ["application/problem+json"]
        assert key not in answer.body.decode() and key not in json.dumps(answer.headers)


def test_giant_identifiers_are_not_logged_whole(stack: RunningStack) -> None:
    marker = secrets.token_hex(4)
    giant_partner = ("p" + marker) * 6_000
    giant_id = ("w" + marker) * 6_000
    body = json.dumps(example("odometer.reported", new_vin())).encode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": giant_id,
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,AAAA",
    }
    assert stack.request("POST", f"/webhooks/{giant_partner}", body=body, headers=headers).status == 401
    assert stack.request("POST", f"/webhooks/{A}", body=body, headers=headers).status == 401
    stack.wait_for(
        lambda: sum("webhook rejected" in line and marker in line for line in stack.output) >= 2,
        what="the two rejections in the log",
    )
    logged = [line for line in stack.output if marker in line]
    assert logged and all(len(line) < 2_000 for line in logged)


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [("application/json", "gzip"), ("application/json; charset=latin-1", None)],
)
def test_encoded_or_non_utf8_bodies_are_415(
    stack: RunningStack, content_type: str, encoding: str | None
) -> None:
    body = json.dumps(example("odometer.reported", new_vin())).encode()
    headers = {}
    if encoding:
        body = gzip.compress(body)
        headers["Content-Encoding"] = encoding
    answer = stack.post_event(A, None, body=body, content_type=content_type, headers=headers)
    assert answer.status == 415
    assert answer.header_values("Content-Type") == ["application/problem+json"]


def test_a_partner_tried_before_it_existed_works_the_moment_it_is_added(stack: RunningStack) -> None:
    from chalicelib.inbound import signatures

    partner_id = f"dealer-late-{secrets.token_hex(3)}"
    guessed = signatures.new_secret()
    assert stack.post_event(partner_id, example("odometer.reported", new_vin()), secret=guessed).status == 401
    added = stack.add_partner(partner_id)
    answer = stack.post_event(
        partner_id, example("odometer.reported", new_vin()), secret=added["webhook_secret"]
    )
    assert answer.status == 202
    assert stack.get(f"/dealers/{partner_id}/tasks", added["api_key"]).status == 200


# 8 ------------------------------------------------------------------------------------------------


def test_every_answer_carries_exactly_one_content_type(stack: RunningStack) -> None:
    vin = new_vin()
    delivery = example("vehicle.delivered", vin)
    key = a_key(stack)
    answers = {
        "202": stack.post_event(A, delivery, webhook_id=f"ct-{vin}"),
        "200 duplicate": stack.post_event(A, delivery, webhook_id=f"ct-{vin}"),
        "401": stack.post_event(A, delivery, secret="whsec_" + "A" * 43),
        "415": stack.post_event(A, delivery, content_type="text/plain"),
        "422": stack.post_event(A, {"type": "nope", "data": {}}),
        "tasks": stack.get(f"/dealers/{A}/tasks", key),
        "tasks 401": stack.get(f"/dealers/{A}/tasks", "wrong"),
        "outcome": stack.get(f"/partners/{A}/events/ct-{vin}", key),
        "outcome 404": stack.get(f"/partners/{A}/events/never", key),
        "health": stack.request("GET", "/health"),
    }
    for name, answer in answers.items():
        problem = answer.status >= 400
        expected = ["application/problem+json"] if problem else ["application/json"]
        assert answer.header_values("Content-Type") == expected, (name, answer.status, answer.headers)


# 11 -----------------------------------------------------------------------------------------------


def test_a_delivery_at_the_same_time_by_another_dealer_is_a_conflict(
    stack: RunningStack, rival: dict[str, str]
) -> None:
    vin = new_vin()
    delivery = delivered_to_a(stack, vin)
    conflicting = rivals_delivery(vin, delivery["data"]["delivered_at"])
    answer = stack.post_event(rival["partner_id"], conflicting, secret=rival["webhook_secret"])
    found = applied(stack, rival["partner_id"], answer, rival["api_key"])
    assert (found["outcome"], found["reason"]) == ("ignored", "delivery_conflict")
    assert view(stack, rival["partner_id"], vin, rival["api_key"]).status == 404
    handover = stack.post_event(A, example("handover.submitted", vin))
    assert applied(stack, A, handover, a_key(stack))["outcome"] == "applied"
    assert view(stack, A, vin, a_key(stack)).json()["handover"] is not None
