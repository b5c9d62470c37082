"""Nothing lost, nothing doubled: crashes mid-event, lost stream records, failing deliveries, the DLQ."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.functional.test_lifecycle import body_of, subscribe

# Business time for sweeps that test housekeeping only: before any deadline of the example delivery.
DELIVERED_AT = datetime.fromisoformat(example("vehicle.delivered")["data"]["delivered_at"])
VISIBILITY = timedelta(seconds=360 + 60)  # the work queue's visibility timeout + a consumer's run


def test_a_crash_before_the_inbox_closes_is_healed_without_doubles(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib.service import process, work

    staff = subscribe("staff_tasks")
    original = process.write_all  # the last write: timeline entry and outcome, in one batch
    calls = {"n": 0}

    def crash_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("Lambda died here")
        original(*args, **kwargs)

    monkeypatch.setattr(process, "write_all", crash_once)
    monkeypatch.setattr(work, "RETRY_DELAY_SECONDS", 0)
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()  # stream run crashes, the retry from SQS completes the event
    assert calls["n"] == 2
    tasks = body_of(harness.get("/dealers/dealer-a/tasks"))["items"]
    assert len(tasks) == 3
    assert len(staff()) == 3
    timeline = body_of(harness.get("/dealers/dealer-a/vehicles/LSVAU2180N2123456"))["timeline"]
    assert len(timeline) == 1


def test_a_lost_stream_record_is_redriven_by_the_sweep(harness: Harness) -> None:
    from chalicelib import clock
    from chalicelib.service.sweep import sweep

    real_handler = harness.stream.handler
    harness.stream.handler = lambda event, context: None  # the stream loses its records for a while
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    harness.stream.handler = real_handler
    assert body_of(harness.get("/dealers/dealer-a/tasks"))["items"] == []
    too_early = sweep(DELIVERED_AT, real_now=clock.now() + VISIBILITY - timedelta(seconds=1))
    assert too_early.inbox_redriven == 0  # it may still be on its way: not lost yet
    lost_at = clock.now() + VISIBILITY + timedelta(seconds=1)
    report = sweep(DELIVERED_AT, real_now=lost_at)
    assert report.inbox_redriven == 1
    assert sweep(DELIVERED_AT, real_now=lost_at + timedelta(minutes=1)).inbox_redriven == 0  # once a period
    harness.drain()
    assert len(body_of(harness.get("/dealers/dealer-a/tasks"))["items"]) == 3
    later = sweep(DELIVERED_AT, real_now=lost_at + 2 * VISIBILITY)
    assert later.outbox_redriven == 0  # the stream delivered them


def deliver_losing_its_messages(harness: Harness) -> None:
    """A delivery applied, while the stream drops the records of the messages it writes (they
    stay pending in the outbox, for the sweep to find)."""
    real_handler = harness.stream.handler

    def lose_outbox(event: Any, context: Any) -> None:
        kept = [r for r in event["Records"] if not r["dynamodb"]["Keys"]["pk"]["S"].startswith("OUTBOX#")]
        if kept:  # Lambda never invokes with an empty batch
            real_handler({"Records": kept}, context)

    harness.stream.handler = lose_outbox
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    harness.stream.handler = real_handler


def test_a_lost_outbox_record_is_redriven_by_the_sweep(harness: Harness) -> None:
    from chalicelib import clock
    from chalicelib.service.sweep import sweep

    staff = subscribe("staff_tasks")
    deliver_losing_its_messages(harness)
    assert staff() == []
    lost_at = clock.now() + VISIBILITY + timedelta(seconds=1)
    assert sweep(DELIVERED_AT, real_now=lost_at).outbox_redriven == 3
    harness.drain()
    assert len(staff()) == 3
    assert sweep(DELIVERED_AT, real_now=lost_at + 2 * VISIBILITY).outbox_redriven == 0


def test_failing_delivery_ends_in_the_dlq_and_replays(
    harness: Harness, monkeypatch: Any, capsys: Any
) -> None:
    from chalicelib import aws
    from chalicelib.service import work
    from chalicelib.settings import get_settings
    from clm.cli import main

    monkeypatch.setattr(work, "RETRY_DELAY_SECONDS", 0)
    sqs, sns = aws.client("sqs"), aws.client("sns")
    settings = get_settings()
    sqs.set_queue_attributes(QueueUrl=settings.queue_urls["work"], Attributes={"VisibilityTimeout": "0"})
    sns.delete_topic(TopicArn=settings.topics["staff_tasks"])  # every publish now fails
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    for _ in range(12):
        harness.stream.step()
        harness.queue.step_now()
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["count"] == 3
    assert {m["body"]["kind"] for m in listed["messages"]} == {"outbox"}
    assert all("Publish" in m["why"] and "NotFound" in m["why"] for m in listed["messages"]), listed
    assert main(["dlq", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["message_id", "receives", "kind", "ref", "why"] and len(rows) == 3
    assert all("NotFound" in row for row in rows)
    # The queue moved them; they left the re-drive queue too: no sweep sends them behind the DLQ's back.
    from chalicelib import clock
    from chalicelib.service.sweep import sweep

    later = clock.system_now() + 3 * VISIBILITY
    assert sweep(DELIVERED_AT, real_now=later, jobs=("housekeeping",)).outbox_redriven == 0
    sns.create_topic(Name=settings.topics["staff_tasks"].rsplit(":", 1)[1])
    staff = subscribe("staff_tasks")
    assert main(["dlq", "replay"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 3
    harness.drain()
    assert len(staff()) == 3
    assert main(["dlq", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0


def test_emf_metrics_and_logs_carry_no_personal_data(harness: Harness, capsys: Any) -> None:
    import io

    from chalicelib.observability import logger

    log_stream = io.StringIO()
    previous = logger.registered_handler.setStream(log_stream)  # type: ignore[attr-defined]
    capsys.readouterr()
    harness.post("dealer-a", example("vehicle.delivered"))
    harness.post("dealer-a", example("vehicle.delivered"), msg_id="msg_1")
    harness.post("dealer-a", {"type": "nope"})
    harness.drain()
    out = capsys.readouterr().out
    logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    metrics = [line for line in lines if "_aws" in line]
    names = [m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for m in metrics]
    assert names == ["EventsAccepted", "EventsDuplicate", "EventsRejected"]
    assert metrics[2]["reason"] == "unknown_type"
    logged = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    applied = [line for line in logged if line.get("message") == "event applied"]
    assert applied and applied[0]["partner_id"] == "dealer-a" and applied[0]["webhook_id"] == "msg_1"
    customer = example("vehicle.delivered")["data"]["customer"]
    text = out + json.dumps(logged, ensure_ascii=False)
    assert customer["phone"] not in text and customer["name"] not in text
    rejected = next(line for line in logged if line.get("message") == "webhook rejected")
    assert (rejected["partner_id"], rejected["reason"]) == ("dealer-a", "unknown_type")


@pytest.mark.parametrize("webhook_id", ["x" * 257, "bad\nid"])
def test_unusable_webhook_ids_are_400(harness: Harness, webhook_id: str) -> None:
    response = harness.post("dealer-a", example("vehicle.delivered"), msg_id=webhook_id)
    assert response.status_code == 400


def test_cli_partner_lifecycle(harness: Harness, capsys: Any) -> None:
    from clm.cli import main

    capsys.readouterr()
    assert main(["partner", "add", "dealer-new", "--kind", "dealer", "--name", "New"]) == 0
    creds = json.loads(capsys.readouterr().out)
    assert creds["webhook_secret"].startswith("whsec_") and creds["api_key"]
    assert main(["partner", "add", "dealer-new", "--kind", "dealer"]) == 1
    assert main(["partner", "rotate-secret", "dealer-new"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["webhook_secret"] != creds["webhook_secret"]
    assert main(["partner", "rotate-secret", "nobody"]) == 1
    assert (
        harness.post("dealer-new", example("odometer.reported"), secret=rotated["webhook_secret"]).status_code
        == 202
    )
    assert (
        harness.post("dealer-new", example("odometer.reported"), secret=creds["webhook_secret"]).status_code
        == 202
    )
    listed = harness.client.http.get(
        "/dealers/dealer-new/tasks", headers={"authorization": f"Bearer {creds['api_key']}"}
    )
    assert listed.status_code == 200


def test_secrets_are_not_stored_in_plaintext(harness: Harness) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    scan = aws.client("dynamodb").scan(TableName=get_settings().table_name)["Items"]
    dump = json.dumps(scan)
    for creds in harness.creds.values():
        assert creds.webhook_secret not in dump
        assert creds.webhook_secret.removeprefix("whsec_") not in dump
        assert creds.api_key not in dump


def test_workers_need_no_http_request_in_their_process(harness: Harness, monkeypatch: Any) -> None:
    """On AWS the stream and queue handlers are Lambda functions that never serve HTTP: the app
    object has no request context there, only the event's own."""
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    monkeypatch.delattr(harness.app, "lambda_context", raising=False)
    harness.drain()
    assert len(body_of(harness.get("/dealers/dealer-a/tasks"))["items"]) == 3


