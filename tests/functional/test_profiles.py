"""Customer profiles and preference tags, driven on and off through events, where the work is,
and nobody else's (DESIGN.md §6, §8; seed 002 §5 (一), §4 (一))."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.functional.test_lifecycle import body_of
from tests.functional.test_reminders import DELIVERED_AT, NOW, VIN, delivery, event, post, sweep, tasks

CUSTOMER = "C-1001"  # the examples' customer


def profile(harness: Harness, dealer: str = "dealer-a", customer: str = CUSTOMER) -> Any:
    return body_of(harness.get(f"/dealers/{dealer}/customers/{customer}", dealer))


def tags(harness: Harness, dealer: str = "dealer-a") -> dict[str, Any]:
    return {t["tag"]: t for t in profile(harness, dealer)["tags"]}


def counts(harness: Harness, dealer: str = "dealer-a") -> dict[str, int]:
    found = body_of(harness.get(f"/dealers/{dealer}/tags", dealer))["items"]
    return {i["tag"]: i["customers"] for i in found}


def drive(minutes: int, at: datetime = NOW - timedelta(hours=2), customer: str = CUSTOMER) -> dict[str, Any]:
    payload = copy.deepcopy(example("sales.test_drive_completed"))
    payload["data"].update(duration_min=minutes, at=at.isoformat(), customer_id=customer)
    return payload


def haggle(rounds: int, at: datetime, model: str = "S7", customer: str = CUSTOMER) -> dict[str, Any]:
    payload = copy.deepcopy(example("sales.negotiation_recorded"))
    payload["data"].update(rounds=rounds, at=at.isoformat(), model=model, customer_id=customer)
    return payload


def handover(core_need: str, concerns: list[str]) -> dict[str, Any]:
    payload = event("handover.submitted")
    payload["data"]["form"]["needs"] = {"core_need": core_need, "concerns": concerns}
    return payload


def test_a_50_minute_test_drive_shows_on_the_profile_with_evidence_and_on_the_care_call_task(
    harness: Harness,
) -> None:
    post(harness, delivery())
    post(harness, drive(50))
    found = profile(harness)
    customer = example("vehicle.delivered")["data"]["customer"]
    assert found["name"] != customer["name"] and customer["phone"] not in str(found)
    assert [v["vin"] for v in found["vehicles"]] == [VIN]
    tech = tags(harness)["tech_enthusiast"]
    assert tech["label"] == {"zh-CN": "科技配置爱好者", "en": "Tech enthusiast"}
    assert tech["evidence"] == [
        {
            "source": "sales.test_drive_completed",
            "at": "2026-11-20T00:05:00.000Z",
            "model": "S7",
            "duration_min": 50,
        }
    ]
    assert [(h["tag"], h["change"]) for h in found["tag_history"]] == [("tech_enthusiast", "added")]

    remind_at = datetime.fromisoformat(
        body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["next_service"]["remind_at"]
    )
    sweep(harness, remind_at)
    call = tasks(harness)["first_service_care_call"]
    assert [t["tag"] for t in call["customer_tags"]] == ["tech_enthusiast"]
    assert "software update" in call["customer_tags"][0]["talking_point"]["en"]
    assert "evidence" not in call["customer_tags"][0]
    assert "customer_tags" not in tasks(harness)["handover_submit"]

    # Read as they are now, not as they were when the task opened.
    post(harness, handover("周末带孩子出游，要家庭用车", ["后排空間"]))
    call = tasks(harness)["first_service_care_call"]
    assert [t["tag"] for t in call["customer_tags"]] == ["family_space", "tech_enthusiast"]
    assert counts(harness) == {
        "tech_enthusiast": 1,
        "economy_maintenance": 0,
        "price_sensitive": 0,
        "config_first": 0,
        "family_space": 1,
    }


def test_negotiations_drive_price_sensitive_and_config_first_on_and_off(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, drive(35))
    assert "tech_enthusiast" not in tags(harness)
    post(harness, haggle(3, NOW - timedelta(hours=3)))
    assert set(tags(harness)) == {"price_sensitive"}
    assert counts(harness)["price_sensitive"] == 1
    # The same model's negotiation recorded again, later: one round after all.
    post(harness, haggle(1, NOW - timedelta(hours=1)))
    found = tags(harness)
    assert set(found) == {"config_first"}
    assert [e["source"] for e in found["config_first"]["evidence"]] == [
        "sales.negotiation_recorded",
        "sales.test_drive_completed",
    ]
    # An older record of that negotiation arriving late changes nothing.
    post(harness, haggle(5, NOW - timedelta(hours=5)))
    assert set(tags(harness)) == {"config_first"}
    history = [(h["tag"], h["change"]) for h in profile(harness)["tag_history"]]
    assert history == [
        ("price_sensitive", "added"),
        ("config_first", "added"),
        ("price_sensitive", "dropped"),
    ]
    assert (counts(harness)["price_sensitive"], counts(harness)["config_first"]) == (0, 1)
    # Another model bargained over for 3 rounds: not every negotiation is of one round any more.
    post(harness, haggle(3, NOW - timedelta(minutes=30), model="S9"))
    assert set(tags(harness)) == {"price_sensitive"}
    assert (counts(harness)["price_sensitive"], counts(harness)["config_first"]) == (1, 0)


def test_a_resent_event_changes_no_tag_and_no_history(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, drive(60), msg_id="drive-1")
    since = tags(harness)["tech_enthusiast"]["since"]
    post(harness, drive(60), msg_id="drive-1-again")  # the same test drive, under another id
    assert harness.post("dealer-a", drive(60), msg_id="drive-1").status_code == 200  # a duplicate
    harness.drain()
    assert tags(harness)["tech_enthusiast"]["since"] == since
    assert len(tags(harness)["tech_enthusiast"]["evidence"]) == 1
    assert len(profile(harness)["tag_history"]) == 1 and counts(harness)["tech_enthusiast"] == 1


def test_the_handover_form_and_packages_tag_the_customer_and_a_new_form_drops_it(harness: Harness) -> None:
    tech = delivery()
    tech["data"]["packages"] = ["adas", "smart_cockpit"]
    post(harness, tech)
    assert tags(harness)["tech_enthusiast"]["evidence"] == [
        {"source": "vehicle.delivered", "vin": VIN, "packages": ["adas", "smart_cockpit"]}
    ]
    # The delivery sent again, corrected: no driver-assistance packages after all.
    corrected = delivery(delivered_at=DELIVERED_AT + timedelta(hours=1))
    corrected["data"]["packages"] = ["smart_cockpit"]
    post(harness, corrected)
    assert "tech_enthusiast" not in tags(harness)
    assert profile(harness)["vehicles"][0]["packages"] == ["smart_cockpit"]
    post(harness, event("handover.submitted"))  # the example: 家庭用车,注重空间和油耗
    assert tags(harness)["family_space"]["evidence"][0]["words"] == ["家庭", "空间"]
    post(harness, handover("通勤省油", ["充电方便"]))  # filed again, corrected
    assert "family_space" not in tags(harness)
    assert ("family_space", "dropped") in [(h["tag"], h["change"]) for h in profile(harness)["tag_history"]]


def _service(ro: str, months: int, km: int, kind: str = "maintenance", items: int = 3) -> dict[str, Any]:
    at = DELIVERED_AT + timedelta(days=round(months * 30.44))
    return event(
        "service.completed",
        repair_order_id=ro,
        kind=kind,
        odometer_km=km,
        completed_at=at.isoformat(),
        items=[f"item {n}" for n in range(items)],
    )


def test_late_maintenance_tags_economy_maintenance_and_a_service_on_plan_drops_it(harness: Harness) -> None:
    post(harness, delivery(delivered_at=DELIVERED_AT - timedelta(days=round(50 * 30.44))))
    # Shifted back 50 months: services at months 3, 18 and 33 after delivery are 15 months apart.
    base = -50
    post(harness, _service("RO-1", base + 3, 5000, kind="first_service"))
    post(harness, _service("RO-2", base + 18, 15000))
    assert "economy_maintenance" not in tags(harness)  # one gap
    post(harness, _service("RO-3", base + 33, 25000))
    gaps = tags(harness)["economy_maintenance"]["evidence"]
    assert [(g["repair_order_id"], g["km"]) for g in gaps] == [("RO-2", 10000), ("RO-3", 10000)]
    assert all(g["months"] >= 14.4 for g in gaps)
    post(harness, _service("RO-4", base + 45, 35000))  # 12 months, 10,000 km: on plan
    assert "economy_maintenance" not in tags(harness)


def test_a_hostile_dealer_s_sales_events_change_and_reveal_nothing_of_another_s_customer(
    harness: Harness,
) -> None:
    post(harness, delivery())
    post(harness, drive(50))
    before = profile(harness)
    before_counts = counts(harness)
    # dealer-b names dealer-a's customer id: it is dealer-b's own customer of that id.
    post(harness, haggle(4, NOW - timedelta(hours=1)), sender="dealer-b")
    post(harness, drive(20), sender="dealer-b")
    assert profile(harness) == before and counts(harness) == before_counts
    theirs = profile(harness, "dealer-b")
    assert [t["tag"] for t in theirs["tags"]] == ["price_sensitive"]
    assert theirs["name"] is None and theirs["phone"] is None and theirs["vehicles"] == []
    assert harness.get(f"/dealers/dealer-a/customers/{CUSTOMER}", "dealer-b").status_code == 404
    assert harness.get("/dealers/dealer-a/tags", "dealer-b").status_code == 404
    assert counts(harness, "dealer-b")["tech_enthusiast"] == 0
    assert harness.get("/dealers/dealer-a/customers/nobody").status_code == 404
    assert body_of(harness.get(f"/dealers/dealer-a/customers/{CUSTOMER}", "hq")) == before


def test_a_test_drive_before_the_delivery_tags_the_customer_once_it_is_delivered(harness: Harness) -> None:
    post(harness, drive(50))  # the customer exists from its first mention
    assert "tech_enthusiast" in tags(harness)
    post(harness, delivery())
    found = profile(harness)
    assert [t["tag"] for t in found["tags"]] == ["tech_enthusiast"] and found["vehicles"][0]["vin"] == VIN


def test_a_lead_task_carries_the_customer_s_tags(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, haggle(3, NOW - timedelta(hours=1)))
    lead = example("lead.captured")
    lead["data"].update(customer_id=CUSTOMER, captured_at=(NOW - timedelta(minutes=5)).isoformat())
    lead["data"].pop("vin", None)  # a lead about the customer, not a vehicle: found through the lead
    post(harness, lead)
    (tag,) = tasks(harness)["lead_follow_up"]["customer_tags"]
    assert (tag["tag"], tag["label"]["zh-CN"]) == ("price_sensitive", "价格敏感型客户")


def test_two_events_of_one_customer_applied_at_once_both_count(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test drive's refresh reads before the negotiation is kept; the negotiation's refresh
    saves first: the test drive's save is refused, and it reads again."""
    from chalicelib.store import profiles as store

    post(harness, delivery())
    real, calls = store.read, [0]

    def read_then_another_event(dealer_id: str, customer_id: str) -> Any:
        found = real(dealer_id, customer_id)
        calls[0] += 1
        if calls[0] == 1:  # the negotiation is applied, and refreshed, meanwhile
            post(harness, haggle(4, NOW - timedelta(hours=1)))
        return found

    saved, refused = store.save_tags, []

    def save_tags(*args: Any) -> bool:
        done = saved(*args)
        refused.extend([] if done else [args[1]])
        return done

    monkeypatch.setattr(store, "read", read_then_another_event)
    monkeypatch.setattr(store, "save_tags", save_tags)
    post(harness, drive(50))
    monkeypatch.undo()
    assert refused == [{"tech_enthusiast": refused[0]["tech_enthusiast"]}]  # from the first read alone
    # The drive's read, the negotiation's, the drive's again after its save was refused (the nested
    # drain replays a few stream records: refreshes that find nothing to change).
    assert calls[0] >= 3
    assert set(tags(harness)) == {"tech_enthusiast", "price_sensitive"}
    assert counts(harness)["tech_enthusiast"] == counts(harness)["price_sensitive"] == 1
    history = [(h["tag"], h["change"]) for h in profile(harness)["tag_history"]]
    assert sorted(history) == [("price_sensitive", "added"), ("tech_enthusiast", "added")]


