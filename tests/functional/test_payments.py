"""Payments through both gateways' routes, as each gateway sends them, on a mocked account:
applied once per transaction however often notified, before or after the loan, suspicious ones
kept for ops, the last installment settling the loan (DESIGN.md §5)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Harness
from tests.functional.test_lifecycle import body_of, subscribe
from tests.functional.test_loans import TODAY, loan
from tests.functional.test_reminders import NOW, delivery, post
from tests.unit import test_gateways as gw


@pytest.fixture
def configured(harness: Harness) -> Harness:
    from chalicelib.inbound import gateway_keys

    gateway_keys.configure_wechatpay("1900000109", gw.APIV3_KEY.decode(), "SERIAL-A", gw.PLATFORM_PEM)
    gateway_keys.configure_alipay("2021000000000001", gw.ALIPAY_PEM)
    return harness


def wechat(harness: Harness, txid: str, ref: str, amount: int = 350000, **changes: Any) -> Any:
    headers, body = gw.wechat_notification(
        at=NOW, transaction_id=txid, out_trade_no=ref, amount={"total": amount, "currency": "CNY"}, **changes
    )
    return harness.client.http.post(
        "/webhooks/payments/wechatpay", headers={**headers, "Content-Type": "application/json"}, body=body
    )


def alipay(harness: Harness, txid: str, ref: str, amount: str = "3500.00", **changes: str) -> Any:
    _, body = gw.alipay_notification(trade_no=txid, out_trade_no=ref, total_amount=amount, **changes)
    return harness.client.http.post(
        "/webhooks/payments/alipay",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        body=body,
    )


def the_loan(harness: Harness, loan_id: str = "L-1") -> dict[str, Any]:
    found = {i["loan_id"]: i for i in body_of(harness.get("/dealers/dealer-a/loans"))["items"]}
    return found[loan_id]


def test_both_gateways_pay_once_however_often_they_notify(configured: Harness) -> None:
    harness = configured
    post(harness, delivery())
    post(harness, loan(), sender="finance-demo")
    for _ in range(3):  # WeChat re-signs every resend (new nonce, new signature)
        answer = wechat(harness, "4200000001", "L-1P01")
        assert answer.status_code == 204 and not answer.body
    for _ in range(2):
        answer = alipay(harness, "2026112022001", "L-1P02")
        assert (answer.status_code, answer.body) == (200, b"success")
    harness.drain()
    found = the_loan(harness)
    assert found["installments_paid"] == 2 and found["outstanding_minor"] == 350000
    assert found["next_due_date"] == (TODAY - timedelta(days=1) + timedelta(days=60)).isoformat()
    view = body_of(harness.get("/dealers/dealer-a/vehicles/LSVAU2180N2123456"))
    assert sorted(e["data"]["seq"] for e in view["timeline"] if e["type"] == "payment.received") == [1, 2]


def test_the_last_installment_settles_the_loan(configured: Harness) -> None:
    harness = configured
    post(harness, loan(), sender="finance-demo")
    for seq in (1, 2, 3):
        assert wechat(harness, f"42000000{seq}", f"L-1P0{seq}").status_code == 204
    found = the_loan(harness)
    assert (found["status"], found["outstanding_minor"], found["installments_paid"]) == ("settled", 0, 3)


def test_a_payment_before_its_loan_waits_and_is_applied_by_the_booking(configured: Harness) -> None:
    harness = configured
    assert alipay(harness, "2026112022009", "L-9P01").body == b"success"  # kept: Alipay stops sending
    post(harness, loan("L-9"), sender="finance-demo")
    assert the_loan(harness, "L-9")["installments_paid"] == 1


def test_a_wrong_amount_or_another_merchant_is_kept_for_ops_never_applied(configured: Harness) -> None:
    harness = configured
    ops = subscribe("ops")
    post(harness, loan(), sender="finance-demo")
    assert wechat(harness, "4200000100", "L-1P01", amount=1).status_code == 204
    assert wechat(harness, "4200000101", "L-1P02", mchid="1900000999").status_code == 204
    assert alipay(harness, "2026112022100", "L-1P03", app_id="2021000000009999").body == b"success"
    harness.drain()
    assert the_loan(harness)["installments_paid"] == 0
    suspects = sorted(
        (m["body"]["transaction_id"], m["body"]["reason"])
        for m in ops()
        if m["body"]["event"] == "payment.suspect"
    )
    assert suspects == [
        ("2026112022100", "foreign_merchant"),
        ("4200000100", "amount_mismatch"),
        ("4200000101", "foreign_merchant"),
    ]


def test_what_the_gateway_did_not_sign_is_refused_in_its_own_format(configured: Harness) -> None:
    harness = configured
    post(harness, loan(), sender="finance-demo")
    headers, body = gw.wechat_notification(at=NOW)
    probe = {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}
    for sent, raw in ((probe, body), (headers, body.replace(b"SUCCESS", b"SUCCES5"))):
        answer = harness.client.http.post("/webhooks/payments/wechatpay", headers=sent, body=raw)
        assert answer.status_code == 401
        assert json.loads(answer.body) == {"code": "FAIL", "message": "verification failed"}
    stale = gw.wechat_notification(at=NOW - timedelta(minutes=6))
    assert (
        harness.client.http.post("/webhooks/payments/wechatpay", headers=stale[0], body=stale[1]).status_code
        == 401
    )
    params, _ = gw.alipay_notification()
    forged = urlencode({**params, "total_amount": "1.00"}).encode()
    answer = harness.client.http.post(
        "/webhooks/payments/alipay",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=forged,
    )
    assert (answer.status_code, answer.body) == (400, b"fail")
    assert the_loan(harness)["installments_paid"] == 0


def test_a_trade_that_is_not_a_success_is_acknowledged_and_not_applied(configured: Harness) -> None:
    harness = configured
    post(harness, loan(), sender="finance-demo")
    assert alipay(harness, "2026112022200", "L-1P01", trade_status="WAIT_BUYER_PAY").body == b"success"
    assert wechat(harness, "4200000200", "L-1P02", trade_state="NOTPAY").status_code == 204
    assert the_loan(harness)["installments_paid"] == 0


def test_an_unconfigured_gateway_asks_to_be_sent_again(harness: Harness) -> None:
    headers, body = gw.wechat_notification(at=NOW)
    answer = harness.client.http.post("/webhooks/payments/wechatpay", headers=headers, body=body)
    assert answer.status_code == 500 and json.loads(answer.body)["code"] == "FAIL"
    _, form = gw.alipay_notification()
    answer = harness.client.http.post(
        "/webhooks/payments/alipay", headers={"Content-Type": "application/x-www-form-urlencoded"}, body=form
    )
    assert (answer.status_code, answer.body) == (500, b"fail")


def test_gateway_keys_are_stored_sealed(configured: Harness) -> None:
    from chalicelib.store.models import GatewayItem

    stored = GatewayItem.get("GATEWAY#wechatpay", "CONFIG")
    assert stored.sealed_key and gw.APIV3_KEY.decode() not in json.dumps(stored.attribute_values, default=str)
    assert [k.serial for k in stored.platform_keys] == ["SERIAL-A"]


def failing_loans(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Applying a payment to its loan fails `times` times (DynamoDB throttled, a Lambda killed)."""
    from chalicelib.store import loans

    real, failures = loans.pay, [0]

    def pay(*args: Any, **kwargs: Any) -> Any:
        if failures[0] < times:
            failures[0] += 1
            raise RuntimeError("throttled")
        return real(*args, **kwargs)

    monkeypatch.setattr(loans, "pay", pay)
    return failures


