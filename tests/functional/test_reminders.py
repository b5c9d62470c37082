"""Reminders through sweeps at chosen instants: once, at the right moment, to the right people,
never at night, never to an opted-out customer, and never for another dealer's car."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.conftest import Harness, example
from tests.functional.test_lifecycle import body_of

VIN = "LSVAU2180N2123456"
NOW = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)  # the tests' pinned clock: 10:05 in Shanghai
DELIVERED_AT = NOW - timedelta(days=1)
PHONE = "+8613800138000"
OPTED_OUT_AT_SNS = "+8613800138099"  # moto's SNS lists numbers ending in 99 as opted out


def event(event_type: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(example(event_type))
    if "vin" in payload["data"]:
        payload["data"]["vin"] = VIN
    payload["data"].update(changes)
    return payload


def delivery(delivered_at: datetime = DELIVERED_AT, **customer: Any) -> dict[str, Any]:
    payload = event("vehicle.delivered", delivered_at=delivered_at.isoformat())
    payload["data"]["customer"].update(customer)
    return payload


def sms_sent() -> list[tuple[str, str]]:
    """Every SMS the (mocked) SNS accepted: (number, text)."""
    from moto.sns.models import sns_backends

    from chalicelib.settings import get_settings

    settings = get_settings()
    return list(sns_backends[settings.account][settings.region].sms_messages.values())


def sweep(harness: Harness, at: datetime) -> Any:
    from chalicelib.service.sweep import sweep as run

    report = run(at)
    harness.drain()
    return report


def tasks(harness: Harness, dealer: str = "dealer-a") -> dict[str, dict[str, Any]]:
    return {t["kind"]: t for t in body_of(harness.get(f"/dealers/{dealer}/tasks?limit=100", dealer))["items"]}


def view(harness: Harness, dealer: str = "dealer-a") -> Any:
    return body_of(harness.get(f"/dealers/{dealer}/vehicles/{VIN}", dealer))


def post(
    harness: Harness, payload: dict[str, Any], sender: str = "dealer-a", msg_id: str | None = None
) -> None:
    assert harness.post(sender, payload, msg_id=msg_id).status_code == 202
    harness.drain()


def reminder(found: Any, kind: str) -> dict[str, Any]:
    matching = [r for r in found["reminders"] if r["kind"] == kind]
    assert len(matching) == 1, found["reminders"]
    return matching[0]


def test_first_service_sms_goes_out_once_7_days_before_with_both_tasks(harness: Harness) -> None:
    post(harness, delivery())
    due = DELIVERED_AT.replace(month=2, year=2027)  # 3 calendar months after 2026-11-19
    first = view(harness)["next_service"]
    assert datetime.fromisoformat(first["due_at"]) == due and first["due_km"] == 5000
    assert datetime.fromisoformat(first["remind_at"]) == due - timedelta(days=7)

    sweep(harness, due - timedelta(days=7, minutes=1))
    assert sms_sent() == [] and "first_service_care_call" not in tasks(harness)
    sweep(harness, due - timedelta(days=7))
    [(number, text)] = sms_sent()
    assert number == PHONE and text.startswith("【CLM】") and "首次保养" in text and "123456" in text
    found = tasks(harness)
    call, booking = found["first_service_care_call"], found["first_service_booking"]
    assert (call["assignee_id"], call["assignee_role"]) == ("S-01", "sales")
    assert (booking["assignee_id"], booking["assignee_role"]) == ("A-07", "after_sales")
    assert call["status"] == booking["status"] == "open" and call["vin"] == VIN
    for later in (due - timedelta(days=6), due, due + timedelta(days=40)):
        sweep(harness, later)
    assert len(sms_sent()) == 1  # never again, however often sweeps run
    seen = view(harness)
    assert reminder(seen, "first_service")["status"] == "sent"
    assert reminder(seen, "first_service")["fired_by"] == "date"
    assert [e["type"] for e in seen["timeline"] if e["type"].startswith("reminder.")] == ["reminder.sent"]


def test_a_reading_near_the_due_km_fires_it_early_once_even_if_applied_twice(harness: Harness) -> None:
    from chalicelib.service import work
    from chalicelib.store import inbox
    from chalicelib.store.models import InboxItem

    post(harness, delivery(NOW - timedelta(days=30)))
    post(harness, event("odometer.reported", odometer_km=4499, read_at=(NOW - timedelta(days=2)).isoformat()))
    assert sms_sent() == []
    read_at = (NOW - timedelta(days=1)).isoformat()
    post(harness, event("odometer.reported", odometer_km=4500, read_at=read_at), msg_id="crossing")
    assert len(sms_sent()) == 1
    key = inbox.InboxRef("dealer-a", "crossing").key
    InboxItem(*key).update(actions=[InboxItem.status.set("pending")])  # as after a crash
    assert work.handle(work.inbox_ref("dealer-a", "crossing")) == "applied"
    harness.drain()
    post(harness, event("odometer.reported", odometer_km=4800, read_at=NOW.isoformat()))
    sweep(harness, NOW + timedelta(days=90))
    assert len(sms_sent()) == 1
    fired = reminder(view(harness), "first_service")
    assert fired["fired_by"] == "km" and fired["fired_at"] == "2026-11-20T02:05:00.000Z"
    assert {"first_service_care_call", "first_service_booking"} <= set(tasks(harness))
    reading_entry = [e for e in view(harness)["timeline"] if e["type"] == "reminder.sent"]
    assert [e["at"] for e in reading_entry] == ["2026-11-19T02:05:00.000Z"]  # when the reading was taken


def test_at_night_the_sms_waits_for_8_and_the_tasks_do_not(harness: Harness) -> None:
    late = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    post(harness, delivery(late))
    remind_at = datetime(2027, 2, 12, 14, 30, tzinfo=UTC)  # 7 days before the due date, 22:30 local
    report = sweep(harness, remind_at)
    assert report.reminders == {"deferred": 1} and sms_sent() == []
    assert "first_service_booking" in tasks(harness)  # staff see it at once
    deferred = reminder(view(harness), "first_service")
    assert (deferred["status"], deferred["reason"]) == ("deferred", "quiet_hours")
    morning = datetime(2027, 2, 13, 0, 0, tzinfo=UTC)  # 08:00 local
    assert deferred["send_at"] == "2027-02-13T00:00:00.000Z"
    sweep(harness, morning - timedelta(seconds=1))
    assert sms_sent() == []
    assert sweep(harness, morning).sms_sent == 1
    assert len(sms_sent()) == 1
    sweep(harness, morning + timedelta(hours=1))
    assert len(sms_sent()) == 1
    seen = view(harness)
    assert reminder(seen, "first_service")["status"] == "sent"
    kinds = [e["type"] for e in seen["timeline"] if e["type"].startswith("reminder.")]
    assert kinds == ["reminder.deferred", "reminder.sent"]


def test_an_opted_out_customer_gets_no_sms_but_staff_get_their_tasks(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, event("customer.preferences_updated", sms_opt_out=True))
    sweep(harness, DELIVERED_AT + timedelta(days=90))
    assert sms_sent() == []
    assert {"first_service_care_call", "first_service_booking"} <= set(tasks(harness))
    found = reminder(view(harness), "first_service")
    assert (found["status"], found["reason"]) == ("suppressed", "sms_opt_out")


def test_a_number_on_the_sns_opted_out_list_is_checked_before_sending(harness: Harness) -> None:
    post(harness, delivery(phone=OPTED_OUT_AT_SNS))
    report = sweep(harness, DELIVERED_AT + timedelta(days=90))
    assert sms_sent() == [] and report.sms_suppressed + report.reminders.get("sent", 0) >= 1
    found = reminder(view(harness), "first_service")
    assert (found["status"], found["reason"]) == ("suppressed", "sns_opted_out")


def test_an_opt_out_between_the_reminder_and_8_stops_the_deferred_sms(harness: Harness) -> None:
    late = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)  # 22:30 local
    post(harness, delivery(late))
    sweep(harness, datetime(2027, 2, 12, 14, 30, tzinfo=UTC))
    post(harness, event("customer.preferences_updated", sms_opt_out=True))
    sweep(harness, datetime(2027, 2, 13, 0, 0, tzinfo=UTC))
    assert sms_sent() == []
    assert reminder(view(harness), "first_service")["status"] == "suppressed"


def test_after_the_first_service_the_next_threshold_follows_its_odometer(harness: Harness) -> None:
    post(harness, delivery(NOW - timedelta(days=30)))
    done_at = NOW - timedelta(days=20)
    post(harness, event("service.completed", odometer_km=5000, completed_at=done_at.isoformat()))
    seen = view(harness)
    assert seen["next_service"]["kind"] == "maintenance" and seen["next_service"]["due_km"] == 15000
    assert datetime.fromisoformat(seen["next_service"]["due_at"]) == done_at.replace(year=2027)
    assert reminder(seen, "first_service")["status"] == "closed"  # serviced before it was due
    sweep(harness, NOW + timedelta(days=90))  # the first-service date passes: nothing
    assert sms_sent() == []
    assert reminder(view(harness), "first_service")["reason"] == "serviced"
    post(
        harness, event("odometer.reported", odometer_km=14499, read_at=(NOW - timedelta(days=10)).isoformat())
    )
    assert sms_sent() == []
    post(
        harness, event("odometer.reported", odometer_km=14500, read_at=(NOW - timedelta(days=9)).isoformat())
    )
    [(_, text)] = sms_sent()
    assert "保养" in text and "15000" in text
    found = tasks(harness)
    assert found["maintenance_booking"]["assignee_id"] == "A-07"
    assert found["maintenance_care_call"]["assignee_id"] == "S-01"
    # The maintenance that follows closes that cycle's tasks and starts the next one.
    after = NOW - timedelta(days=8)
    post(
        harness,
        event(
            "service.completed",
            kind="maintenance",
            repair_order_id="RO-2",
            odometer_km=14900,
            completed_at=after.isoformat(),
        ),
    )
    found = tasks(harness)
    assert found["maintenance_booking"]["status"] == found["maintenance_care_call"]["status"] == "done"
    assert view(harness)["next_service"]["due_km"] == 24900


def test_a_repair_does_not_restart_the_cycle(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, event("service.completed", kind="repair", odometer_km=1200, completed_at=NOW.isoformat()))
    assert view(harness)["next_service"]["kind"] == "first_service"


def test_every_service_opens_a_return_visit_that_the_next_survey_closes(harness: Harness) -> None:
    post(harness, delivery())
    done_at = NOW + timedelta(minutes=1)
    post(harness, event("service.completed", odometer_km=5000, completed_at=done_at.isoformat()))
    visit = tasks(harness)["service_return_visit"]
    assert (visit["assignee_id"], visit["assignee_role"], visit["status"]) == ("A-07", "after_sales", "open")
    assert datetime.fromisoformat(visit["due_at"]) == done_at + timedelta(days=3)
    post(harness, event("survey.completed", at=(done_at + timedelta(minutes=1)).isoformat()))
    assert tasks(harness)["service_return_visit"]["status"] == "done"


def policy(expires_on: date, policy_no: str = "PA-1") -> dict[str, Any]:
    return event("insurance.policy_updated", expires_on=expires_on.isoformat(), policy_no=policy_no)


def test_insurance_renewal_30_and_7_days_before_with_the_advisors_task(harness: Harness) -> None:
    post(harness, delivery())
    expires = date(2027, 1, 31)
    post(harness, policy(expires))
    day30 = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)  # 08:00 local, 30 days before
    sweep(harness, day30 - timedelta(hours=8, seconds=1))  # 23:59:59 local the day before
    assert sms_sent() == []
    sweep(harness, day30 - timedelta(hours=8))  # 00:00 local: due, but quiet until 08:00
    assert sms_sent() == []
    assert tasks(harness)["insurance_renewal"]["assignee_id"] == "S-01"
    sweep(harness, day30)
    [(_, text)] = sms_sent()
    assert "保险" in text and "2027-01-31" in text and "30" in text
    sweep(harness, datetime(2027, 1, 24, 0, 0, tzinfo=UTC))  # 08:00 local, 7 days before
    assert len(sms_sent()) == 2 and "7" in sms_sent()[1][1]
    sweep(harness, datetime(2027, 1, 25, 0, 0, tzinfo=UTC))
    assert len(sms_sent()) == 2


def test_a_renewal_closes_the_task_and_stops_the_second_sms(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, policy(date(2027, 1, 31)))
    sweep(harness, datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    assert len(sms_sent()) == 1
    from chalicelib import clock

    with clock.pinned(datetime(2027, 1, 5, 2, 0, tzinfo=UTC)):
        post(harness, policy(date(2028, 1, 31), "PA-2"))
    assert tasks(harness)["insurance_renewal"]["status"] == "done"
    sweep(harness, datetime(2027, 1, 24, 0, 0, tzinfo=UTC))
    assert len(sms_sent()) == 1  # renewed: no second reminder for the old policy
    renewals = [r for r in view(harness)["reminders"] if r["kind"] == "insurance_renewal"]
    assert {(r["details"]["policy_no"], r["status"]) for r in renewals} == {
        ("PA-1", "sent"),
        ("PA-1", "closed"),
        ("PA-2", "scheduled"),
    }


def test_a_policy_reported_days_before_it_expires_gets_one_message(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, policy((NOW + timedelta(days=5)).date()))
    sweep(harness, NOW + timedelta(hours=1))
    assert len(sms_sent()) == 1


def test_a_birthday_greeting_at_10_local_once_a_year(harness: Harness) -> None:
    post(harness, delivery(birthday="1990-12-01"))
    greeting = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    sweep(harness, greeting - timedelta(seconds=1))
    assert sms_sent() == []
    sweep(harness, greeting)
    [(number, text)] = sms_sent()
    assert number == PHONE and "生日快乐" in text
    sweep(harness, greeting + timedelta(hours=3))
    assert len(sms_sent()) == 1
    sweep(harness, greeting.replace(year=2027))
    assert [t for _, t in sms_sent() if "生日快乐" in t] == [text, text]  # next year's


def test_the_birthday_greeting_has_its_own_opt_out(harness: Harness) -> None:
    post(harness, delivery(birthday="1990-12-01"))
    post(harness, event("customer.preferences_updated", care_opt_out=True))
    sweep(harness, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert sms_sent() == []
    sweep(harness, DELIVERED_AT + timedelta(days=90))  # service notices still go out
    assert len(sms_sent()) == 1


def test_english_speaking_customers_get_english(harness: Harness) -> None:
    post(harness, delivery(locale="en"))
    sweep(harness, DELIVERED_AT + timedelta(days=90))
    [(_, text)] = sms_sent()
    assert text.startswith("[CLM]") and "first service" in text


# --- a second, hostile dealer -------------------------------------------------------------------


def test_another_dealers_policy_for_my_car_changes_and_reveals_nothing(harness: Harness) -> None:
    post(harness, delivery())
    before = view(harness)
    hostile = policy((NOW + timedelta(days=40)).date(), "EVIL-1")
    assert harness.post("dealer-b", hostile, msg_id="evil-policy").status_code == 202
    harness.drain()
    seen = body_of(harness.get("/partners/dealer-b/events/evil-policy", "dealer-b"))
    assert (seen["outcome"], seen["reason"]) == ("pending", "awaiting_delivery")
    after = view(harness)
    assert after["insurance"] is None and after["reminders"] == before["reminders"]
    sweep(harness, NOW + timedelta(days=20))
    assert sms_sent() == [] and "insurance_renewal" not in tasks(harness)
    assert tasks(harness, "dealer-b") == {}


def test_another_dealers_preferences_for_my_customer_id_touch_only_its_own(harness: Harness) -> None:
    post(harness, delivery())
    hostile = event("customer.preferences_updated", sms_opt_out=True, birthday="1990-12-01")
    assert harness.post("dealer-b", hostile, msg_id="evil-prefs").status_code == 202
    harness.drain()
    assert view(harness)["customer"]["sms_opt_out"] is False
    sweep(harness, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))  # dealer-b's own "customer" has no phone
    assert sms_sent() == []
    sweep(harness, DELIVERED_AT + timedelta(days=90))
    assert [n for n, _ in sms_sent()] == [PHONE]  # dealer-a's customer still reminded


def test_a_sweep_reads_only_what_is_due(harness: Harness) -> None:
    """No Scan, and the due index is queried only for what is due (counted at botocore)."""
    from chalicelib import aws

    post(harness, delivery())
    calls: list[str] = []
    aws.client("dynamodb").meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    sweep(harness, NOW + timedelta(hours=1))
    assert "Scan" not in calls


def test_the_vehicle_view_with_reminders_matches_its_published_schema(harness: Harness) -> None:
    from jsonschema import Draft202012Validator

    post(harness, delivery(datetime(2026, 11, 19, 14, 30, tzinfo=UTC)))  # 22:30 local: deferred
    post(harness, policy((NOW + timedelta(days=40)).date()))
    sweep(harness, datetime(2027, 2, 12, 14, 30, tzinfo=UTC))
    document = body_of(harness.client.http.get("/openapi.json"))
    schema = {**document["components"]["schemas"]["VehicleView"], "components": document["components"]}
    seen = view(harness)
    assert {r["status"] for r in seen["reminders"]} >= {"deferred", "closed"}
    Draft202012Validator(schema).validate(seen)


def test_a_sweep_that_comes_late_sends_one_renewal_message_not_both_stages(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, policy(date(2027, 1, 31)))
    sweep(harness, datetime(2027, 1, 25, 2, 0, tzinfo=UTC))  # 6 days before, the first sweep since
    [(_, text)] = sms_sent()
    assert "7" in text
    stages = {r["details"]["days"]: r for r in view(harness)["reminders"] if r["kind"] == "insurance_renewal"}
    assert (stages[30]["status"], stages[30]["reason"]) == ("closed", "overtaken")
    assert stages[7]["status"] == "sent" and tasks(harness)["insurance_renewal"]["status"] == "open"
