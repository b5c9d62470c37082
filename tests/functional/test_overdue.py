"""Missed installments: the customer's SMS and the dealer's follow-up the day after, collections at
30 days past due, DPD buckets, payments closing the work, and the holds between the arms
(DESIGN.md §6; seeds 000, 003). Every instant is a sweep's `--at`, as `clm sweep --at` runs them."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Harness, example, pin_both
from tests.functional.test_cases import all_tasks, complaint, step
from tests.functional.test_lifecycle import body_of, subscribe
from tests.functional.test_loans import loans, pay_by_wechat
from tests.functional.test_reminders import PHONE, VIN, delivery, post, sms_sent, sweep

DUE = date(2026, 11, 30)  # the last day of a month: day 1 is 1 December
AMOUNT = 350000
RED_TEXT = "刹车失灵，差点追尾"


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day.isoformat()}T{hour:02d}:{minute:02d}:00+08:00")


def day(n: int) -> date:
    """The local day the installment due on DUE is `n` days past due."""
    return DUE + timedelta(days=n)


def booked(loan_id: str = "L-1", installments: int = 1, dealer_id: str = "dealer-a") -> dict[str, Any]:
    payload = copy.deepcopy(example("loan.booked"))
    payload["data"].update(loan_id=loan_id, dealer_id=dealer_id, vin=VIN)
    payload["data"]["schedule"] = [
        {
            "seq": n + 1,
            "due_date": (DUE + timedelta(days=30 * n)).isoformat(),
            "amount_minor": AMOUNT,
            "payment_ref": f"{loan_id}P{n + 1:02d}",
        }
        for n in range(installments)
    ]
    return payload


def overdue_texts() -> list[str]:
    return [text for number, text in sms_sent() if number == PHONE and "尚未收到" in text]


def at(harness: Harness, instant: datetime) -> Any:
    """Both clocks at `instant`, and a sweep run as of it."""
    pin_both(instant)
    return sweep(harness, instant)


def kinds(harness: Harness, kind: str) -> list[dict[str, Any]]:
    return all_tasks(harness, kind=kind)


def test_the_day_after_a_missed_due_date_the_customer_gets_one_sms_and_the_dealer_a_task_and_warning(
    harness: Harness,
) -> None:
    warnings = subscribe("staff_tasks", {"dealer_id": ["dealer-a"]}, "dealer-a-tasks")
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(DUE, 23, 59))  # due today: not missed yet
    assert kinds(harness, "overdue_follow_up") == [] and overdue_texts() == []

    at(harness, local(day(1)))  # 00:00 local: the work opens, the SMS waits for 08:00
    (task,) = kinds(harness, "overdue_follow_up")
    advisor = example("vehicle.delivered")["data"]["sales_advisor"]["id"]
    assert (task["assignee_role"], task["assignee_id"], task["ref"], task["vin"]) == (
        "sales",
        advisor,
        "L-1",
        VIN,
    )
    assert task["details"]["days_past_due"] == 1
    warned = [m["body"] for m in warnings() if m["body"]["event"] == "loan.overdue"]
    assert [(w["loan_id"], w["days_past_due"], w["dpd_bucket"], w["task"]["task_id"]) for w in warned] == [
        ("L-1", 1, "1-30", task["task_id"])
    ]
    assert overdue_texts() == []
    at(harness, local(day(1), 8))
    at(harness, local(day(1), 9))  # once
    (text,) = overdue_texts()
    assert text.startswith("【") and "第1期" in text and "3500.00" in text and DUE.isoformat() in text
    (item,) = loans(harness)["items"]
    assert (item["status"], item["days_past_due"], item["dpd_bucket"]) == ("overdue", 1, "1-30")
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    types = [e["type"] for e in view["timeline"]]
    assert "loan.dpd_bucket_changed" in types and "reminder.deferred" in types


def test_at_30_days_past_due_hq_collections_gets_a_task_under_the_dealer_and_each_bucket_is_recorded(
    harness: Harness,
) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(day(1), 8))
    at(harness, local(day(29), 23, 59))
    assert kinds(harness, "collections") == []
    at(harness, local(day(30)))
    (task,) = kinds(harness, "collections")
    assert (task["assignee_role"], task["assignee_id"], task["ref"], task["hold"]) == (
        "collections",
        None,
        "L-1",
        None,
    )
    assert task["details"]["days_past_due"] == 30
    assert len(overdue_texts()) == 1  # no further SMS
    assert body_of(harness.get("/dealers/dealer-a/tasks?limit=100", "hq"))["items"]  # HQ sees it
    path = f"/dealers/dealer-a/tasks/{task['task_id']}/complete"
    assert harness.client.http.post(path, headers=_auth(harness, "dealer-a")).status_code == 403
    assert harness.client.http.post(path, headers=_auth(harness, "dealer-b")).status_code == 404

    at(harness, local(day(31)))
    at(harness, local(day(61)))
    at(harness, local(day(91)))
    (item,) = loans(harness)["items"]
    assert (item["days_past_due"], item["dpd_bucket"]) == (91, "90+")
    timeline = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["timeline"]
    buckets = [e["data"]["dpd_bucket"] for e in timeline if e["type"] == "loan.dpd_bucket_changed"]
    assert sorted(buckets) == sorted(["1-30", "31-60", "61-90", "90+"])
    assert len(kinds(harness, "collections")) == 1 and len(overdue_texts()) == 1
    done = harness.client.http.post(path, headers=_auth(harness, "hq"))
    assert done.status_code == 200 and body_of(done)["status"] == "done"


def _auth(harness: Harness, partner_id: str) -> dict[str, str]:
    return {"authorization": f"Bearer {harness.creds[partner_id].api_key}"}


def test_a_payment_closes_the_installment_s_tasks_and_stops_its_overdue_messages(harness: Harness) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(day(1), 8))
    at(harness, local(day(30)))
    assert len(kinds(harness, "overdue_follow_up")) == len(kinds(harness, "collections")) == 1
    pin_both(local(day(30), 10))
    pay_by_wechat(harness, "4200001001", "L-1P01")
    for kind in ("overdue_follow_up", "collections"):
        (task,) = kinds(harness, kind)
        assert task["status"] == "done"
    (item,) = loans(harness)["items"]
    assert item["status"] == "settled"  # its only installment
    at(harness, local(day(31), 9))
    at(harness, local(day(61), 9))
    assert len(overdue_texts()) == 1  # the day-1 SMS, no other


def test_paying_the_oldest_of_two_late_installments_leaves_collections_with_the_next(
    harness: Harness,
) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(installments=3), sender="finance-demo")
    at(harness, local(day(30)))  # the first is 30 days late
    at(harness, local(day(65)))  # the second is 35 days late: the first's task covers the loan
    (first,) = kinds(harness, "collections")
    pin_both(local(day(65), 10))
    pay_by_wechat(harness, "4200001002", "L-1P01")
    found = {t["task_id"]: t for t in kinds(harness, "collections")}
    assert found.pop(first["task_id"])["status"] == "done"
    (second,) = found.values()
    assert (second["status"], second["details"]["seq"], second["details"]["days_past_due"]) == ("open", 2, 35)
    (item,) = loans(harness)["items"]
    assert (item["days_past_due"], item["dpd_bucket"]) == (35, "31-60")


def test_a_settlement_closes_every_overdue_task_of_the_loan(harness: Harness) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(installments=2), sender="finance-demo")
    at(harness, local(day(30)))
    settled = copy.deepcopy(example("loan.settled"))
    settled["data"].update(loan_id="L-1", at=local(day(30), 9).isoformat())
    pin_both(local(day(30), 10))
    post(harness, settled, sender="finance-demo")
    work = kinds(harness, "overdue_follow_up") + kinds(harness, "collections")
    assert {t["status"] for t in work} == {"done"}
    at(harness, local(day(31), 9))  # the second installment's stages close: nothing more goes out
    assert len(kinds(harness, "overdue_follow_up")) == 1


def test_an_open_red_complaint_pauses_the_overdue_sms_and_holds_collections_until_resolved(
    harness: Harness,
) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    pin_both(local(DUE, 12))
    post(harness, complaint(RED_TEXT, opened_at=local(DUE, 11)))
    at(harness, local(day(1)))
    at(harness, local(day(1), 9))
    assert overdue_texts() == []  # paused
    assert len(kinds(harness, "overdue_follow_up")) == 1  # the dealer's work is not
    timeline = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["timeline"]
    (paused,) = [e for e in timeline if e["type"] == "reminder.paused"]
    assert paused["data"]["reason"] == "red_complaint_open" and paused["data"]["complaint_ids"] == ["CP-1"]

    at(harness, local(day(30)))
    (task,) = kinds(harness, "collections")
    assert task["hold"] == {"reason": "red_complaint_open", "complaint_ids": ["CP-1"]}
    assert overdue_texts() == []

    pin_both(local(day(30), 10))
    post(harness, step("resolved", at=local(day(30), 10)))
    (task,) = kinds(harness, "collections")
    assert task["hold"] is None
    at(harness, local(day(30), 11))  # looked at again within the hour
    assert len(overdue_texts()) == 1


def test_a_red_complaint_opened_after_the_overdue_sms_was_queued_for_08_00_still_pauses_it(
    harness: Harness,
) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(day(1)))  # fired at 00:00: the SMS waits for 08:00
    pin_both(local(day(1), 3))
    post(harness, complaint(RED_TEXT, opened_at=local(day(1), 2)))
    at(harness, local(day(1), 8))
    at(harness, local(day(1), 8, 30))
    assert overdue_texts() == []  # paused at its send time
    timeline = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["timeline"]
    assert "reminder.paused" in [e["type"] for e in timeline]
    pin_both(local(day(1), 10))
    post(harness, step("resolved", at=local(day(1), 10)))
    at(harness, local(day(1), 10, 30))
    assert len(overdue_texts()) == 1  # sent once the complaint is resolved
    at(harness, local(day(1), 12))
    assert len(overdue_texts()) == 1


def test_a_stale_note_of_a_red_complaint_holds_nothing(harness: Harness) -> None:
    """The vehicle's note of open red complaints is a hint; a resolved complaint (an opening and
    its resolution applied at once can leave the note behind) holds neither SMS nor collections."""
    from chalicelib.store import records

    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    pin_both(local(DUE, 12))
    post(harness, complaint(RED_TEXT, opened_at=local(DUE, 11)))
    post(harness, step("resolved", at=local(DUE, 12)))
    records.hold_for_complaint("dealer-a", VIN, "CP-1", open_=True)  # as the race would leave it
    records.hold_for_complaint("dealer-a", VIN, "CP-unknown", open_=True)
    at(harness, local(day(1), 9))
    assert len(overdue_texts()) == 1
    at(harness, local(day(30)))
    (task,) = kinds(harness, "collections")
    assert task["hold"] is None


def test_another_dealer_s_red_complaint_about_the_vin_holds_nothing(harness: Harness) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    pin_both(local(DUE, 12))
    post(harness, complaint(RED_TEXT, opened_at=local(DUE, 11)), sender="dealer-b")
    at(harness, local(day(1), 9))
    assert len(overdue_texts()) == 1
    at(harness, local(day(30)))
    (task,) = kinds(harness, "collections")
    assert task["hold"] is None


@pytest.mark.parametrize("paid_on_day", [None, 35])
def test_no_birthday_greeting_to_a_customer_30_days_past_due(
    harness: Harness, paid_on_day: int | None
) -> None:
    from chalicelib.store.models import ReminderItem

    birthday = day(40)  # 2027-01-09
    post(harness, delivery(phone=PHONE, birthday=f"1990-{birthday.month:02d}-{birthday.day:02d}"))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(day(30)))
    if paid_on_day is not None:
        pin_both(local(day(paid_on_day), 12))
        pay_by_wechat(harness, "4200001004", "L-1P01")
    at(harness, local(birthday, 10))
    greetings = [t for _, t in sms_sent() if "生日快乐" in t]
    (greeting,) = [r for r in ReminderItem.scan() if r.kind == "birthday" and r.status != "scheduled"]
    if paid_on_day is None:
        assert greetings == [] and (greeting.status, greeting.reason) == ("suppressed", "loan_past_due")
    else:
        assert len(greetings) == 1 and greeting.status == "sent"


def test_a_second_finance_partner_can_neither_settle_nor_pay_nor_see_another_s_loan(harness: Harness) -> None:
    from chalicelib.inbound import partners

    harness.creds["finance-b"] = partners.add("finance-b", "finance", "finance-b")
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    settled = copy.deepcopy(example("loan.settled"))
    settled["data"].update(loan_id="L-1", at=local(DUE, 9).isoformat())
    pin_both(local(DUE, 10))
    post(harness, settled, sender="finance-b")  # its own loan L-1, never booked: kept with its id
    hostile = booked()
    hostile["data"]["schedule"][0]["amount_minor"] = 1  # the same order number, a cheaper installment
    post(harness, hostile, sender="finance-b")
    at(harness, local(day(1), 9))
    found = {i["finance_id"]: i for i in loans(harness)["items"]}
    assert (found["finance-demo"]["status"], found["finance-demo"]["days_past_due"]) == ("overdue", 1)
    assert found["finance-b"]["status"] == "settled"
    assert len(overdue_texts()) == 1  # finance-demo's installment; finance-b's loan is settled
    assert harness.get("/dealers/dealer-a/loans", "finance-b").status_code in (403, 404)


def test_an_installment_paid_between_day_1_and_08_00_gets_no_overdue_sms(harness: Harness) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(day(1)))  # fired at 00:00: the SMS waits for 08:00
    pin_both(local(day(1), 7))
    pay_by_wechat(harness, "4200001003", "L-1P01")
    at(harness, local(day(1), 8))
    assert overdue_texts() == []


def test_clm_sweep_prints_its_report_alone_on_stdout_while_the_work_emits_metrics(
    harness: Harness, capsys: Any
) -> None:
    """The overdue stage emits a metric (EMF, printed by Powertools): on stderr, so the report parses."""
    import json

    from clm.cli import main

    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    pin_both(local(day(1), 10))
    capsys.readouterr()
    assert main(["sweep", "--at", local(day(1), 10).isoformat()]) == 0
    shown = capsys.readouterr()
    report = json.loads(shown.out)
    assert report["at"] == "2026-12-01T02:00:00.000Z" and len(overdue_texts()) == 1
    assert '"LoanBucketChanged"' in shown.err and '"LoanBucketChanged"' not in shown.out


# --- found by review ------------------------------------------------------------------------------


def test_a_rebooked_schedule_ends_the_work_of_installments_it_dropped_or_moved(harness: Harness) -> None:
    """A re-booking with fewer installments or a deferred due date: the old stages close
    (`rescheduled`), and one bad reminder never stops the sweep for other loans."""
    post(harness, delivery(phone=PHONE))
    pin_both(local(DUE, 9))
    post(harness, booked(installments=2), sender="finance-demo")
    moved = booked(installments=1)
    moved["data"]["schedule"][0]["due_date"] = day(20).isoformat()  # deferred 20 days, one installment
    post(harness, moved, sender="finance-demo")
    other = booked(loan_id="L-2")
    other["data"]["schedule"][0]["due_date"] = day(31).isoformat()
    post(harness, other, sender="finance-demo")
    report = at(harness, local(day(1), 9))
    assert overdue_texts() == [] and kinds(harness, "overdue_follow_up") == []
    assert report.reminders.get("failed", 0) == 0
    at(harness, local(day(21), 9))  # the moved due date is missed: now it is late
    assert [t["ref"] for t in kinds(harness, "overdue_follow_up")] == ["L-1"]
    at(harness, local(day(32), 9))  # the dropped installment 2 (due day 30) never is; L-2's is
    follow_ups = kinds(harness, "overdue_follow_up")
    assert sorted((t["ref"], t["details"]["seq"]) for t in follow_ups) == [("L-1", 1), ("L-2", 1)]


def test_a_payment_applied_while_the_day_1_stage_opens_its_task_still_closes_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.inbound.gateways import Payment
    from chalicelib.service import overdue, payments
    from chalicelib.store import loans as store_loans

    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(DUE, 23, 59))
    real_get, calls = store_loans.get, [0]

    def stale_get(*args: Any) -> Any:
        loan = real_get(*args)
        calls[0] += 1
        if calls[0] == 1:  # the notification lands right after the stage read the loan
            payments.receive(Payment("wechatpay", "T-RACE", "L-1P01", AMOUNT, local(day(1)), True, False))
        return loan

    monkeypatch.setattr(overdue.loans, "get", stale_get)
    at(harness, local(day(1)))
    monkeypatch.undo()
    assert loans(harness)["items"][0]["status"] == "settled"
    (task,) = kinds(harness, "overdue_follow_up")
    assert task["status"] == "done"


def test_a_paused_sms_says_so_once_however_long_it_waits(harness: Harness) -> None:
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    at(harness, local(day(1)))
    pin_both(local(day(1), 3))
    post(harness, complaint(RED_TEXT, opened_at=local(day(1), 2)))
    for hour in range(8, 14):
        at(harness, local(day(1), hour))
    timeline = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["timeline"]
    assert len([e for e in timeline if e["type"] == "reminder.paused"]) == 1


def test_two_finance_partners_loans_of_one_id_each_keep_their_bucket_entries(harness: Harness) -> None:
    from chalicelib.inbound import partners

    harness.creds["finance-b"] = partners.add("finance-b", "finance", "finance-b")
    post(harness, delivery(phone=PHONE))
    post(harness, booked(), sender="finance-demo")
    other = booked()
    other["data"]["schedule"][0]["payment_ref"] = "FINBP01"
    post(harness, other, sender="finance-b")
    at(harness, local(day(1), 9))
    timeline = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))["timeline"]
    found = [e["data"]["finance_id"] for e in timeline if e["type"] == "loan.dpd_bucket_changed"]
    assert sorted(found) == ["finance-b", "finance-demo"]
