"""Loans from the finance arm: kept under the loan's dealer, listed with where each stands today,
settled by loan id in either order, and nobody else's (DESIGN.md §4, §8)."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from typing import Any

from tests.conftest import Harness, example
from tests.functional.test_lifecycle import body_of
from tests.functional.test_reminders import NOW, VIN, delivery, post

TODAY = date(2026, 11, 20)  # NOW in Shanghai


def loan(
    loan_id: str = "L-1", dealer_id: str = "dealer-a", first_due: date = TODAY - timedelta(days=1)
) -> dict[str, Any]:
    payload = copy.deepcopy(example("loan.booked"))
    payload["data"].update(loan_id=loan_id, dealer_id=dealer_id, vin=VIN)
    payload["data"]["schedule"] = [
        {
            "seq": n + 1,
            "due_date": (first_due + timedelta(days=30 * n)).isoformat(),
            "amount_minor": 350000,
            "payment_ref": f"{loan_id}P{n + 1:02d}",
        }
        for n in range(3)
    ]
    return payload


def settled(loan_id: str = "L-1") -> dict[str, Any]:
    payload = copy.deepcopy(example("loan.settled"))
    payload["data"].update(loan_id=loan_id, at=(NOW - timedelta(minutes=1)).isoformat())
    return payload


def pay_by_wechat(harness: Harness, transaction_id: str, payment_ref: str, amount: int = 350000) -> None:
    """WeChat Pay (configured now) notifies a payment of `payment_ref` now, as it signs and encrypts it."""
    from chalicelib import clock
    from chalicelib.inbound import gateway_keys
    from tests.unit import test_gateways as gw

    gateway_keys.configure_wechatpay("1900000109", gw.APIV3_KEY.decode(), "SERIAL-A", gw.PLATFORM_PEM)
    headers, body = gw.wechat_notification(
        at=clock.now(),
        transaction_id=transaction_id,
        out_trade_no=payment_ref,
        amount={"total": amount, "currency": "CNY"},
    )
    assert (
        harness.client.http.post("/webhooks/payments/wechatpay", headers=headers, body=body).status_code
        == 204
    )


def loans(harness: Harness, query: str = "", dealer: str = "dealer-a") -> Any:
    return body_of(harness.get(f"/dealers/{dealer}/loans{query}", dealer))


def test_a_booked_loan_is_listed_with_where_it_stands_today(harness: Harness) -> None:
    post(harness, delivery())
    post(harness, loan(), sender="finance-demo")
    (item,) = loans(harness)["items"]
    assert item["loan_id"] == "L-1" and item["vin"] == VIN and item["finance_id"] == "finance-demo"
    assert item["next_due_date"] == (TODAY - timedelta(days=1)).isoformat()
    assert (item["days_past_due"], item["dpd_bucket"], item["status"]) == (1, "1-30", "overdue")
    assert item["outstanding_minor"] == 3 * 350000
    customer = example("vehicle.delivered")["data"]["customer"]
    assert item["customer"]["name"] != customer["name"] and item["customer"]["name"].startswith(
        customer["name"][0]
    )
    assert customer["phone"] not in str(item) and item["customer"]["phone"].endswith(customer["phone"][-4:])
    assert [i["loan_id"] for i in loans(harness, "?status=overdue")["items"]] == ["L-1"]
    assert loans(harness, "?status=current")["items"] == []
    assert harness.get("/dealers/dealer-a/loans?status=late").status_code == 400
    view = body_of(harness.get(f"/dealers/dealer-a/vehicles/{VIN}"))
    assert [(x["loan_id"], x["status"]) for x in view["loans"]] == [("L-1", "overdue")]
    assert "loan.booked" in [e["type"] for e in view["timeline"]]


def test_a_loan_not_yet_due_is_current(harness: Harness) -> None:
    post(harness, loan(first_due=TODAY), sender="finance-demo")  # due today: not late until tomorrow
    (item,) = loans(harness)["items"]
    assert (item["status"], item["days_past_due"], item["dpd_bucket"]) == ("current", 0, None)


def test_a_settlement_applies_before_or_after_the_booking(harness: Harness) -> None:
    post(harness, loan("L-after"), sender="finance-demo")
    post(harness, settled("L-after"), sender="finance-demo")
    post(harness, settled("L-before"), sender="finance-demo")
    post(harness, loan("L-before"), sender="finance-demo")
    found = {i["loan_id"]: i for i in loans(harness)["items"]}
    for loan_id in ("L-after", "L-before"):
        assert (found[loan_id]["status"], found[loan_id]["outstanding_minor"]) == ("settled", 0)
        assert found[loan_id]["next_due_date"] is None and found[loan_id]["settled_at"] is not None


def test_each_installment_is_indexed_by_its_payment_reference(harness: Harness) -> None:
    from chalicelib.store.models import PaymentRefItem

    post(harness, loan(), sender="finance-demo")
    found = PaymentRefItem.get("PAYREF#L-1P02", "PAYREF")
    assert (found.loan_id, found.seq, found.amount_minor, found.dealer_id) == ("L-1", 2, 350000, "dealer-a")


def test_loans_are_the_finance_arm_s_and_the_named_dealer_s_only(harness: Harness) -> None:
    assert harness.post("dealer-b", loan(dealer_id="dealer-b")).status_code == 403  # a dealer may not book
    assert harness.post("dealer-b", settled()).status_code == 403
    post(harness, delivery())
    post(harness, loan(), sender="finance-demo")
    assert harness.get("/dealers/dealer-a/loans", "dealer-b").status_code == 404
    assert loans(harness, dealer="dealer-b")["items"] == []
    assert body_of(harness.get("/dealers/dealer-a/loans", "hq"))["items"][0]["loan_id"] == "L-1"


def test_a_repayment_sms_goes_out_3_days_before_each_due_date_once_and_not_once_paid(
    harness: Harness,
) -> None:
    from datetime import datetime

    from tests.functional.test_reminders import PHONE, sms_sent, sweep

    post(harness, delivery(phone=PHONE))
    first_due = TODAY + timedelta(days=10)  # 2026-11-30; the second 30 days later
    post(harness, loan(first_due=first_due), sender="finance-demo")
    trigger = datetime.fromisoformat(f"{(first_due - timedelta(days=3)).isoformat()}T00:00:00+08:00")
    sweep(harness, trigger - timedelta(minutes=1))
    assert sms_sent() == []
    sweep(harness, trigger)  # 00:00 local: fired, its SMS waits for 08:00
    assert sms_sent() == []
    sweep(harness, trigger + timedelta(hours=8))
    sweep(harness, trigger + timedelta(hours=9))  # once
    ((number, text),) = sms_sent()
    assert number == PHONE and text.startswith("【") and "第1期" in text and "3500.00" in text
    assert first_due.isoformat() in text

    # The second installment is paid before its reminder is due: no SMS for it.
    pay_by_wechat(harness, "4200000777", "L-1P02")
    second = trigger + timedelta(days=30)
    sweep(harness, second + timedelta(hours=8))
    assert not any("第2期" in text for _, text in sms_sent())  # (the first's overdue SMS went out)
    assert loans(harness)["items"][0]["installments_paid"] == 1


def test_an_installment_paid_after_its_reminder_fired_but_before_08_00_gets_no_sms(harness: Harness) -> None:
    from datetime import datetime

    from tests.functional.test_reminders import PHONE, sms_sent, sweep

    post(harness, delivery(phone=PHONE))
    first_due = TODAY + timedelta(days=10)
    post(harness, loan(first_due=first_due), sender="finance-demo")
    trigger = datetime.fromisoformat(f"{(first_due - timedelta(days=3)).isoformat()}T00:00:00+08:00")
    sweep(harness, trigger)  # fired: its SMS waits for 08:00
    pay_by_wechat(harness, "4200000888", "L-1P01")
    sweep(harness, trigger + timedelta(hours=8))
    assert sms_sent() == []


def test_a_loan_reusing_another_s_order_numbers_keeps_them_with_the_first_and_tells_ops(
    harness: Harness,
) -> None:
    from chalicelib.store.models import PaymentRefItem
    from tests.functional.test_lifecycle import subscribe

    ops = subscribe("ops")
    post(harness, loan("L-1"), sender="finance-demo")
    clash = loan("L-2")
    clash["data"]["schedule"][0]["payment_ref"] = "L-1P01"
    post(harness, clash, sender="finance-demo")
    post(harness, loan("L-1"), sender="finance-demo", msg_id="L-1-resent")  # its own: no conflict
    assert PaymentRefItem.get("PAYREF#L-1P01", "PAYREF").loan_id == "L-1"
    conflicts = [m["body"] for m in ops() if m["body"]["event"] == "loan.payment_ref_conflict"]
    assert [(c["loan_id"], c["payment_refs"]) for c in conflicts] == [("L-2", ["L-1P01"])]


def test_a_rebooked_due_date_reminds_of_the_new_date_only(harness: Harness) -> None:
    from datetime import datetime

    from tests.functional.test_reminders import PHONE, sms_sent, sweep

    post(harness, delivery(phone=PHONE))
    first_due = TODAY + timedelta(days=10)
    post(harness, loan(first_due=first_due), sender="finance-demo")
    moved = loan(first_due=first_due + timedelta(days=5))  # a deferment: every date 5 days later
    post(harness, moved, sender="finance-demo")
    old_trigger = datetime.fromisoformat(f"{(first_due - timedelta(days=3)).isoformat()}T09:00:00+08:00")
    sweep(harness, old_trigger)
    assert sms_sent() == []
    sweep(harness, old_trigger + timedelta(days=5))
    ((_, text),) = sms_sent()
    assert (first_due + timedelta(days=5)).isoformat() in text
