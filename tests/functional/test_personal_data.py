"""Personal data at rest (PIPL): names, phone numbers, free text and raw payloads are sealed in the
table under a KMS data key, readable only through CLM; the webhook path makes no KMS call per
event; a full run logs none of it; raw payloads expire."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Harness
from tests.functional.test_reminders import (
    DELIVERED_AT,
    NOW,
    PHONE,
    VIN,
    delivery,
    event,
    post,
    sms_sent,
    sweep,
)
from tests.support import strings_in

CUSTOMER_NAME = "张伟"
ADVISOR = ("李娜", "+8613900139001")
SPECIALIST = ("王强", "+8613700137007")
TEXT_PHONE = "+8613612345678"  # a number a customer said in a complaint


def _raw_items() -> list[dict[str, Any]]:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    ddb, items, start = aws.client("dynamodb"), [], None
    while True:
        page = ddb.scan(
            TableName=get_settings().table_name, **({"ExclusiveStartKey": start} if start else {})
        )
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _full_run(harness: Harness) -> None:
    """A customer's life: delivery, complaint naming a phone, feedback, a loan, reminders by SMS."""
    post(harness, delivery())
    text = f"客户{CUSTOMER_NAME}反映刹车失灵,请回电 {TEXT_PHONE}"
    post(harness, event("complaint.opened", text=text, opened_at=(NOW - timedelta(hours=1)).isoformat()))
    post(harness, event("dealer.feedback_opened"))
    post(harness, event("handover.submitted"))
    due = DELIVERED_AT.replace(month=2, year=2027)
    sweep(harness, due - timedelta(days=7))
    harness.drain()


def _personal_values() -> list[str]:
    national = PHONE.removeprefix("+86")
    return [PHONE, national, CUSTOMER_NAME, *ADVISOR, *SPECIALIST, TEXT_PHONE, TEXT_PHONE.removeprefix("+86")]


def test_no_name_or_phone_rests_in_the_table_in_plaintext(harness: Harness) -> None:
    _full_run(harness)
    assert sms_sent() and sms_sent()[0][0] == PHONE  # the SMS still reaches the customer's number
    items = _raw_items()
    kinds = {item["et"]["S"] for item in items if "et" in item}
    assert {"customer", "vehicle", "inbox", "outbox", "complaint"} <= kinds
    dump = "\n".join(strings_in(items))
    for value in _personal_values():
        assert value not in dump, f"{value!r} rests in the table in plaintext"
    customer = next(i for i in items if i.get("et", {}).get("S") == "customer")
    assert customer["phone"]["S"].startswith("pii1.") and customer["name"]["S"].startswith("pii1.")
    inbox = [i for i in items if i.get("et", {}).get("S") == "inbox"]
    assert inbox and all(i["body"]["S"].startswith("pii1.") for i in inbox)


def test_reads_show_the_data_masked_and_clm_reads_it_back(harness: Harness) -> None:
    from chalicelib.store.models import CustomerItem, VehicleItem

    _full_run(harness)
    customer = CustomerItem.get("CUST#dealer-a#C-1001", "CUSTOMER")
    assert (customer.name, customer.phone) == (CUSTOMER_NAME, PHONE)
    vehicle = VehicleItem.get(f"VEH#dealer-a#{VIN}", "VEHICLE")
    assert (vehicle.sales_advisor.name, vehicle.sales_advisor.phone) == ADVISOR
    answer = harness.get("/dealers/dealer-a/customers/C-1001")
    assert answer.status_code == 200
    shown = json.loads(answer.body)
    assert shown["phone"] != PHONE and shown["phone"].endswith(PHONE[-4:]) and "*" in shown["phone"]
    assert shown["name"] != CUSTOMER_NAME and "*" in shown["name"]


def test_the_webhook_path_makes_no_kms_call_per_event(harness: Harness) -> None:
    from chalicelib import aws

    post(harness, delivery())  # warm: the partner's secret and the data key are in hand
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    aws.session().register("before-call.kms", count)
    try:
        for n in range(20):
            payload = event(
                "odometer.reported",
                odometer_km=100 + n,
                read_at=(NOW - timedelta(minutes=50 - n)).isoformat(),
            )
            assert harness.post("dealer-a", payload, msg_id=f"km-{n}").status_code == 202
        harness.drain()
    finally:
        aws.session().unregister("before-call.kms", count)
    assert calls == [], calls


def test_a_full_run_logs_no_personal_data(harness: Harness, capsys: Any) -> None:
    import logging

    from chalicelib.observability import logger

    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    root = logging.StreamHandler(stream)
    logging.getLogger().addHandler(root)
    try:
        _full_run(harness)
        bad = {
            "type": "vehicle.delivered",
            "data": {"customer": {"name": CUSTOMER_NAME, "phone": PHONE[:-1]}},
        }
        answer = harness.post("dealer-a", bad)  # refused: its problem names fields, not their values
        assert answer.status_code == 422 and CUSTOMER_NAME not in answer.body.decode()
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
        logging.getLogger().removeHandler(root)
    text = stream.getvalue() + capsys.readouterr().out
    assert "event applied" in text and "red alert raised" in text  # the run was logged
    for value in _personal_values():
        assert value not in text, f"{value!r} in the logs"


def test_a_value_stored_before_sealing_reads_as_it_was(harness: Harness) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from chalicelib.store.models import CustomerItem

    post(harness, delivery())
    aws.client("dynamodb").update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": "CUST#dealer-a#C-1001"}, "sk": {"S": "CUSTOMER"}},
        UpdateExpression="SET phone = :p",
        ExpressionAttributeValues={":p": {"S": PHONE}},
    )
    assert CustomerItem.get("CUST#dealer-a#C-1001", "CUSTOMER").phone == PHONE


def test_a_damaged_or_foreign_sealed_value_is_refused(harness: Harness) -> None:
    from chalicelib import envelope

    sealed = envelope.seal("+8613800138000")
    assert envelope.open_sealed(sealed) == "+8613800138000" and sealed != envelope.seal("+8613800138000")
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed(flipped)
    with pytest.raises(envelope.EnvelopeError):
        envelope.open_sealed("pii1.!!")
    envelope.forget_keys()  # a fresh process opens it through KMS
    assert envelope.open_sealed(sealed) == "+8613800138000"


@pytest.mark.parametrize(("configured", "kept_days"), [(None, 30), ("3", 8), ("60", 60)])
def test_raw_payloads_expire_after_the_retention(
    harness: Harness, monkeypatch: Any, configured: str | None, kept_days: int
) -> None:
    from chalicelib import runtime
    from chalicelib.store.models import InboxItem

    if configured is not None:
        monkeypatch.setenv("CLM_PAYLOAD_RETENTION_DAYS", configured)
        runtime.reset()
    post(harness, delivery(), msg_id="kept")
    item = InboxItem.get("INBOX#dealer-a#kept", "INBOX")
    assert item.status == "applied" and item.processed_at is not None and item.expires_at is not None
    assert item.expires_at - item.processed_at == timedelta(days=kept_days)


def test_a_retention_that_is_not_a_number_is_a_clear_error(monkeypatch: Any) -> None:
    from chalicelib import runtime
    from chalicelib.settings import get_settings

    monkeypatch.setenv("CLM_PAYLOAD_RETENTION_DAYS", "thirty")
    runtime.reset()
    with pytest.raises(ValueError, match="CLM_PAYLOAD_RETENTION_DAYS must be a whole number"):
        get_settings()
    monkeypatch.delenv("CLM_PAYLOAD_RETENTION_DAYS")
    runtime.reset()
