"""Complaints, service leads, dealer feedback, audit risk signals and the facts KPIs count.

Each record sits under the dealer that owns it (`COMPLAINT#<dealer>#<id>` …), so a second dealer
using the same id writes a record of its own. Events about one record may arrive in any order
and more than once: each sets only its own fields, and a "first" time (the first follow-up, the
solution) is set only where none is, so the record converges whatever the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain.cases import clocks_stopped
from chalicelib.store import bind, put_if_absent
from chalicelib.store.models import (
    ComplaintItem,
    FactItem,
    FeedbackItem,
    FeedbackRefItem,
    KpiRunItem,
    LeadItem,
    RiskSignalItem,
)

RECORD_SK = {"complaint": "COMPLAINT", "lead": "LEAD", "feedback": "FEEDBACK"}


def complaint_pk(dealer_id: str, complaint_id: str) -> str:
    return f"COMPLAINT#{dealer_id}#{complaint_id}"


def lead_pk(dealer_id: str, lead_id: str) -> str:
    return f"LEAD#{dealer_id}#{lead_id}"


def feedback_pk(dealer_id: str, feedback_id: str) -> str:
    return f"FEEDBACK#{dealer_id}#{feedback_id}"


def _update(item: Any, values: dict[str, Any], first: Iterable[str] = ()) -> Any:
    """Set the non-None `values` on the record (creating it); those named in `first` only where
    the record has none yet. Returns the record as it now is."""
    bind()
    model = type(item)
    keep = set(first)
    actions = [model.entity.set(model)]
    for name, value in values.items():
        if value is None:
            continue
        attribute = getattr(model, name)
        actions.append(attribute.set(attribute | value) if name in keep else attribute.set(value))
    item.update(actions=actions)
    return item


# --- complaints -----------------------------------------------------------------------------------


def open_complaint(dealer_id: str, fields: dict[str, Any], now: datetime) -> ComplaintItem:
    """Record the complaint as opened (its text, triage, task and alert); steps already recorded stay."""
    complaint_id = fields["complaint_id"]
    item = ComplaintItem(complaint_pk(dealer_id, complaint_id), "COMPLAINT")
    found: ComplaintItem = _update(item, {"dealer_id": dealer_id, **fields, "updated_at": now})
    return found


STEP_FIELDS = {
    "complaint.acknowledged": ("acknowledged_at", "acknowledged_by"),
    "complaint.solution_proposed": ("solution_at", "solution_by"),
    "complaint.resolved": ("resolved_at", "resolved_by"),
}


def complaint_step(
    dealer_id: str,
    complaint_id: str,
    step: str,
    by: str,
    at: datetime,
    satisfaction: int | None,
    now: datetime,
) -> ComplaintItem:
    """A step on the complaint: the first of each kind counts; a resolution's satisfaction is kept
    (the latest one given)."""
    at_field, by_field = STEP_FIELDS[step]
    item = ComplaintItem(complaint_pk(dealer_id, complaint_id), "COMPLAINT")
    values = {
        "complaint_id": complaint_id,
        "dealer_id": dealer_id,
        at_field: at,
        by_field: by,
        "satisfaction": satisfaction,
        "updated_at": now,
    }
    found: ComplaintItem = _update(item, values, first=(at_field, by_field))
    return found


def get_record(kind: str, pk: str) -> Any:
    bind()
    model = {"complaint": ComplaintItem, "lead": LeadItem, "feedback": FeedbackItem}[kind]
    try:
        return model.get(pk, RECORD_SK[kind], consistent_read=True)
    except model.DoesNotExist:
        return None


# --- leads ----------------------------------------------------------------------------------------


def capture_lead(dealer_id: str, fields: dict[str, Any], now: datetime) -> LeadItem:
    """Record the captured lead; it was pushed now unless an earlier run already pushed it."""
    item = LeadItem(lead_pk(dealer_id, fields["lead_id"]), "LEAD")
    found: LeadItem = _update(
        item, {"dealer_id": dealer_id, **fields, "pushed_at": now, "updated_at": now}, first=("pushed_at",)
    )
    return found


def follow_up_lead(
    dealer_id: str, lead_id: str, advisor_id: str, outcome: str, at: datetime, now: datetime
) -> LeadItem:
    """A follow-up: the first one is the follow-up time; the first `converted` or `lost` closes it."""
    item = LeadItem(lead_pk(dealer_id, lead_id), "LEAD")
    closing = outcome in ("converted", "lost")
    values: dict[str, Any] = {
        "lead_id": lead_id,
        "dealer_id": dealer_id,
        "followed_up_at": at,
        "followed_up_by": advisor_id,
        "outcome": outcome,
        "updated_at": now,
    }
    if closing:
        values.update(closed_at=at, closed_outcome=outcome, closed_by=advisor_id)
    first = ("followed_up_at", "followed_up_by", "closed_at", "closed_outcome", "closed_by")
    found: LeadItem = _update(item, values, first=first)
    return found


# --- dealer feedback ------------------------------------------------------------------------------


def open_feedback(dealer_id: str, fields: dict[str, Any], now: datetime) -> FeedbackItem:
    item = FeedbackItem(feedback_pk(dealer_id, fields["feedback_id"]), "FEEDBACK")
    found: FeedbackItem = _update(item, {"dealer_id": dealer_id, **fields, "updated_at": now})
    return found


def reply_feedback(dealer_id: str, feedback_id: str, kind: str, at: datetime, now: datetime) -> FeedbackItem:
    """HQ's reply stops a clock: the first reply's, and a solution's (which is a reply too)."""
    item = FeedbackItem(feedback_pk(dealer_id, feedback_id), "FEEDBACK")
    values: dict[str, Any] = {"feedback_id": feedback_id, "dealer_id": dealer_id, "updated_at": now}
    values.update({f"{clock_name}_at": at for clock_name in clocks_stopped(kind)})
    found: FeedbackItem = _update(item, values, first=("first_reply_at", "solution_at"))
    return found


