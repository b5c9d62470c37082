"""Under faults, nothing lost and nothing doubled (issue 13 item 5; DESIGN.md §7).

500 mixed events (`CLM_FAULT_EVENTS`) are driven through the app with DynamoDB throttling (20 %
of calls) and SNS publish failures (30 %) injected at the botocore level (`tests/faults.py`),
then the schedules' sweep runs, under the same faults. Senders resend a 5xx with the same
webhook-id, as partners do; the workers run as Lambda runs them (the table stream, the work
queue with its redrive policy to the DLQ). While the faults last, every notification recorded
in the outbox went out once, or is still being retried, or sits in the DLQ; none went out twice
and nothing went out that the outbox does not hold. Then the faults stop, ops replays the DLQ,
the sweep re-drives what was lost: every accepted event is applied (or ignored) and every
message went out exactly once.

Other tests here kill the Lambda between the state write and the send, and pin down each bug the
run found. `CLM_FAULT_EVENTS=5000 CLM_FAULT_SEED=7 pytest -s tests/functional/test_faults.py` runs
a longer or another run (the counts print with `-s`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import NOW, Harness, example, pin_both, reset_process_state, show_figures
from tests.faults import Injector, Killed, Rule, install

EVENTS = int(os.environ.get("CLM_FAULT_EVENTS", "500"))
SEED = int(os.environ.get("CLM_FAULT_SEED", "20261120"))
RULES = (
    Rule(  # 20 % of DynamoDB calls throttled: half recover at the 2nd attempt, 3 in 10 at the 3rd
        "dynamodb",
        0.20,
        attempts=(0.5, 0.3, 0.2),  # the last: every attempt fails, the app sees it
        errors=((400, "ProvisionedThroughputExceededException"), (400, "ThrottlingException")),
    ),
    Rule(
        "sns",
        0.30,
        attempts=(0.4, 0.3, 0.3),
        errors=((500, "InternalError"), (400, "Throttling")),
        operations=frozenset({"Publish"}),
    ),
)
LAMBDA_TIMEOUT = timedelta(seconds=2)  # the workers' timeout (real time): an in-progress send expires then
VISIBILITY = timedelta(seconds=360 + 60)  # the work queue's visibility timeout + a consumer's run
DRAIN_EVERY = 10  # events posted between two runs of the workers: a stream batch holds several
SWEEP_AT = NOW + timedelta(hours=1)  # overdue tasks and their breaches, the first loan reminders
DEALERS = ("dealer-a", "dealer-b")

Sent = tuple[str, str, dict[str, Any]]  # (partner, webhook id, payload)


# --- the event mix ----------------------------------------------------------------------------------


def vin_of(n: int) -> str:
    return f"LFAULT{n:011d}"


def _event(event_type: str, **data: Any) -> dict[str, Any]:
    payload = copy.deepcopy(example(event_type))
    payload["data"].update(data)
    return payload


def vehicle_events(n: int) -> list[Sent]:
    """One vehicle's life, in the order its dealer's systems would send it: delivery, handover,
    readings (one near the first-service threshold: an SMS and two tasks at once), the first
    service, a complaint (every third a red alert), a lead, sales behaviour, preferences; some
    vehicles also have a loan, a reading sent before the delivery, a resend, or a resale."""
    dealer = DEALERS[n % 4 == 3]
    vin = vin_of(n)
    customer = f"C-{n:05d}"
    delivered = NOW - timedelta(days=40) + timedelta(minutes=n)
    out: list[Sent] = []

    def add(event_type: str, sender: str = dealer, webhook_id: str | None = None, **data: Any) -> None:
        out.append((sender, webhook_id or f"{vin}-{len(out)}", _event(event_type, **data)))

    if n % 10 == 2:  # before its delivery: waits for it, then applies
        add(
            "odometer.reported", vin=vin, odometer_km=50, read_at=(delivered + timedelta(hours=2)).isoformat()
        )
    delivery = _event("vehicle.delivered", vin=vin, delivered_at=delivered.isoformat())
    delivery["data"]["customer"].update(
        id=customer, phone=f"+86138{n:08d}", locale="en" if n % 5 == 0 else "zh-CN"
    )
    out.append((dealer, f"{vin}-delivery", delivery))
    if n % 7 == 0:
        out.append((dealer, f"{vin}-delivery", copy.deepcopy(delivery)))  # the sender's own resend
    add("handover.submitted", vin=vin)
    add("odometer.reported", vin=vin, odometer_km=1500, read_at=(delivered + timedelta(days=10)).isoformat())
    add("handover.confirmed", vin=vin, corrections=["basic.model"] if n % 6 == 1 else [])
    add("delivery.feedback_submitted", vin=vin)
    add("odometer.reported", vin=vin, odometer_km=4600, read_at=(delivered + timedelta(days=20)).isoformat())
    add(
        "service.completed",
        vin=vin,
        repair_order_id=f"RO-{n:06d}",
        kind="first_service",
        odometer_km=4900,
        completed_at=(delivered + timedelta(days=25)).isoformat(),
    )
    text = "高速上刹车失灵，非常危险" if n % 3 == 0 else "等待时间太长"
    opened = NOW - timedelta(hours=2)
    add(
        "complaint.opened",
        complaint_id=f"CP-{n:05d}",
        vin=vin,
        customer_id=customer,
        text=text,
        opened_at=opened.isoformat(),
    )
    if n % 2 == 0:
        add(
            "lead.captured",
            lead_id=f"LD-{n:05d}",
            vin=vin,
            customer_id=customer,
            grade="AB"[n % 4 == 0],
            captured_at=(NOW - timedelta(hours=3)).isoformat(),
        )
    add(
        "sales.test_drive_completed", customer_id=customer, duration_min=30 + n % 30, at=delivered.isoformat()
    )
    add(
        "complaint.acknowledged",
        complaint_id=f"CP-{n:05d}",
        at=(opened + timedelta(minutes=20)).isoformat(),
    )
    add("customer.preferences_updated", customer_id=customer, sms_opt_out=n % 9 == 4, preferred_channel="sms")
    if n % 6 == 0 and dealer == "dealer-a":
        today = date(2026, 11, 20)
        loan = _event("loan.booked", loan_id=f"L-{n:05d}", dealer_id=dealer, vin=vin, customer_id=customer)
        loan["data"]["schedule"] = [
            {
                "seq": k + 1,
                "due_date": (today + timedelta(days=2 + 30 * k)).isoformat(),
                "amount_minor": 350000,
                "payment_ref": f"L{n:05d}P{k + 1:02d}",
            }
            for k in range(3)
        ]
        out.append(("finance-demo", f"{vin}-loan", loan))
    if n % 8 == 1:  # resold to the other dealer: a transfer, told to ops; the old tasks are cancelled
        resale = _event("vehicle.delivered", vin=vin, delivered_at=(NOW - timedelta(days=1)).isoformat())
        resale["data"]["customer"].update(id=f"C-B{n:05d}", phone=f"+86139{n:08d}")
        out.append((DEALERS[dealer == "dealer-a"], f"{vin}-resale", resale))
    return out


def mixed_events(count: int) -> list[Sent]:
    """`count` events of as many vehicles as needed, vehicles interleaved in waves of eight (each
    vehicle's own events in order)."""
    out: list[Sent] = []
    n = 0
    while len(out) < count:
        wave = [vehicle_events(v) for v in range(n, n + 8)]
        n += 8
        for step in range(max(len(w) for w in wave)):
            out += [w[step] for w in wave if step < len(w)]
    return out[:count]


# --- running them -------------------------------------------------------------------------------------


@dataclass
class Counts:
    sent: int = 0  # events sent (a sender's own resends included)
    posts: int = 0  # HTTP requests, resends after a 5xx included
    answers: Counter[int] = field(default_factory=Counter)  # each event's final answer
    resent_5xx: int = 0  # 5xx answers the sender sent again
    stream_raised: int = 0  # stream invocations that failed as a whole (Lambda sends the batch again)
    sweep_jobs_failed: int = 0  # sweep jobs that failed (the others ran; the next tick runs it again)


class Inline:
    """The stream's lanes one after another, on the caller's thread: a seeded run repeats."""

    def map(self, fn: Any, *iterables: Any) -> Iterator[Any]:
        return iter([fn(*args) for args in zip(*iterables, strict=True)])

    def shutdown(self, wait: bool = True) -> None:
        pass


@contextmanager
def fresh_stack() -> Iterator[Harness]:
    """What the `harness` fixture builds, with the local stack's one-partition Queries (the table
    grows to thousands of items) and the stream's lanes inline."""
    from chalice.test import Client
    from moto import mock_aws
    from moto.dynamodb.models.table import Table

    import app as app_module
    from clm.local import moto_speedups
    from clm.local.provision import provision

    installed_before = getattr(Table, "_clm_fast_queries", False)
    moto_speedups.install()
    moto_speedups.atomic_dynamodb()
    moto_speedups.fast_responses()
    moto_speedups.fast_transactions()
    pin_both(NOW)
    try:
        with mock_aws():
            reset_process_state()
            provision("test")
            with Client(app_module.app, stage_name="test") as client:
                harness = Harness(client)
                harness.stream.pool.shutdown()
                harness.stream.pool = Inline()  # type: ignore[assignment]
                yield harness
    finally:
        reset_process_state()
        pin_both(None)
        if not installed_before:
            moto_speedups.uninstall()


@contextmanager
def quiet() -> Iterator[None]:
    """Only errors from the app's logger: thousands of retry warnings cost time and drown the counts."""
    import logging

    from chalicelib.observability import logger

    before = logger.log_level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def retry_at_once(monkeypatch: Any) -> None:
    """Failed work comes back at once (SQS: after its timeout), a worker times out after
    `LAMBDA_TIMEOUT`, and so does a send outside Lambda: an in-progress record a failure left
    behind blocks its message that long. Bookkeeping retries skip their backoff, as botocore's do."""
    from chalice.local import LambdaContext

    from chalicelib import aws
    from chalicelib.outbound import deliver
    from chalicelib.service import work
    from chalicelib.settings import get_settings
    from clm.local import stack

    timeout_ms = int(LAMBDA_TIMEOUT.total_seconds() * 1000)

    def context(name: str) -> Any:
        return LambdaContext(name, memory_size=512, max_runtime_ms=timeout_ms)

    monkeypatch.setattr(stack, "_context", context)
    monkeypatch.setattr(deliver, "IN_PROGRESS_MS", timeout_ms)
    monkeypatch.setattr(deliver, "BOOKKEEPING_BACKOFF_S", 0.0)
    monkeypatch.setattr(work, "RETRY_DELAY_SECONDS", 0)
    aws.client("sqs").set_queue_attributes(
        QueueUrl=get_settings().queue_urls["work"], Attributes={"VisibilityTimeout": "0"}
    )


def drain(harness: Harness, counts: Counts | None = None, rounds: int = 200) -> None:
    """Run stream and queue until idle; a stream invocation that raised is sent again (Lambda)."""
    for _ in range(rounds):
        try:
            busy = harness.stream.step()
        except Exception:
            if counts is not None:
                counts.stream_raised += 1
            busy = True
        busy = harness.queue.step_now() or busy
        if not busy:
            return
    raise AssertionError("work did not settle")


def send(harness: Harness, counts: Counts, sender: str, webhook_id: str, payload: dict[str, Any]) -> None:
    """Post as a partner does: a 5xx is sent again, same id and body, until it is answered."""
    from tests.support import dumps

    body = dumps(payload)
    counts.sent += 1
    for _ in range(20):
        counts.posts += 1
        status = int(harness.post(sender, payload, msg_id=webhook_id, body=body).status_code)
        if status < 500:
            counts.answers[status] += 1
            return
        counts.resent_5xx += 1
    raise AssertionError(f"{webhook_id} answered 5xx 20 times")


def run_sweep(at: datetime, counts: Counts, real_now: datetime | None = None, jobs: Any = None) -> None:
    """Run the sweep as the schedules do: a job that fails (the others run on) runs again at the
    next tick."""
    from chalicelib.service.sweep import ALL_JOBS, sweep

    for _ in range(500):
        report = sweep(at, real_now=real_now, jobs=jobs or ALL_JOBS)
        if not report.jobs_failed:
            return
        counts.sweep_jobs_failed += len(report.jobs_failed)
    raise AssertionError("a sweep job failed 500 times in a row")


def drive(harness: Harness, events: list[Sent], counts: Counts) -> None:
    """Every event, one per second of business time, the workers after every few; then the sweep."""
    for i, (sender, webhook_id, payload) in enumerate(events):
        pin_both(NOW + timedelta(seconds=i))
        send(harness, counts, sender, webhook_id, payload)
        if i % DRAIN_EVERY == DRAIN_EVERY - 1 or i == len(events) - 1:
            drain(harness, counts)
    pin_both(SWEEP_AT)
    run_sweep(SWEEP_AT, counts)  # what fails in it waits for the next run (`recover`)
    drain(harness, counts)


def recover(harness: Harness, counts: Counts, at: datetime) -> int:
    """The faults are over: ops replays the DLQ (later than any Lambda's timeout), and the sweep
    re-drives what was lost, once per visibility timeout; until nothing is left. Returns how
    many messages were replayed."""
    from chalicelib.service.sweep import sweep
    from clm.cli import main

    time.sleep(LAMBDA_TIMEOUT.total_seconds())
    replayed = 0
    for k in range(1, 6):
        found = len(dlq_refs())
        if found:
            assert main(["dlq", "replay"]) == 0
            replayed += found
            drain(harness, counts)
        report = sweep(at, real_now=at + k * VISIBILITY, jobs=("sms", "housekeeping"))
        drain(harness, counts)
        if not found and not (report.inbox_redriven or report.outbox_redriven or report.sms_sent):
            break
    return replayed


# --- what went out, what the table holds ----------------------------------------------------------------


def delivered() -> Counter[tuple[str, str]]:
    """Every message SNS accepted, (topic key or phone number, body), counted."""
    from moto.sns.models import sns_backends

    from chalicelib.settings import get_settings

    settings = get_settings()
    backend = sns_backends[settings.account][settings.region]
    topic_keys = {arn: key for key, arn in settings.topics.items()}
    out: Counter[tuple[str, str]] = Counter()
    for arn, topic in backend.topics.items():
        for _, message, *_ in topic.sent_notifications:
            out[(topic_keys.get(arn, arn), message)] += 1
    for number, text in backend.sms_messages.values():
        out[(number, text)] += 1
    return out


def table_items() -> list[dict[str, Any]]:
    """Every item, as DynamoDB returns it."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    ddb = aws.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": get_settings().table_name}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def outbox_items(raws: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every outbox item, read through its model (which opens what is sealed at rest)."""
    from chalicelib.store.models import OutboxItem

    return {
        raw["outbox_id"]["S"]: OutboxItem.from_raw_data(raw)
        for raw in (table_items() if raws is None else raws)
        if raw["pk"]["S"].startswith("OUTBOX#")
    }


def dlq_refs() -> list[dict[str, str]]:
    """The work in the DLQ, left there (hidden while paging, then visible again)."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    sqs = aws.client("sqs")
    url = get_settings().queue_urls["dlq"]
    found: list[dict[str, str]] = []
    handles: list[str] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        found += [json.loads(m["Body"]) for m in got]
        handles += [m["ReceiptHandle"] for m in got]
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for i, h in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return found


@dataclass
class Ledger:
    """The outbox and the inbox as the table holds them, what SNS accepted, what the DLQ holds."""

    outbox: dict[str, Any]  # outbox id -> OutboxItem
    inbox: dict[tuple[str, str], str]  # (partner, webhook id) -> status
    sent: Counter[tuple[str, str]]
    dlq: list[dict[str, str]]

    @classmethod
    def read(cls) -> Ledger:
        raws = table_items()
        inbox = {
            (raw["partner_id"]["S"], raw["webhook_id"]["S"]): raw["status"]["S"]
            for raw in raws
            if raw["pk"]["S"].startswith("INBOX#")
        }
        return cls(outbox_items(raws), inbox, delivered(), dlq_refs())

    def times_sent(self) -> tuple[Counter[str], Counter[tuple[str, str]]]:
        """How often each outbox message went out, and what went out that no outbox item holds."""
        ids_of: dict[tuple[str, str], list[str]] = {}
        for outbox_id, item in self.outbox.items():
            ids_of.setdefault((item.target, item.message), []).append(outbox_id)
        times: Counter[str] = Counter()
        strays: Counter[tuple[str, str]] = Counter()
        for content, n in self.sent.items():
            ids = ids_of.get(content, [])
            if not ids:
                strays[content] += n
            for k in range(n if ids else 0):  # identical messages under several ids: one each
                times[ids[k % len(ids)]] += 1
        return times, strays

    def in_dlq(self, kind: str) -> set[Any]:
        if kind == "inbox":
            return {(r["partner_id"], r["webhook_id"]) for r in self.dlq if r.get("kind") == "inbox"}
        return {r["outbox_id"] for r in self.dlq if r.get("kind") == "outbox"}


# --- 500 events under faults ----------------------------------------------------------------------------


def test_mixed_events_under_throttling_and_sns_failures_arrive_once_or_wait_in_the_dlq(
    monkeypatch: Any,
) -> None:
    started = time.monotonic()
    events = mixed_events(EVENTS)
    injector = Injector(SEED, RULES)
    counts = Counts()
    with quiet(), fresh_stack() as harness:
        retry_at_once(monkeypatch)
        install(monkeypatch, injector)
        drive(harness, events, counts)
        injector.enabled = False
        during = Ledger.read()
        end = SWEEP_AT + timedelta(seconds=1)  # SMS are paced per second
        pin_both(end)
        replayed = recover(harness, counts, end)
        after = Ledger.read()
    took = time.monotonic() - started

    accepted = {(s, w) for s, w, _ in events}
    sent_during, strays_during = during.times_sent()
    sent_after, strays_after = after.times_sent()
    doubled = sorted({i for i, n in (sent_during | sent_after).items() if n > 1})
    # While faults last: a message not out yet is being retried (pending or queued, the sweep
    # re-drives it) or sits in the DLQ; given up on (FAILED#OUTBOX) and not in the DLQ is lost.
    messages_in_dlq = during.in_dlq("outbox")
    retrying = {i for i, m in during.outbox.items() if m.status in ("pending", "queued")} - messages_in_dlq
    given_up = {i for i in retrying if during.outbox[i].gsi1pk == "FAILED#OUTBOX"}
    events_in_dlq = during.in_dlq("inbox")
    dead_not_in_dlq = {k for k in accepted if during.inbox[k] == "dead_lettered"} - events_in_dlq
    outcomes_during = dict(sorted(Counter(during.inbox[k] for k in accepted).items()))
    outcomes_after = dict(sorted(Counter(after.inbox[k] for k in accepted).items()))
    suppressed = {i for i, m in after.outbox.items() if m.status == "suppressed"}
    expected = set(after.outbox) - suppressed
    lost = sorted(i for i in expected if sent_after[i] == 0)
    tally = injector.tally
    ddb, pub = "dynamodb", "sns.Publish"
    parts = [
        f"events {len(events)}: sent {counts.sent} in {counts.posts} posts "
        f"({counts.resent_5xx} resent after a 5xx), answers {dict(sorted(counts.answers.items()))}",
        f"faults: dynamodb {tally.of(tally.faulted_calls, ddb)} of {tally.of(tally.calls, ddb)} calls "
        f"throttled ({tally.of(tally.faulted_attempts, ddb)} attempts, {tally.of(tally.surfaced, ddb)} "
        f"past botocore's retries), sns {tally.faulted_calls[pub]} of {tally.calls[pub]} publishes failed "
        f"({tally.faulted_attempts[pub]} attempts, {tally.surfaced[pub]} past retries)",
        f"stream invocations failed {counts.stream_raised}, sweep jobs failed {counts.sweep_jobs_failed}",
        f"while faulted: outcomes {outcomes_during}, dlq {len(during.dlq)} ({len(events_in_dlq)} "
        f"events, {len(messages_in_dlq)} messages), messages retrying {len(retrying)}, "
        f"sent {sum(during.sent.values())}",
        f"after the DLQ replay ({replayed}) and re-drives: outcomes {outcomes_after}, "
        f"notifications expected {len(expected)} (+{len(suppressed)} suppressed), "
        f"delivered {sum(after.sent.values())}, lost {len(lost)}, doubled {len(doubled)}, "
        f"strays {sum(strays_after.values())}, dlq {len(after.dlq)}",
        f"{took:.0f} s",
    ]
    report = "; ".join(parts)
    show_figures("faults", [f"fault test: {part}" for part in parts])
    assert not doubled, f"{report}\ndoubled: {doubled[:10]}"
    assert not strays_during and not strays_after, (
        f"{report}\nstrays: {list(strays_after or strays_during)[:3]}"
    )
    assert not given_up and not dead_not_in_dlq, (
        f"{report}\ngiven up outside the DLQ: {given_up, dead_not_in_dlq}"
    )
    assert set(outcomes_during) <= {"applied", "ignored", "pending", "dead_lettered"}, report
    assert not lost, f"{report}\nlost: {lost[:10]}"
    assert not any(sent_after[i] for i in suppressed), report
    assert set(outcomes_after) <= {"applied", "ignored"} and not after.dlq, report
    assert counts.answers[202] == len(accepted) and sum(counts.answers.values()) == len(events), report
    assert tally.of(tally.surfaced, "dynamodb") and tally.surfaced["sns.Publish"], report  # the app saw some


# --- a Lambda dying between the state write and the send -------------------------------------------------


def outbox_status() -> dict[str, str]:
    return {outbox_id: item.status for outbox_id, item in outbox_items().items()}


def sent_once(expected: int) -> None:
    """`expected` messages went out, each once, each its outbox item's, all marked delivered."""
    sent = delivered()
    statuses = outbox_status()
    assert len(statuses) == expected and set(statuses.values()) == {"delivered"}, statuses
    assert sum(sent.values()) == expected and set(sent.values()) == {1}, sent


@pytest.mark.parametrize("retry", ["stream", "sweep"])
def test_a_lambda_dying_between_the_state_write_and_the_send_is_healed_by_the_outbox(
    harness: Harness, monkeypatch: Any, retry: str
) -> None:
    """The event's state and its three messages are written, then the Lambda dies in the first
    publish (no clean-up: its idempotency record stays in progress). Lambda sends the batch again
    once the dead invocation timed out, or, if that is lost too, the sweep finds the messages
    pending past the visibility timeout: every message goes out once."""
    from chalicelib import clock
    from chalicelib.service.sweep import sweep

    retry_at_once(monkeypatch)
    injector = Injector(SEED, [Rule("sns", 1.0, operations=frozenset({"Publish"}), limit=1, kill=True)])
    install(monkeypatch, injector)
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    with pytest.raises(Killed):
        harness.drain()
    assert injector.tally.surfaced["sns.Publish"] == 1
    statuses = outbox_status()
    assert len(statuses) == 3 and "delivered" not in Counter(statuses.values()) - Counter(["delivered"] * 2)
    assert len(delivered()) < 3  # the lanes not killed may have sent theirs
    time.sleep(LAMBDA_TIMEOUT.total_seconds())  # the dead invocation timed out
    if retry == "sweep":
        real_handler = harness.stream.handler
        harness.stream.handler = lambda event, context: None  # the batch's retry is lost as well
        harness.stream.step()
        harness.stream.handler = real_handler
        lost_at = clock.now() + VISIBILITY + timedelta(seconds=1)
        assert sweep(clock.now(), real_now=lost_at, jobs=("housekeeping",)).outbox_redriven >= 1
    harness.drain()
    sent_once(3)
    later = clock.now() + 3 * VISIBILITY
    assert sweep(clock.now(), real_now=later, jobs=("housekeeping",)).outbox_redriven == 0
    harness.drain()
    sent_once(3)


# --- the bugs the run found ---------------------------------------------------------------------------


def deliver_with_one_update_failing(harness: Harness, monkeypatch: Any, key: str) -> None:
    """A delivery applied and its messages sent while the first UpdateItem of an item whose key
    holds `key` fails on every attempt (past botocore's retries); the workers retry at once."""
    retry_at_once(monkeypatch)
    rule = Rule("dynamodb", 1.0, operations=frozenset({"UpdateItem"}), about=lambda a: key in a, limit=1)
    injector = Injector(SEED, [rule])
    install(monkeypatch, injector)
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    assert injector.tally.surfaced["dynamodb.UpdateItem"] == 1


def test_a_throttled_write_after_the_publish_does_not_send_the_message_again(
    harness: Harness, monkeypatch: Any
) -> None:
    """The message went out, then marking it delivered was throttled past botocore's retries:
    raising there made Powertools forget the publish, and the retry sent it a second time."""
    deliver_with_one_update_failing(harness, monkeypatch, "pk=OUTBOX#")
    sent_once(3)


def test_a_failed_idempotency_success_write_does_not_leave_a_sent_message_in_the_dlq(
    harness: Harness, monkeypatch: Any
) -> None:
    """The message went out and was marked delivered, then Powertools' own success write failed:
    its record stayed in progress, every retry failed as `already in progress`, and the work
    ended in the DLQ (and, replayed, in it again) although the message was out."""
    deliver_with_one_update_failing(harness, monkeypatch, "pk=IDEMPOTENCY#outbox")
    sent_once(3)
    assert dlq_refs() == []


def test_a_send_outside_lambda_left_in_progress_is_retried_after_its_window_not_after_a_week(
    harness: Harness, monkeypatch: Any
) -> None:
    """A sweep's send (no Lambda context) failed and Powertools could not delete its record: the
    record had no in-progress expiry, so the message was blocked for the idempotency TTL (7 days)."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
    )

    from chalicelib.outbound.deliver import deliver

    retry_at_once(monkeypatch)
    real_handler = harness.stream.handler

    def lose_outbox(event: Any, context: Any) -> Any:  # the messages wait for the sweep
        kept = [r for r in event["Records"] if not r["dynamodb"]["Keys"]["pk"]["S"].startswith("OUTBOX#")]
        return real_handler({"Records": kept}, context) if kept else None

    harness.stream.handler = lose_outbox
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    outbox_id = sorted(outbox_status())[0]
    failing = [
        Rule("sns", 1.0, operations=frozenset({"Publish"}), limit=1),
        Rule(
            "dynamodb", 1.0, operations=frozenset({"DeleteItem"}), about=lambda a: "IDEMPOTENCY" in a, limit=1
        ),
    ]
    install(monkeypatch, Injector(SEED, failing))
    with pytest.raises(IdempotencyPersistenceLayerError):
        deliver(outbox_id)  # the publish failed, and so did the clean-up
    with pytest.raises(IdempotencyAlreadyInProgressError):
        deliver(outbox_id)  # still within its window: maybe another sender is at it
    time.sleep(LAMBDA_TIMEOUT.total_seconds())
    assert deliver(outbox_id)["status"] == "delivered"
    deliver(outbox_id)  # Powertools answers from its record
    assert sum(delivered().values()) == 1
