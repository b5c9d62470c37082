"""Only what failed or was lost goes to the retry queue; a success never reaches the DLQ (DESIGN.md §9)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.conftest import NOW, ROOT, Harness, example
from tests.functional.test_lifecycle import body_of
from tests.functional.test_resilience import DELIVERED_AT, VISIBILITY, deliver_losing_its_messages


def lose_stream(harness: Harness) -> Any:
    """The stream drops its records until the returned function is called."""
    real = harness.stream.handler
    harness.stream.handler = lambda event, context: None

    def restore() -> None:
        harness.stream.handler = real

    return restore


def test_lost_work_is_redriven_once_per_visibility_timeout_at_most_ten_times_then_dead_lettered(
    harness: Harness, capsys: Any
) -> None:
    from chalicelib import aws
    from chalicelib.service.sweep import LOST_TOO_OFTEN, sweep
    from chalicelib.settings import get_settings
    from chalicelib.store import inbox
    from clm.cli import main

    restore = lose_stream(harness)
    assert harness.post("dealer-a", example("vehicle.delivered"), msg_id="lost").status_code == 202
    harness.drain()
    restore()
    ref = inbox.InboxRef("dealer-a", "lost")
    at = NOW
    redriven = dead_lettered = 0
    for _ in range(15):  # the worker dies every time (a timeout): nothing notes a failure
        at += VISIBILITY + timedelta(seconds=1)
        report = sweep(DELIVERED_AT, real_now=at)
        assert sweep(DELIVERED_AT, real_now=at + timedelta(seconds=30)).inbox_redriven == 0
        redriven += report.inbox_redriven
        dead_lettered += report.dead_lettered
    assert (redriven, dead_lettered) == (inbox.MAX_REDRIVES, 1)
    item = inbox.load(ref)
    assert item is not None and item.status == "dead_lettered"
    assert body_of(harness.get("/partners/dealer-a/events/lost"))["outcome"] == "dead_lettered"

    # Where ops look: the dead-letter queue, saying why; a replay applies it.
    aws.client("sqs").purge_queue(QueueUrl=get_settings().queue_urls["work"])  # each worker died
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["messages"]
    assert listed["body"] == {"kind": "inbox", "partner_id": "dealer-a", "webhook_id": "lost"}
    assert listed["why"] == LOST_TOO_OFTEN
    assert main(["dlq", "replay"]) == 0
    replayed = sweep(DELIVERED_AT, real_now=at + VISIBILITY + timedelta(seconds=1))
    assert replayed.dead_lettered == 0  # its attempts count afresh: not given up again at once
    harness.drain()
    assert body_of(harness.get("/partners/dealer-a/events/lost"))["outcome"] == "applied"


def test_work_being_retried_by_the_queue_is_not_redriven(harness: Harness, monkeypatch: Any) -> None:
    from chalicelib.service import process
    from chalicelib.service.sweep import sweep

    def broken(*args: Any) -> None:
        raise RuntimeError("flaky dependency")

    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    monkeypatch.setitem(process.HANDLERS, "handover.submitted", broken)
    assert harness.post("dealer-a", example("handover.submitted"), msg_id="retried").status_code == 202
    harness.stream.step()  # fails: handed to the retry queue now
    # Business time far ahead (`clm sweep --at`) and housekeeping within the visibility timeout.
    report = sweep(NOW + timedelta(days=60), real_now=NOW + VISIBILITY - timedelta(seconds=5))
    assert report.inbox_redriven == 0


def test_clm_sweep_far_ahead_redrives_nothing(harness: Harness, capsys: Any) -> None:
    from clm.cli import main

    restore = lose_stream(harness)
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    restore()
    capsys.readouterr()
    assert main(["sweep", "--at", "2030-01-01T00:00:00+08:00"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["inbox_redriven"], report["outbox_redriven"]) == (0, 0)


def test_one_bad_message_in_a_queue_batch_never_makes_the_good_ones_run_again(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib import aws
    from chalicelib.service import work
    from chalicelib.settings import get_settings

    runs: list[str] = []

    def handle(ref: Any, lambda_context: Any = None) -> str:
        runs.append(ref["outbox_id"])
        if ref["outbox_id"] == "bad":
            raise LookupError("no such message")
        return "delivered"

    sqs, url = aws.client("sqs"), get_settings().queue_urls["work"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    work.enqueue([work.outbox_ref("bad")] + [work.outbox_ref(f"good-{n}") for n in range(3)])
    monkeypatch.setattr(work, "handle", handle)
    harness.queue.step_now()  # one batch of four: three succeed, one is reported failed
    harness.queue.step_now()  # only the failed one comes back
    assert sorted(runs) == ["bad", "bad", "good-0", "good-1", "good-2"]


def test_a_failing_stream_record_is_handed_to_the_queue_and_the_batch_goes_on(
    harness: Harness, monkeypatch: Any
) -> None:
    from chalicelib.service import process

    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()

    def broken(*args: Any) -> None:
        raise RuntimeError("bug in one handler")

    monkeypatch.setitem(process.HANDLERS, "handover.submitted", broken)
    assert harness.post("dealer-a", example("handover.submitted"), msg_id="bad").status_code == 202
    assert harness.post("dealer-a", example("delivery.feedback_submitted"), msg_id="good").status_code == 202
    harness.stream.step()
    assert body_of(harness.get("/partners/dealer-a/events/good"))["outcome"] == "applied"
    found = body_of(harness.get("/partners/dealer-a/events/bad"))
    assert (found["outcome"], found["attempts"]) == ("pending", 1)
    assert harness.stream.unfinished == []  # handed to SQS, not held in the shard


def test_infra_keeps_the_retry_queue_in_step_with_its_consumer() -> None:
    from chalicelib.settings import WORK_MAX_RECEIVES, get_settings
    from clm.local.provision import parameters

    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    params = parameters()
    queue = template["Resources"]["WorkQueueSqs"]["Properties"]
    assert queue["VisibilityTimeout"] == {"Ref": "WorkVisibilityTimeout"}
    assert int(params["WorkVisibilityTimeout"]) >= 6 * int(params["WorkConsumerTimeout"])
    assert queue["RedrivePolicy"]["maxReceiveCount"] == WORK_MAX_RECEIVES
    assert get_settings().work_visibility_seconds == int(params["WorkVisibilityTimeout"])
    function = template["Resources"]["WorkQueue"]["Properties"]
    assert function["Timeout"] == {"Ref": "WorkConsumerTimeout"}
    sources = [
        *function["Events"].values(),
        *template["Resources"]["TableStream"]["Properties"]["Events"].values(),
    ]
    assert all(s["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for s in sources)


def test_infra_fragments_merge_into_functions_the_app_defines() -> None:
    """`chalice package --merge-template` deep-merges by logical id: a fragment must name a function
    of the app (CamelCase of its handler's name), and a resource of ours must never share one."""
    import app as app_module

    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    handlers = {
        "".join(part.capitalize() for part in name.split("_")) for name in app_module.app.handler_map
    } | {"RestAPI"}
    fragments = {name for name, resource in template["Resources"].items() if "Type" not in resource}
    own = {name for name, resource in template["Resources"].items() if "Type" in resource}
    assert fragments <= handlers
    assert not own & handlers


def test_a_message_lost_too_often_is_dead_lettered_once_and_a_replay_sends_it_once(
    harness: Harness, capsys: Any
) -> None:
    from chalicelib import aws, clock
    from chalicelib.service.sweep import LOST_TOO_OFTEN, sweep
    from chalicelib.settings import get_settings
    from chalicelib.store import outbox
    from clm.cli import main
    from tests.functional.test_lifecycle import subscribe

    staff = subscribe("staff_tasks")
    deliver_losing_its_messages(harness)
    at, handed, dead = clock.now(), 0, 0
    for _ in range(outbox.MAX_HANDOFFS + 3):  # every worker the sweep hands them to dies
        at += VISIBILITY + timedelta(seconds=1)
        report = sweep(DELIVERED_AT, real_now=at)
        handed, dead = handed + report.outbox_redriven, dead + report.dead_lettered
    assert (handed, dead) == (3 * outbox.MAX_HANDOFFS, 3)
    aws.client("sqs").purge_queue(QueueUrl=get_settings().queue_urls["work"])
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["messages"]
    assert sorted(m["body"]["kind"] for m in listed) == ["outbox"] * 3
    assert {m["why"] for m in listed} == {LOST_TOO_OFTEN}
    assert staff() == []
    assert main(["dlq", "replay", "--all"]) == 0
    harness.drain()
    assert len(staff()) == 3
    assert main(["dlq", "replay", "--all"]) == 0  # nothing left to send twice
    harness.drain()
    assert staff() == []
