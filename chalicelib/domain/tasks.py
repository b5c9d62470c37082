"""Staff tasks: who does what by when (DESIGN.md §6, §8)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

TaskKind = Literal[
    "handover_submit",
    "handover_confirm",
    "delivery_feedback",
    "first_service_care_call",
    "first_service_booking",
    "maintenance_care_call",
    "maintenance_booking",
    "lead_follow_up",
    "service_return_visit",
    "complaint_joint_solution",
    "overdue_follow_up",
    "collections",
    "dealer_feedback_reply",
    "improvement_plan",
    "insurance_renewal",
]
Status = Literal["open", "overdue", "done", "cancelled"]
STATUSES: tuple[Status, ...] = ("open", "overdue", "done", "cancelled")
Role = Literal["sales", "after_sales", "qc", "collections", "ops", "hq"]
DEALER_ROLES: frozenset[str] = frozenset({"sales", "after_sales", "qc"})
"""The roles of a dealer's own staff: a dealer's key completes their tasks, and only theirs."""
HQ_ROLES: frozenset[str] = frozenset({"hq", "collections", "ops"})
"""HQ's roles: the `hq` key completes their tasks (listed under the dealer they concern)."""


def may_complete(partner_kind: str, assignee_role: str) -> bool:
    """Whether a partner of `partner_kind` may complete a task of `assignee_role` (DESIGN.md §8)."""
    if partner_kind == "dealer":
        return assignee_role in DEALER_ROLES
    if partner_kind == "hq":
        return assignee_role in HQ_ROLES
    return False


HANDOVER_WINDOW = timedelta(hours=24)  # "1+1" handover form, 002 §2
FIRST_USE_FEEDBACK_WINDOW = timedelta(days=3)  # specialist's first-use feedback, 002 §3


@dataclass(frozen=True)
class NewTask:
    task_id: str
    kind: TaskKind
    assignee_id: str | None  # None: the role's, for the dealer to assign
    assignee_role: Role
    due_at: datetime
    vin: str | None = None
    ref: str | None = None
    details: dict[str, Any] | None = None


def task_id(kind: str, subject: str) -> str:
    """Deterministic id: the same cause always names the same task, so re-processing never doubles it."""
    digest = hashlib.sha256(f"{kind}|{subject}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


def delivery_subject(vin: str, delivered_at: datetime) -> str:
    """What a delivery's tasks are about: this VIN's delivery at this instant (a resold car gets new ones)."""
    return f"{vin}@{delivered_at.timestamp():.0f}"


def delivery_task_id(kind: TaskKind, vin: str, delivered_at: datetime) -> str:
    return task_id(kind, delivery_subject(vin, delivered_at))


def delivery_tasks(vin: str, delivered_at: datetime, advisor_id: str, specialist_id: str) -> list[NewTask]:
    """The three tasks a delivery opens: handover submit/confirm (24 h) and first-use feedback (3 days).

    The advisor fills in the handover form; the after-sales specialist confirms it and later
    sends the first-use feedback back to the advisor.
    """
    handover_due = delivered_at + HANDOVER_WINDOW
    return [
        NewTask(
            delivery_task_id("handover_submit", vin, delivered_at),
            "handover_submit",
            advisor_id,
            "sales",
            handover_due,
            vin,
        ),
        NewTask(
            delivery_task_id("handover_confirm", vin, delivered_at),
            "handover_confirm",
            specialist_id,
            "after_sales",
            handover_due,
            vin,
        ),
        NewTask(
            delivery_task_id("delivery_feedback", vin, delivered_at),
            "delivery_feedback",
            specialist_id,
            "after_sales",
            delivered_at + FIRST_USE_FEEDBACK_WINDOW,
            vin,
        ),
    ]


CLOSED_BY_EVENT: dict[str, TaskKind] = {
    "handover.submitted": "handover_submit",
    "handover.confirmed": "handover_confirm",
    "delivery.feedback_submitted": "delivery_feedback",
}
