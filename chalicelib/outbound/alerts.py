"""Red alerts (DESIGN.md §7): a complaint that signals a safety risk, to QC, sales and after-sales
at once. Each role's subscription filters on the `roles` attribute; quiet hours never apply."""

from __future__ import annotations

import json
from datetime import datetime

from chalicelib import clock
from chalicelib.domain.triage import Triage, excerpt
from chalicelib.store.outbox import Message

ALERT_ROLES = ["qc", "sales", "after_sales"]


def alert_id(dealer_id: str, complaint_id: str) -> str:
    """One alert per complaint, however often it is sent or applied."""
    from chalicelib.domain.tasks import task_id

    return task_id("alert", f"{dealer_id}#{complaint_id}")


def red_alert(
    dealer_id: str,
    complaint_id: str,
    vin: str | None,
    customer_id: str,
    text: str,
    opened_at: datetime,
    triaged: Triage,
) -> Message:
    the_id = alert_id(dealer_id, complaint_id)
    body = {
        "event": "complaint.red_alert",
        "alert_id": the_id,
        "complaint_id": complaint_id,
        "dealer_id": dealer_id,
        "vin": vin,
        "customer_id": customer_id,
        "severity": triaged.severity,
        "matched": [rule.to_json() for rule in triaged.matched],
        "excerpt": excerpt(text),
        "opened_at": clock.iso(opened_at),
    }
    return Message(
        f"red-alert#{the_id}",
        "topic",
        "red_alerts",
        json.dumps(body, ensure_ascii=False),
        {"roles": ALERT_ROLES, "severity": triaged.severity, "dealer_id": dealer_id},
        source=complaint_id,
    )
