"""Messages to staff on the `staff-tasks` and `ops` topics (JSON bodies, routing attributes)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.store.outbox import Message
from chalicelib.store.tasks import Task


def task_created(task: Task) -> Message:
    body = {"event": "task.created", "dealer_id": task.dealer_id, "task": task.to_json()}
    return Message(
        f"task-created#{task.dealer_id}#{task.task_id}",
        "topic",
        "staff_tasks",
        json.dumps(body, ensure_ascii=False),
        {"role": task.assignee_role, "dealer_id": task.dealer_id},
        source=task.task_id,
    )


def task_overdue(task: Task) -> Message:
    body = {"event": "task.overdue", "dealer_id": task.dealer_id, "task": task.to_json()}
    return Message(
        f"task-overdue#{task.dealer_id}#{task.task_id}",
        "topic",
        "staff_tasks",
        json.dumps(body, ensure_ascii=False),
        {"role": task.assignee_role, "dealer_id": task.dealer_id},
        source=task.task_id,
    )


def task_breach(task: Task) -> Message:
    """Tell the owner's manager (ops) once that a deadline was missed."""
    body = {"event": "sla.breached", "dealer_id": task.dealer_id, "kind": task.kind, "task": task.to_json()}
    return Message(
        f"task-breach#{task.dealer_id}#{task.task_id}",
        "topic",
        "ops",
        json.dumps(body, ensure_ascii=False),
        {"dealer_id": task.dealer_id, "kind": "sla_breach"},
        source=task.task_id,
    )


def breach_messages(task: Task) -> list[Message]:
    """What a missed deadline tells: the task is overdue (its role), the manager is told (ops), and
    a grade A lead left unanswered is escalated on ops too (002 §3)."""
    from chalicelib.outbound import ops

    messages = [task_overdue(task), task_breach(task)]
    if task.kind == "lead_follow_up" and (task.details or {}).get("grade") == "A":
        messages.append(ops.lead_escalated(task))
    return messages


def loan_overdue(task: Task, standing: dict[str, Any]) -> Message:
    """Warn the selling dealer that its customer missed an installment (day 1; 000, 003): with the
    follow-up task it opened, and where the loan stands."""
    body = {"event": "loan.overdue", "dealer_id": task.dealer_id, **standing, "task": task.to_json()}
    return Message(
        f"loan-overdue#{task.dealer_id}#{task.task_id}",
        "topic",
        "staff_tasks",
        json.dumps(body, ensure_ascii=False),
        {"role": task.assignee_role, "dealer_id": task.dealer_id},
        source=task.task_id,
    )