def _ref_pk(feedback_id: str) -> str:
    return f"FEEDBACKID#{feedback_id}"


def feedback_ref(feedback_id: str, dealer_id: str) -> FeedbackRefItem:
    """The note that `dealer_id` opened feedback of this id (HQ's replies name only the id)."""
    return FeedbackRefItem(
        _ref_pk(feedback_id), f"DEALER#{dealer_id}", feedback_id=feedback_id, dealer_id=dealer_id
    )


def early_reply(feedback_id: str, reply: dict[str, Any], webhook_id: str) -> FeedbackRefItem:
    """HQ's reply to feedback no dealer has opened (yet): applied when one does."""
    return FeedbackRefItem(_ref_pk(feedback_id), f"REPLY#{webhook_id}", feedback_id=feedback_id, reply=reply)


def drop_early_reply(feedback_id: str, webhook_id: str) -> None:
    bind()
    FeedbackRefItem(_ref_pk(feedback_id), f"REPLY#{webhook_id}").delete()


def feedback_refs(feedback_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The dealers that opened feedback of this id, and HQ's replies that came before them."""
    bind()
    dealers: list[str] = []
    replies: list[dict[str, Any]] = []
    for item in FeedbackRefItem.query(_ref_pk(feedback_id), consistent_read=True):
        if not isinstance(item, FeedbackRefItem):
            continue
        if item.reply:
            replies.append(dict(item.reply))
        elif item.dealer_id:
            dealers.append(item.dealer_id)
    return sorted(dealers), replies


# --- audits ---------------------------------------------------------------------------------------


def risk_signal(
    dealer_id: str, audited_at: datetime, reasons: list[str], figures: dict[str, Any], webhook_id: str
) -> RiskSignalItem:
    return RiskSignalItem(
        f"DEALER#{dealer_id}",
        f"RISK#{clock.iso(audited_at)}",
        dealer_id=dealer_id,
        audited_at=audited_at,
        reasons=reasons,
        figures=figures,
        webhook_id=webhook_id,
    )


def risk_signals(dealer_id: str, start: datetime, end: datetime) -> list[RiskSignalItem]:
    """The dealer's risk signals from audits in [start, end)."""
    bind()
    return [
        item
        for item in RiskSignalItem.query(
            f"DEALER#{dealer_id}",
            RiskSignalItem.sk.between(f"RISK#{clock.iso(start)}", f"RISK#{clock.iso(end)}"),
            consistent_read=True,
        )
        if isinstance(item, RiskSignalItem) and item.audited_at < end
    ]


# --- facts that KPIs and incentives count ---------------------------------------------------------


def _fact_key(dealer_id: str, counts_at: datetime, kind: str, subject: str) -> tuple[str, str]:
    return f"FACT#{dealer_id}", f"{clock.iso(counts_at)}#{kind}#{subject}"


def fact(dealer_id: str, counts_at: datetime, kind: str, subject: str, values: dict[str, Any]) -> FactItem:
    """A fact one event knows whole (a confirmed handover, a survey), to be written in its batch."""
    return FactItem(*_fact_key(dealer_id, counts_at, kind, subject), kind=kind, values=values)


def update_fact(
    dealer_id: str,
    counts_at: datetime,
    kind: str,
    subject: str,
    **attributes: datetime | dict[str, Any] | None,
) -> None:
    """A fact several events know parts of (a complaint's due and solution times): each sets its own."""
    item = FactItem(*_fact_key(dealer_id, counts_at, kind, subject))
    _update(item, {"kind": kind, **attributes})


def facts(dealer_id: str, start: datetime, end: datetime) -> list[FactItem]:
    """The dealer's facts that count in [start, end), in time order."""
    bind()
    return [
        item
        for item in FactItem.query(
            f"FACT#{dealer_id}",
            FactItem.sk.between(clock.iso(start), clock.iso(end)),
            consistent_read=True,
        )
        if isinstance(item, FactItem) and item.sk < clock.iso(end)
    ]


def judged(dealer_id: str, week: str) -> bool:
    """Whether the weekly KPI job has judged this dealer's week."""
    bind()
    try:
        KpiRunItem.get(f"DEALER#{dealer_id}", f"KPIRUN#{week}", consistent_read=True)
    except KpiRunItem.DoesNotExist:
        return False
    return True


def mark_judged(dealer_id: str, week: str, now: datetime) -> bool:
    """The weekly KPI job is done with this dealer's week (its work first, the mark last)."""
    return put_if_absent(KpiRunItem(f"DEALER#{dealer_id}", f"KPIRUN#{week}", ran_at=now))