def test_a_customer_s_signals_in_one_stream_batch_refresh_its_tags_once_after_its_events(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service import profiles as service

    post(harness, delivery())
    real, seen = service.refresh, []

    def refresh(dealer_id: str, customer_id: str, now: datetime) -> str:
        seen.append((dealer_id, customer_id))
        return real(dealer_id, customer_id, now)

    monkeypatch.setattr(service, "refresh", refresh)
    for n, minutes in enumerate((20, 50, 35)):
        assert harness.post("dealer-a", drive(minutes, NOW - timedelta(hours=n + 1))).status_code == 202
    harness.drain()
    assert 1 <= len(seen) < 3  # the three drives' signals share a batch or two, never one refresh each
    assert tags(harness)["tech_enthusiast"]["evidence"][0]["duration_min"] == 50


def test_a_failed_tag_refresh_is_retried_from_the_queue_and_the_tags_follow(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service import work
    from chalicelib.store import profiles as store

    monkeypatch.setattr(work, "RETRY_DELAY_SECONDS", 0)
    post(harness, delivery())
    real, failures = store.save_tags, [0]

    def save_fails_once(*args: Any) -> bool:
        if failures[0] == 0:
            failures[0] += 1
            raise RuntimeError("throttled")
        return real(*args)

    monkeypatch.setattr(store, "save_tags", save_fails_once)
    post(harness, drive(50))  # applied; its refresh fails in the stream and is retried from the queue
    assert failures[0] == 1 and "tech_enthusiast" in tags(harness)
    assert counts(harness)["tech_enthusiast"] == 1


def test_a_tag_refresh_failing_every_time_waits_in_the_dlq_with_its_error_and_replays(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from chalicelib import aws
    from chalicelib.service import work
    from chalicelib.settings import get_settings
    from chalicelib.store import profiles as store
    from clm.cli import main

    monkeypatch.setattr(work, "RETRY_DELAY_SECONDS", 0)
    urls = get_settings().queue_urls
    aws.client("sqs").set_queue_attributes(QueueUrl=urls["work"], Attributes={"VisibilityTimeout": "0"})
    post(harness, delivery())
    real, attempts = store.save_tags, [0]

    def save_fails(*args: Any) -> bool:
        attempts[0] += 1
        raise RuntimeError("throttled while saving the tags of +86 138 0013 8000")

    monkeypatch.setattr(store, "save_tags", save_fails)
    post(harness, drive(50))  # the stream's attempt, then the work queue's five receives
    assert attempts[0] == 6 and "tech_enthusiast" not in tags(harness)
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["messages"]
    assert listed["body"]["kind"] == "tags" and listed["body"]["customer_id"] == CUSTOMER
    assert listed["why"].startswith("RuntimeError: throttled while saving the tags of ")
    assert "0013" not in listed["why"] and "8000" not in listed["why"]  # masked, as in the inbox
    assert main(["dlq", "list"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-1] == "why"
    assert row.split()[2:4] == ["tags", f"dealer-a/{CUSTOMER}"] and "RuntimeError: throttled" in row

    monkeypatch.setattr(store, "save_tags", real)
    assert main(["dlq", "replay", listed["message_id"]]) == 0
    harness.drain()
    assert "tech_enthusiast" in tags(harness) and counts(harness)["tech_enthusiast"] == 1
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
