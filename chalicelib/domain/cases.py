"""Complaints, leads, dealer feedback and audits: the tasks they open and the signals they raise
(DESIGN.md §6; seeds 002 §3, §5 and 000). Pure: no AWS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.tasks import NewTask, task_id

JOINT_SOLUTION_WINDOW = timedelta(hours=24)  # complaint: joint solution, 002 §3
LEAD_FOLLOW_UP_WINDOW = timedelta(hours=24)  # lead: the advisor's follow-up after the push, 002 §3
FEEDBACK_CLOCKS = {"first_reply": timedelta(hours=24), "solution": timedelta(hours=72)}  # 000
IMPROVEMENT_CLOCKS = {"meeting": timedelta(hours=24), "plan": timedelta(hours=48)}  # 002 §6
GPS_ONLINE_MIN = 0.95  # 000: below it, the dealer's GPS devices are a risk


@dataclass(frozen=True)
class Staff:
    """Who works a customer's case: the vehicle's advisor and specialist when the vehicle is the
    dealer's own; otherwise nobody yet (the dealer's sales role assigns it)."""

    advisor_id: str | None = None
    specialist_id: str | None = None


def joint_solution_task(
    dealer_id: str, complaint_id: str, opened_at: datetime, vin: str | None, staff: Staff, severity: str
) -> NewTask:
    """The advisor is the single window to the customer; the specialist and QC work it with them."""
    return NewTask(
        joint_solution_task_id(dealer_id, complaint_id),
        "complaint_joint_solution",
        staff.advisor_id,
        "sales",
        opened_at + JOINT_SOLUTION_WINDOW,
        vin,
        complaint_id,
        {
            "involves": [
                {"role": "after_sales", "id": staff.specialist_id},
                {"role": "qc", "id": None},
            ],
            "severity": severity,
        },
    )


def lead_task(
    dealer_id: str, lead_id: str, pushed_at: datetime, vin: str | None, staff: Staff, grade: str, kind: str
) -> NewTask:
    return NewTask(
        lead_task_id(dealer_id, lead_id),
        "lead_follow_up",
        staff.advisor_id,
        "sales",
        pushed_at + LEAD_FOLLOW_UP_WINDOW,
        vin,
        lead_id,
        {"grade": grade, "lead_kind": kind},
    )


def joint_solution_task_id(dealer_id: str, complaint_id: str) -> str:
    return task_id("complaint_joint_solution", f"{dealer_id}#{complaint_id}")


def lead_task_id(dealer_id: str, lead_id: str) -> str:
    return task_id("lead_follow_up", f"{dealer_id}#{lead_id}")


def feedback_tasks(dealer_id: str, feedback_id: str, opened_at: datetime) -> list[NewTask]:
    """HQ's two clocks on a dealer's feedback, one task each: first reply (24 h), solution (72 h)."""
    return [
        NewTask(
            feedback_task_id(dealer_id, feedback_id, clock_name),
            "dealer_feedback_reply",
            None,
            "hq",
            opened_at + window,
            None,
            feedback_id,
            {"clock": clock_name},
        )
        for clock_name, window in FEEDBACK_CLOCKS.items()
    ]


def feedback_task_id(dealer_id: str, feedback_id: str, clock_name: str) -> str:
    return task_id("dealer_feedback_reply", f"{dealer_id}#{feedback_id}#{clock_name}")


def clocks_stopped(kind: str) -> tuple[str, ...]:
    """HQ's reply of `kind` stops these clocks: a solution answers the first reply too."""
    return ("first_reply", "solution") if kind == "solution" else ("first_reply",)


def improvement_tasks(dealer_id: str, week: str, kpi: str, opened_at: datetime) -> list[NewTask]:
    """Ops' improvement case on a KPI red two weeks running: meeting in 24 h, plan in 48 h."""
    return [
        NewTask(
            task_id("improvement_plan", f"{dealer_id}#{week}#{kpi}#{clock_name}"),
            "improvement_plan",
            None,
            "ops",
            opened_at + window,
            None,
            f"{kpi}@{week}",
            {"clock": clock_name, "kpi": kpi, "week": week},
        )
        for clock_name, window in IMPROVEMENT_CLOCKS.items()
    ]


def audit_risks(
    inventory_expected: int, inventory_found: int, documents_complete: bool, gps_online_ratio: float
) -> list[str]:
    """Why an audit is a risk signal (none: it is not)."""
    reasons = []
    if inventory_found < inventory_expected:
        reasons.append("inventory_short")
    if not documents_complete:
        reasons.append("documents_incomplete")
    if gps_online_ratio < GPS_ONLINE_MIN:
        reasons.append("gps_offline")
    return reasons


def complaint_status(record: Any) -> str:
    """Where a complaint stands, from the steps recorded on it."""
    if getattr(record, "resolved_at", None):
        return "resolved"
    if getattr(record, "solution_at", None):
        return "solution_proposed"
    if getattr(record, "acknowledged_at", None):
        return "acknowledged"
    return "open"