def test_dlq_replay_by_id_replays_only_that_message_and_only_once(harness: Harness, capsys: Any) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from clm.cli import main

    sqs, urls = aws.client("sqs"), get_settings().queue_urls
    for n in range(3):
        sqs.send_message(
            QueueUrl=urls["dlq"], MessageBody=json.dumps({"kind": "outbox", "outbox_id": f"o{n}"})
        )
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["messages"]
    assert [m["why"] for m in listed] == ["the message is no longer stored"] * 3
    chosen = next(m for m in listed if m["body"]["outbox_id"] == "o1")["message_id"]
    assert main(["dlq", "replay", chosen]) == 0
    assert [m["body"]["outbox_id"] for m in json.loads(capsys.readouterr().out)["messages"]] == ["o1"]
    work = sqs.receive_message(QueueUrl=urls["work"], MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["outbox_id"] for m in work] == ["o1"]
    assert main(["dlq", "replay", chosen]) == 1  # not there any more: said, not replayed twice
    assert "not in the dead-letter queue" in capsys.readouterr().err
    assert main(["dlq", "replay", chosen, "--all"]) == 1
    assert main(["dlq", "list", "--json"]) == 0
    left = json.loads(capsys.readouterr().out)["messages"]
    assert sorted(m["body"]["outbox_id"] for m in left) == ["o0", "o2"]
    assert main(["dlq", "replay", "--all"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2