def test_a_payment_that_failed_to_apply_is_applied_by_the_sweep_once(
    configured: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service.sweep import sweep

    harness = configured
    post(harness, delivery())
    post(harness, loan(), sender="finance-demo")
    failing_loans(monkeypatch, 1)
    answer = wechat(harness, "4200000500", "L-1P01")
    assert answer.status_code >= 500 and json.loads(answer.body)["code"] == "FAIL"
    assert the_loan(harness)["installments_paid"] == 0
    # The gateway never sends it again. A notification's request may still be running: left alone.
    assert sweep(NOW, real_now=NOW + timedelta(minutes=5)).payments_redriven == 0
    report = sweep(NOW, real_now=NOW + timedelta(minutes=11))
    assert (report.payments_redriven, report.payments_stuck) == (1, 0)
    assert sweep(NOW, real_now=NOW + timedelta(hours=1)).payments_redriven == 0  # applied: done
    assert the_loan(harness)["installments_paid"] == 1
    assert wechat(harness, "4200000500", "L-1P01").status_code == 204  # a late resend changes nothing
    view = body_of(harness.get("/dealers/dealer-a/vehicles/LSVAU2180N2123456"))
    assert [e["data"]["seq"] for e in view["timeline"] if e["type"] == "payment.received"] == [1]


def test_a_payment_waiting_for_its_loan_or_already_settled_is_never_redriven(configured: Harness) -> None:
    from chalicelib.service.sweep import sweep

    harness = configured
    post(harness, loan(), sender="finance-demo")
    assert alipay(harness, "2026112022500", "L-7P01").body == b"success"  # no loan has it yet
    assert wechat(harness, "4200000501", "L-1P01").status_code == 204
    assert wechat(harness, "4200000502", "L-1P02", amount=1).status_code == 204  # suspect: final
    assert sweep(NOW, real_now=NOW + timedelta(hours=2)).payments_redriven == 0
    post(harness, loan("L-7"), sender="finance-demo")
    assert the_loan(harness, "L-7")["installments_paid"] == 1


def test_a_payment_that_never_applies_is_given_to_ops_as_stuck_once(
    configured: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service.sweep import sweep
    from chalicelib.store.payments import MAX_REDRIVES

    harness = configured
    ops = subscribe("ops")
    post(harness, loan(), sender="finance-demo")
    failures = failing_loans(monkeypatch, 100)
    assert wechat(harness, "4200000600", "L-1P01").status_code >= 500
    redriven = stuck = 0
    for n in range(1, MAX_REDRIVES + 4):
        report = sweep(NOW, real_now=NOW + n * timedelta(minutes=11))
        redriven, stuck = redriven + report.payments_redriven, stuck + report.payments_stuck
    assert (redriven, stuck, failures[0]) == (MAX_REDRIVES, 1, 1 + MAX_REDRIVES)
    harness.drain()
    (message,) = [m["body"] for m in ops() if m["body"]["event"] == "payment.stuck"]
    assert (message["transaction_id"], message["payment_ref"]) == ("4200000600", "L-1P01")
    monkeypatch.undo()  # the fault is mended: the gateway's resend still applies it
    assert wechat(harness, "4200000600", "L-1P01").status_code == 204
    assert the_loan(harness)["installments_paid"] == 1
