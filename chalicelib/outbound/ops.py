"""Messages to ops (DESIGN.md §4, §7): vehicles changing hands (every transfer, every conflict), dealer
risk signals, escalated leads and improvement cases."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.store.outbox import Message
from chalicelib.store.records import Tenure
from chalicelib.store.tasks import Task


def _to_ops(outbox_id: str, body: dict[str, Any], kind: str, dealer_id: str, source: str) -> Message:
    return Message(
        outbox_id,
        "topic",
        "ops",
        json.dumps(body, ensure_ascii=False),
        {"kind": kind, "dealer_id": dealer_id},
        source=source,
    )


def vehicle_transferred(vin: str, previous: Tenure, tenure: Tenure, webhook_id: str) -> Message:
    """A later delivery by another dealer took the vehicle over (a resale); earlier tasks are cancelled."""
    body = {
        "event": "vehicle.transferred",
        "vin": vin,
        "from_dealer_id": previous.dealer_id,
        "from_delivered_at": clock.iso(previous.delivered_at),
        "to_dealer_id": tenure.dealer_id,
        "to_delivered_at": clock.iso(tenure.delivered_at),
        "webhook_id": webhook_id,
    }
    outbox_id = f"vehicle-transferred#{vin}#{clock.iso(tenure.delivered_at)}"
    return _to_ops(outbox_id, body, "vehicle_transfer", tenure.dealer_id, webhook_id)


def delivery_conflict(vin: str, current: Tenure, attempted: Tenure, webhook_id: str) -> Message:
    """Another dealer delivered a VIN at or before the current delivery: people must sort it out."""
    body = {
        "event": "delivery.conflict",
        "vin": vin,
        "current_dealer_id": current.dealer_id,
        "current_delivered_at": clock.iso(current.delivered_at),
        "dealer_id": attempted.dealer_id,
        "delivered_at": clock.iso(attempted.delivered_at),
        "webhook_id": webhook_id,
    }
    # Once per conflicting delivery, however many times (and under whichever ids) it is sent.
    outbox_id = f"delivery-conflict#{vin}#{attempted.dealer_id}#{clock.iso(attempted.delivered_at)}"
    return _to_ops(outbox_id, body, "delivery_conflict", attempted.dealer_id, webhook_id)


def risk_signal(
    dealer_id: str, audited_at: datetime, reasons: list[str], figures: dict[str, Any], webhook_id: str
) -> Message:
    """An audit found a shortfall: stock missing, documents incomplete, GPS devices offline."""
    body = {
        "event": "dealer.risk_signal",
        "dealer_id": dealer_id,
        "audited_at": clock.iso(audited_at),
        "reasons": reasons,
        "figures": figures,
        "webhook_id": webhook_id,
    }
    outbox_id = f"dealer-risk#{dealer_id}#{clock.iso(audited_at)}"
    return _to_ops(outbox_id, body, "dealer_risk", dealer_id, webhook_id)


def lead_escalated(task: Task) -> Message:
    """A grade A lead was not followed up within 24 h of its push."""
    body = {
        "event": "lead.escalated",
        "dealer_id": task.dealer_id,
        "lead_id": task.ref,
        "grade": (task.details or {}).get("grade"),
        "task_id": task.task_id,
        "kind": task.kind,
        "ref": task.ref,
        "due_at": clock.iso(task.due_at),
    }
    return _to_ops(
        f"lead-escalated#{task.dealer_id}#{task.task_id}",
        body,
        "lead_escalation",
        task.dealer_id,
        task.task_id,
    )


def improvement_case(
    dealer_id: str, week: str, kpi: str, figures: dict[str, Any], task_ids: list[str]
) -> Message:
    """A KPI was red two weeks running: ops meet within 24 h and plan within 48 h (002 §6)."""
    body = {
        "event": "kpi.improvement_case",
        "dealer_id": dealer_id,
        "week": week,
        "kpi": kpi,
        "figures": figures,
        "task_id": task_ids[0],  # the first clock's (the meeting); `task_ids` names both
        "task_ids": task_ids,
        "kind": "improvement_plan",
        "ref": f"{kpi}@{week}",
    }
    return _to_ops(f"improvement#{dealer_id}#{week}#{kpi}", body, "improvement_case", dealer_id, week)


def payment_suspect(payment: Any, reason: str, expected_minor: int | None, dealer_id: str | None) -> Message:
    """A verified notification that must not be applied: another merchant's, or an amount that is
    not the installment's (possibly forged); it is kept for ops to look at."""
    body = {
        "event": "payment.suspect",
        "gateway": payment.gateway,
        "transaction_id": payment.transaction_id,
        "payment_ref": payment.payment_ref,
        "amount_minor": payment.amount_minor,
        "expected_minor": expected_minor,
        "reason": reason,
        "dealer_id": dealer_id,
    }
    outbox_id = f"payment-suspect#{payment.gateway}#{payment.transaction_id}"
    # SNS refuses an empty attribute: a payment of no known loan is routed as `unknown`.
    return _to_ops(outbox_id, body, "payment_suspect", dealer_id or "unknown", payment.transaction_id)


def payment_ref_conflict(finance_id: str, loan_id: str, dealer_id: str, keys: list[str]) -> Message:
    """A booked loan reuses order numbers another loan has: gateways pay by order number, so its
    payments under them would go to the other loan. Ops sort it out with the finance arm."""
    refs = [key.removeprefix("PAYREF#") for key in keys]
    body = {
        "event": "loan.payment_ref_conflict",
        "finance_id": finance_id,
        "loan_id": loan_id,
        "dealer_id": dealer_id,
        "payment_refs": refs,
    }
    return _to_ops(
        f"payment-ref-conflict#{finance_id}#{loan_id}", body, "payment_ref_conflict", dealer_id, loan_id
    )


def payment_stuck(gateway: str, transaction_id: str, payment_ref: str) -> Message:
    """A verified payment that failed to apply however often it was re-driven: money received and
    not on the loan, for ops to look at (`clm`'s payment record shows the last outcome)."""
    body = {
        "event": "payment.stuck",
        "gateway": gateway,
        "transaction_id": transaction_id,
        "payment_ref": payment_ref,
    }
    return _to_ops(
        f"payment-stuck#{gateway}#{transaction_id}", body, "payment_stuck", "unknown", transaction_id
    )
