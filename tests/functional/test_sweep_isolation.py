"""A throttled call costs one job (or one task) its run, never the whole sweep: the other jobs and
tasks go on, the report says what failed, and the next run finishes it, once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.faults import Injector, Rule, install

DELIVERED_AT = datetime.fromisoformat(example("vehicle.delivered")["data"]["delivered_at"])
LATE = DELIVERED_AT + timedelta(hours=25)  # both handover tasks are past their 24 h SLA


def _tasks(harness: Harness, status: str) -> list[str]:
    answer = harness.get(f"/dealers/dealer-a/tasks?status={status}")
    return sorted(t["kind"] for t in json.loads(answer.body)["items"])


def _always(service: str, operation: str, about: Any) -> Rule:
    """Every attempt of the matching calls throttled (the last weight: every attempt), so
    botocore's retries cannot absorb it."""
    return Rule(service, 1.0, attempts=(0.0, 1.0), operations=frozenset({operation}), about=about)


@pytest.fixture
def delivered(harness: Harness) -> Harness:
    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    return harness


def _task_ids(harness: Harness) -> dict[str, str]:
    answer = harness.get("/dealers/dealer-a/tasks")
    return {t["kind"]: t["task_id"] for t in json.loads(answer.body)["items"]}


def test_one_throttled_task_is_left_for_the_next_run_and_the_others_go_on(
    delivered: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service.sweep import sweep

    stuck = _task_ids(delivered)["handover_submit"]
    injector = Injector(1, [_always("dynamodb", "UpdateItem", lambda about: f"TASK#{stuck}" in about)])
    install(monkeypatch, injector)
    report = sweep(LATE)
    assert report.tasks_overdue == 1 and report.tasks_failed == 1
    assert report.jobs_failed == {}
    assert injector.tally.surfaced["dynamodb.UpdateItem"] >= 1
    injector.enabled = False
    delivered.drain()
    assert _tasks(delivered, "overdue") == ["handover_confirm"]

    again = sweep(LATE)  # the throttling is over
    assert (again.tasks_overdue, again.tasks_failed, again.breaches_announced) == (1, 0, 1)
    assert sweep(LATE).tasks_overdue == 0  # once
    delivered.drain()
    assert _tasks(delivered, "overdue") == ["handover_confirm", "handover_submit"]


def test_a_failed_announcement_is_made_by_the_next_run_once(
    delivered: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim landed, the announcement did not: the task stays in the breach queue."""
    from chalicelib.service.sweep import sweep
    from tests.functional.test_lifecycle import subscribe

    ops = subscribe("ops")
    confirm = _task_ids(delivered)["handover_confirm"]

    updates = 0

    def announcing(about: str) -> bool:
        """The task's updates after its claim: the one that takes it out of the breach queue."""
        nonlocal updates
        if f"TASK#{confirm}" not in about:
            return False
        updates += 1
        return updates > 1

    injector = Injector(2, [_always("dynamodb", "UpdateItem", announcing)])
    install(monkeypatch, injector)
    first = sweep(LATE)
    assert (first.tasks_overdue, first.breaches_announced, first.tasks_failed) == (2, 1, 1)
    injector.enabled = False
    second = sweep(LATE)
    assert (second.tasks_overdue, second.breaches_announced, second.tasks_failed) == (0, 1, 0)
    assert sweep(LATE).breaches_announced == 0
    delivered.drain()
    breached = [m["body"]["task"]["kind"] for m in ops() if m["body"]["event"] == "sla.breached"]
    # The failed announcement's message was written before its bookkeeping failed; the outbox
    # entry is keyed by the task, so the second announcement sends it once.
    assert sorted(breached) == ["handover_confirm", "handover_submit"]


def test_a_failed_job_does_not_cost_the_others_their_run(
    delivered: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service.sweep import sweep

    injector = Injector(3, [_always("dynamodb", "Query", lambda about: "REMIND#" in about)])
    install(monkeypatch, injector)
    report = sweep(LATE)
    assert set(report.jobs_failed) == {"reminders"}
    assert "ProvisionedThroughputExceeded" in report.jobs_failed["reminders"]
    assert report.tasks_overdue == 2  # deadlines ran after the reminders failed
    assert report.reminders == {}
    injector.enabled = False
    assert sweep(LATE).jobs_failed == {}


def test_clm_sweep_exits_1_and_names_the_failed_job(
    delivered: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clm import cli

    monkeypatch.setattr(cli, "_use_stack", lambda: None)  # the harness's mock_aws is the stack
    install(monkeypatch, Injector(4, [_always("dynamodb", "Query", lambda about: "BREACH#" in about)]))
    code = cli.main(["sweep", "--at", LATE.isoformat()])
    out, err = capsys.readouterr()
    shown = json.loads(out)
    assert code == 1
    # Its log lines go to stderr too (stdout stays JSON); the verdict is the last line.
    assert err.splitlines()[-1].startswith("clm: sweep: deadlines failed")
    assert list(shown["jobs_failed"]) == ["deadlines"]
    assert shown["tasks_overdue"] == 2  # claimed before the breach queue's read failed
