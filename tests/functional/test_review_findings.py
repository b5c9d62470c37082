"""Edge cases a review found: each must be a clear 4xx or stay correct, never a 5xx or a leak."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.functional.test_lifecycle import body_of, subscribe
from tests.support import dumps

VIN = "LSVAU2180N2123456"


@pytest.mark.parametrize(
    "raw",
    [
        b"\xef\xbb\xbf" + dumps(example("vehicle.delivered")),  # UTF-8 with a BOM
        json.dumps(example("vehicle.delivered")).encode("utf-16"),
        b"[" * 100_000 + b"]" * 100_000,  # nesting deep enough to break a recursive parser
    ],
    ids=["bom", "utf-16", "deep"],
)
def test_bodies_that_are_not_plain_utf8_json_are_400(harness: Harness, raw: bytes) -> None:
    assert harness.post("dealer-a", None, body=raw).status_code == 400


def test_absurd_timestamps_are_401_not_500(harness: Harness) -> None:
    response = harness.post("dealer-a", example("vehicle.delivered"), timestamp=int("9" * 400))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "cursor",
    [
        {"pk": "x"},
        {"pk": {"S": "DEALER#dealer-a"}, "sk": {"N": "1"}},
        ["a"],
        {"pk": {"S": "DEALER#dealer-a"}},
    ],
)
def test_crafted_cursors_are_400(harness: Harness, cursor: Any) -> None:
    token = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
    assert harness.get(f"/dealers/dealer-a/tasks?next={token}").status_code == 400


def test_handover_form_name_is_masked_in_the_vehicle_view(harness: Harness) -> None:
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    assert harness.post("dealer-a", example("handover.submitted")).status_code == 202
    harness.drain()
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    name = example("handover.submitted")["data"]["form"]["basic"]["customer_name"]
    assert view["handover"]["form"]["basic"]["customer_name"] == name[0] + "*" * (len(name) - 1)
    assert name not in json.dumps(view, ensure_ascii=False)


def test_same_customer_id_at_two_dealers_stays_two_customers(harness: Harness) -> None:
    first = example("vehicle.delivered")
    second = example("vehicle.delivered")
    second["data"]["vin"] = "LSVAU2180N2999999"
    second["data"]["customer"].update(name="Other Person", phone="+14155550123")
    assert harness.post("dealer-a", first).status_code == 202
    assert harness.post("dealer-b", second).status_code == 202
    harness.drain()
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert view["customer"]["phone"] == "+86138****8000"


def test_an_older_delivery_never_replaces_a_newer_one(harness: Harness) -> None:
    newer = example("vehicle.delivered")
    older = example("vehicle.delivered")
    older["data"]["delivered_at"] = "2022-01-01T10:00:00+08:00"
    older["data"]["model"] = "OLD"
    assert harness.post("dealer-a", newer).status_code == 202
    harness.drain()
    assert harness.post("dealer-b", older).status_code == 202
    harness.drain()
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert view["delivery"]["model"] == newer["data"]["model"]
    assert harness.get(f"/dealers/dealer-b/vehicles/{VIN}", partner_id="dealer-b").status_code == 404


def test_a_breach_is_announced_even_if_the_task_is_done_before_the_announcement(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib.service import sweep as sweep_module
    from chalicelib.store import tasks

    ops = subscribe("ops")
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    at = datetime.fromisoformat(example("vehicle.delivered")["data"]["delivered_at"]) + timedelta(hours=25)
    monkeypatch.setattr(tasks, "breached_unannounced", lambda limit=500: [])  # crash before announcing
    assert sweep_module.sweep(at).tasks_overdue == 2
    monkeypatch.undo()
    for task in body_of(harness.get("/dealers/dealer-a/tasks?status=overdue"))["items"]:
        tasks.close("dealer-a", task["task_id"], at, "S-01")
    assert sweep_module.sweep(at + timedelta(minutes=1)).breaches_announced == 2
    harness.drain()
    assert [m["body"]["event"] for m in ops()] == ["sla.breached", "sla.breached"]


def test_an_event_that_keeps_failing_leaves_the_redrive_queue_for_the_dlq(
    harness: Harness, capsys: Any
) -> None:
    """Out of attempts outside the queue's own count (stream failures): the event goes to the
    dead-letter queue, where `clm dlq` sees it, and only then leaves the re-drive queue."""
    from chalicelib import aws, clock
    from chalicelib.service import work
    from chalicelib.settings import get_settings
    from chalicelib.store import inbox
    from clm.cli import main

    ref = inbox.InboxRef("dealer-a", "msg_stuck")
    unit = work.inbox_ref(ref.partner_id, ref.webhook_id)
    inbox.record(ref, "handover.submitted", "{}", "h", clock.now())
    for _ in range(inbox.MAX_REDRIVES - 1):
        assert work.note_failure(unit, RuntimeError("still failing")) is False
    assert ref in inbox.stale(clock.now() + timedelta(minutes=5))
    dlq = get_settings().queue_urls["dlq"]
    assert aws.client("sqs").receive_message(QueueUrl=dlq, VisibilityTimeout=0).get("Messages") is None
    assert work.note_failure(unit, RuntimeError("still failing")) is True
    assert ref not in inbox.stale(clock.now() + timedelta(minutes=5))
    item = inbox.load(ref)
    assert item is not None and item.status == "dead_lettered" and item.expires_at is None
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["messages"]
    assert listed["body"] == unit and listed["why"] == "RuntimeError: still failing"
    assert main(["dlq", "replay"]) == 0
    assert work.note_failure(unit, RuntimeError("once more")) is False  # a replay starts the count again
    item = inbox.load(ref)
    assert item is not None and (item.status, item.attempts) == ("pending", 1)


def test_dlq_list_shows_every_message_and_leaves_them_there(harness: Harness, capsys: Any) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from clm.cli import main

    sqs, url = aws.client("sqs"), get_settings().queue_urls["dlq"]
    for n in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "outbox", "outbox_id": f"o{n}"}))
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 25
    assert main(["dlq", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 25


def test_two_readings_accepted_together_never_lower_the_odometer(harness: Harness) -> None:
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    first = example("odometer.reported")
    second = json.loads(json.dumps(first))
    at = datetime.fromisoformat(first["data"]["read_at"])
    second["data"].update(
        odometer_km=first["data"]["odometer_km"] + 80, read_at=(at - timedelta(hours=1)).isoformat()
    )
    assert harness.post("dealer-a", first).status_code == 202  # both accepted before either applies
    assert harness.post("dealer-a", second).status_code == 202  # older: history, not judged
    harness.drain()
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert view["odometer"]["km"] == first["data"]["odometer_km"]  # the latest, in any order
    # In time order: the older reading is kept but, higher than a later one, does not count.
    assert [(r["km"], r["applied"]) for r in view["odometer"]["readings"]] == [
        (first["data"]["odometer_km"] + 80, False),
        (first["data"]["odometer_km"], True),
    ]
