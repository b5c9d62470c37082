"""(e) Sweeps whose cost follows what is due, not the fleet; and the SMS send rate.

`sweep_items_ratio`: the same 100 vehicles due for their first-service reminder, among 1,000 and
among 20,000 vehicles (each with its own reminder scheduled far ahead); DynamoDB items read by
one sweep at 20,000 ÷ at 1,000, counted at botocore (target 1.0). `sweep_scans`: Scan calls made
by those sweeps (target 0). The sweeps' times are printed for information (moto's index queries
walk the whole table, which DynamoDB's do not).

`sms_rate_error`: the sweep's sender sends N queued SMS on a fake clock; |time taken − N/R| ÷ N/R,
where a send takes its slot of 1/R (target ≤ 0.01).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import DELIVERED, fake_aws_env, reset, signed
from bench.ingest import quiet

DUE = 100
SIZES = (1_000, 20_000)
SMS_N = 200


def _counter(calls: list[str], items: list[int]) -> Any:
    def counted(model: Any, parsed: dict[str, Any], **_: Any) -> None:
        calls.append(model.name)
        if model.name in ("Query", "Scan"):
            items.append(int(parsed.get("Count", len(parsed.get("Items", [])))))
        elif model.name == "GetItem":
            items.append(1 if parsed.get("Item") else 0)
        elif model.name == "BatchGetItem":
            items.append(sum(len(v) for v in (parsed.get("Responses") or {}).values()))

    return counted


def _fill(dealer_id: str, first: int, last: int, now: datetime) -> None:
    """Vehicles not due for years: their vehicle, customer and a reminder in the due index."""
    from chalicelib.store import records, reminders, write_all
    from chalicelib.store.models import CustomerItem, Person, VehicleItem

    far = datetime(2099, 1, 1, tzinfo=UTC)
    batch: list[Any] = []
    for n in range(first, last):
        vin = f"LFILL0000{n:08d}"
        customer = f"FILL-{n}"
        batch += [
            VehicleItem(
                records.vehicle_pk(dealer_id, vin),
                "VEHICLE",
                vin=vin,
                dealer_id=dealer_id,
                model="S7",
                powertrain="ev",
                delivered_at=now,
                customer_id=customer,
                sales_advisor=Person(id="S-01"),
                service_specialist=Person(id="A-07"),
                plan={},
            ),
            CustomerItem(
                records.customer_pk(dealer_id, customer),
                "CUSTOMER",
                customer_id=customer,
                dealer_id=dealer_id,
                phone="+8613800138000",
                updated_at=now,
            ),
            reminders.new_item(
                records.vehicle_pk(dealer_id, vin),
                f"first_service-fill{n}",
                "first_service",
                dealer_id=dealer_id,
                customer_id=customer,
                vin=vin,
                delivered_at=now,
                trigger_at=far,
                details={},
                now=now,
            ),
        ]
        if len(batch) >= 300:
            write_all(batch)
            batch = []
    write_all(batch)


def _one_size(fleet: int) -> tuple[int, int, float]:
    """(items read, Scan calls, seconds) of one sweep with DUE vehicles due among `fleet`."""
    from moto import mock_aws

    with mock_aws():
        reset()
        from chalicelib import aws, clock
        from chalicelib.inbound import partners
        from chalicelib.service.ingest import ingest
        from chalicelib.service.process import process
        from chalicelib.service.sweep import SCHEDULES, sweep
        from chalicelib.store.inbox import InboxRef
        from clm.local.provision import provision

        provision("bench")
        creds = partners.add("dealer-demo", "dealer")
        now = datetime.now(UTC)
        delivered = (now - timedelta(days=30)).replace(hour=2, minute=0, second=0, microsecond=0)
        example = json.loads(DELIVERED.read_text())
        for n in range(DUE):
            event = json.loads(json.dumps(example))
            event["data"]["vin"] = f"LDUE00000{n:08d}"
            event["data"]["delivered_at"] = delivered.isoformat()
            event["data"]["customer"]["id"] = f"DUE-{n}"
            event["data"]["customer"].pop("birthday", None)
            body = json.dumps(event, ensure_ascii=False).encode()
            webhook_id = f"due-{n}"
            ingest(
                "dealer-demo",
                signed(creds.webhook_secret, body, webhook_id, int(clock.now().timestamp())),
                body,
            )
            assert process(InboxRef("dealer-demo", webhook_id)) == "applied"
        _fill("dealer-demo", 0, fleet - DUE, delivered)
        calls: list[str] = []
        items: list[int] = []
        aws.client("dynamodb").meta.events.register("after-call.dynamodb", _counter(calls, items))
        from chalicelib.domain.reminders import add_months

        at = add_months(delivered, 3) - timedelta(days=7) + timedelta(hours=1)
        started = time.perf_counter()
        report = sweep(at, jobs=SCHEDULES["reminders"])  # the hourly schedule
        elapsed = time.perf_counter() - started
        # Every SMS sent in this run: one left for the next would make the runs' reads unequal.
        assert report.reminders.get("sent") == DUE and report.sms_sent == DUE, report
        reset()
    return sum(items), calls.count("Scan"), elapsed


def sms_rate() -> tuple[float, str]:
    """N queued SMS sent by the sweep's sender at the configured rate, on a fake clock."""
    from moto import mock_aws

    with mock_aws():
        reset()
        from chalicelib import aws, clock
        from chalicelib.service.sweep import SweepReport, send_sms
        from chalicelib.settings import get_settings
        from chalicelib.store import outbox
        from chalicelib.store.outbox import Message
        from clm.local.provision import provision

        provision("bench")
        start = datetime.now(UTC)
        for n in range(SMS_N):
            outbox.put(Message(f"sms#bench-{n}", "sms", "+8613800138000", "test", send_after=start), start)
        fake = [0.0]

        def sleep(seconds: float) -> None:
            fake[0] += seconds
            clock.pin_system(start + timedelta(seconds=fake[0]))  # the shared rate's seconds follow

        sent_at: list[float] = []
        aws.client("sns").meta.events.register("before-call.sns.Publish", lambda **_: sent_at.append(fake[0]))
        clock.pin_system(start)
        report = SweepReport(at=clock.iso(start))
        send_sms(start, report, monotonic=lambda: fake[0], sleep=sleep)
        clock.pin_system(None)
        rate = get_settings().sms_rate
        reset()
    assert report.sms_sent == SMS_N and len(sent_at) == SMS_N, report
    took = sent_at[-1] - sent_at[0] + 1 / rate  # the last send holds its slot too
    expected = SMS_N / rate
    return abs(took - expected) / expected, f"{SMS_N} SMS at {rate}/s took {took:.2f} s on the fake clock"


def run() -> tuple[dict[str, float], str]:
    fake_aws_env()
    with quiet():
        results = {size: _one_size(size) for size in SIZES}
        error, sms_note = sms_rate()
    (small_items, small_scans, small_s), (large_items, large_scans, large_s) = (results[s] for s in SIZES)
    return (
        {
            "sweep_items_ratio": large_items / small_items,
            "sweep_scans": float(small_scans + large_scans),
            "sms_rate_error": error,
        },
        f"{DUE} due among {SIZES[0]:,}: {small_items} items read in {small_s:.1f} s; among {SIZES[1]:,}: "
        f"{large_items} items read in {large_s:.1f} s (including sending {DUE} SMS at the rate); {sms_note}",
    )
