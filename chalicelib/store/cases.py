"""Complaints, service leads, dealer feedback, audit risk signals and the facts KPIs count.

Each record sits under the dealer that owns it (`COMPLAINT#<dealer>#<id>` …), so a second dealer
using the same id writes a record of its own. Events about one record may arrive in any order
and more than once, so the record converges on the same state whatever the order: each event
sets only its own fields, a "first" time (the first follow-up, the solution) keeps the earliest
one given and a "latest" one (the last outcome, the satisfaction) the latest, each by a
conditional update. Every change adds one to the record's `rev`; the KPI facts that mirror a
record keep only the newest revision they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.domain.cases import clocks_stopped
from chalicelib.store import bind, conditional_update, put_if_absent
from chalicelib.store.models import (
    ComplaintItem,
    FactItem,
    FeedbackItem,
    FeedbackRefItem,
    KpiRunItem,
    LeadItem,
    RiskSignalItem,
    StaffItem,
)

RECORDS: dict[str, tuple[type[Any], str]] = {
    "complaint": (ComplaintItem, "COMPLAINT"),
    "lead": (LeadItem, "LEAD"),
    "feedback": (FeedbackItem, "FEEDBACK"),
}
Group = tuple[str, dict[str, Any]]
"""Fields set together, judged by the first one (a time): (`followed_up_at`, {its time, by whom})."""


def complaint_pk(dealer_id: str, complaint_id: str) -> str:
    return f"COMPLAINT#{dealer_id}#{complaint_id}"


def lead_pk(dealer_id: str, lead_id: str) -> str:
    return f"LEAD#{dealer_id}#{lead_id}"


def feedback_pk(dealer_id: str, feedback_id: str) -> str:
    return f"FEEDBACK#{dealer_id}#{feedback_id}"


def get_record(kind: str, pk: str) -> Any:
    bind()
    model, sk = RECORDS[kind]
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def open_red_complaints(dealer_id: str, vin: str, noted: Sequence[str]) -> list[str]:
    """Of the red complaints noted open on the dealer's vehicle, the ones still open about it: the
    note is a hint (an opening and a resolution applied at once may leave a stale one), the
    complaint is the truth."""
    still = []
    for complaint_id in sorted(noted):
        record = get_record("complaint", complaint_pk(dealer_id, complaint_id))
        if (
            record is not None
            and record.severity == "red"
            and record.linked_vin == vin
            and record.resolved_at is None
        ):
            still.append(complaint_id)
    return still


def _apply(
    kind: str,
    pk: str,
    values: dict[str, Any],
    earliest: Sequence[Group] = (),
    latest: Sequence[Group] = (),
) -> Any:
    """Set the non-None `values` on the record (creating it); then each `earliest` group where the
    record has none, or a later one; each `latest` group where it has none, or an earlier one.
    Returns the record as it now is.

    The values ride with the first group's update (where it fails, the record exists already and
    an earlier event set them); the last update's answer is the record, unless it failed.
    """
    bind()
    model, sk = RECORDS[kind]
    base = [model.entity.set(model), model.rev.add(1)]
    base += [getattr(model, name).set(value) for name, value in values.items() if value is not None]
    groups = [(group, False) for group in earliest] + [(group, True) for group in latest]
    item = model(pk, sk)
    if not groups:
        item.update(actions=base)
        return item
    current: Any = None
    for position, ((name, fields), later) in enumerate(groups):
        attribute, value = getattr(model, name), fields[name]
        better = (attribute < value) if later else (attribute > value)
        sets = [getattr(model, f).set(v) for f, v in fields.items() if v is not None]
        actions = [*base, *sets] if position == 0 else [*sets, model.rev.add(1)]
        item = model(pk, sk)
        current = item if conditional_update(item, actions, attribute.does_not_exist() | better) else None
    return current if current is not None else get_record(kind, pk)


# --- complaints -----------------------------------------------------------------------------------


def open_complaint(dealer_id: str, fields: dict[str, Any], now: datetime) -> ComplaintItem:
    """Record the complaint as opened (its text, triage, task and alert); steps already recorded stay."""
    pk = complaint_pk(dealer_id, fields["complaint_id"])
    found: ComplaintItem = _apply("complaint", pk, {"dealer_id": dealer_id, **fields, "updated_at": now})
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
    """A step on the complaint: the earliest of each kind counts; the satisfaction of the latest
    resolution that gave one is kept."""
    at_field, by_field = STEP_FIELDS[step]
    latest = (
        [("satisfaction_at", {"satisfaction_at": at, "satisfaction": satisfaction})]
        if satisfaction is not None
        else []
    )
    found: ComplaintItem = _apply(
        "complaint",
        complaint_pk(dealer_id, complaint_id),
        {"complaint_id": complaint_id, "dealer_id": dealer_id, "updated_at": now},
        earliest=[(at_field, {at_field: at, by_field: by})],
        latest=latest,
    )
    return found


# --- leads ----------------------------------------------------------------------------------------


def capture_lead(dealer_id: str, fields: dict[str, Any], now: datetime) -> LeadItem:
    """Record the captured lead; it was pushed now unless an earlier run already pushed it."""
    found: LeadItem = _apply(
        "lead",
        lead_pk(dealer_id, fields["lead_id"]),
        {"dealer_id": dealer_id, **fields, "updated_at": now},
        earliest=[("pushed_at", {"pushed_at": now})],
    )
    return found


def follow_up_lead(
    dealer_id: str, lead_id: str, advisor_id: str, outcome: str, at: datetime, now: datetime
) -> LeadItem:
    """A follow-up: the earliest is the follow-up time; the earliest `converted` or `lost` closes
    the lead; the latest is its outcome now."""
    earliest: list[Group] = [("followed_up_at", {"followed_up_at": at, "followed_up_by": advisor_id})]
    if outcome in ("converted", "lost"):
        earliest.append(("closed_at", {"closed_at": at, "closed_outcome": outcome, "closed_by": advisor_id}))
    found: LeadItem = _apply(
        "lead",
        lead_pk(dealer_id, lead_id),
        {"lead_id": lead_id, "dealer_id": dealer_id, "updated_at": now},
        earliest=earliest,
        latest=[("outcome_at", {"outcome_at": at, "outcome": outcome})],
    )
    return found


# --- dealer feedback ------------------------------------------------------------------------------


def open_feedback(dealer_id: str, fields: dict[str, Any], now: datetime) -> FeedbackItem:
    pk = feedback_pk(dealer_id, fields["feedback_id"])
    found: FeedbackItem = _apply("feedback", pk, {"dealer_id": dealer_id, **fields, "updated_at": now})
    return found


def reply_feedback(dealer_id: str, feedback_id: str, kind: str, at: datetime, now: datetime) -> FeedbackItem:
    """HQ's reply stops a clock at its earliest reply: the first reply's, and a solution's (which is
    a reply too)."""
    found: FeedbackItem = _apply(
        "feedback",
        feedback_pk(dealer_id, feedback_id),
        {"feedback_id": feedback_id, "dealer_id": dealer_id, "updated_at": now},
        earliest=[(f"{name}_at", {f"{name}_at": at}) for name in clocks_stopped(kind)],
    )
    return found


def _ref_pk(feedback_id: str) -> str:
    return f"FEEDBACKID#{feedback_id}"


def feedback_ref(feedback_id: str, dealer_id: str, noted_at: datetime) -> FeedbackRefItem:
    """The note that `dealer_id` opened feedback of this id (HQ's replies name only the id), with
    when its feedback was received."""
    return FeedbackRefItem(
        _ref_pk(feedback_id),
        f"DEALER#{dealer_id}",
        feedback_id=feedback_id,
        dealer_id=dealer_id,
        noted_at=noted_at,
    )


def early_reply(feedback_id: str, reply: dict[str, Any], webhook_id: str) -> FeedbackRefItem:
    """HQ's reply to feedback no dealer has opened (yet): applied when one does."""
    return FeedbackRefItem(_ref_pk(feedback_id), f"REPLY#{webhook_id}", feedback_id=feedback_id, reply=reply)


def drop_early_reply(feedback_id: str, webhook_id: str) -> None:
    bind()
    FeedbackRefItem(_ref_pk(feedback_id), f"REPLY#{webhook_id}").delete()


def feedback_refs(feedback_id: str) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """The dealers that opened feedback of this id, in the order it reached CLM, and HQ's replies
    that came before any did (with the webhook id each is kept under)."""
    bind()
    dealers: list[tuple[str, str]] = []
    replies: list[tuple[str, dict[str, Any]]] = []
    for item in FeedbackRefItem.query(_ref_pk(feedback_id), consistent_read=True):
        if not isinstance(item, FeedbackRefItem):
            continue
        if item.reply:
            replies.append((item.sk.removeprefix("REPLY#"), dict(item.reply)))
        elif item.dealer_id:
            noted = clock.iso(item.noted_at) if item.noted_at else ""
            dealers.append((noted, item.dealer_id))
    return [dealer for _, dealer in sorted(dealers)], replies


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


def _fact_key(dealer_id: str, kind: str, subject: str) -> tuple[str, str]:
    return f"FACT#{dealer_id}", f"{kind}#{subject}"


def _order(counts_at: datetime, kind: str, subject: str) -> str:
    return f"{clock.iso(counts_at)}#{kind}#{subject}"


def fact(dealer_id: str, counts_at: datetime, kind: str, subject: str, values: dict[str, Any]) -> FactItem:
    """A fact one event knows whole (a confirmed handover, a survey), to be written in its batch."""
    return FactItem(
        *_fact_key(dealer_id, kind, subject),
        kind=kind,
        counts_at=counts_at,
        values=values,
        lsi1sk=_order(counts_at, kind, subject),
    )


def mirror_fact(
    dealer_id: str,
    kind: str,
    subject: str,
    rev: int,
    counts_at: datetime,
    values: dict[str, Any] | None = None,
    due_at: datetime | None = None,
    solution_at: datetime | None = None,
) -> bool:
    """The fact a record's revision `rev` implies (a complaint's due and solution times, a lead's
    follow-up): written unless a newer revision's already is. False when it was."""
    bind()
    item = FactItem(*_fact_key(dealer_id, kind, subject))

    def put(attribute: Any, value: Any) -> Any:
        return attribute.remove() if value is None else attribute.set(value)

    actions = [
        FactItem.entity.set(FactItem),
        FactItem.kind.set(kind),
        FactItem.counts_at.set(counts_at),
        FactItem.lsi1sk.set(_order(counts_at, kind, subject)),
        FactItem.rev.set(rev),
        put(FactItem.values, values),
        put(FactItem.due_at, due_at),
        put(FactItem.solution_at, solution_at),
    ]
    return conditional_update(item, actions, FactItem.rev.does_not_exist() | (FactItem.rev < rev))


def facts(dealer_id: str, start: datetime, end: datetime) -> list[FactItem]:
    """The dealer's facts that count in [start, end), in time order (one range of the local index)."""
    bind()
    return [
        item
        for item in FactItem.due_order.query(
            f"FACT#{dealer_id}",
            FactItem.lsi1sk.between(clock.iso(start), clock.iso(end)),
            consistent_read=True,
        )
        if isinstance(item, FactItem) and item.counts_at < end
    ]


def staff_member(dealer_id: str, role: str, staff_id: str) -> StaffItem:
    """The note that `staff_id` works for the dealer in `role` (to be written in an event's batch)."""
    return StaffItem(f"DEALER#{dealer_id}", f"STAFF#{role}#{staff_id}", role=role, staff_id=staff_id)


def staff(dealer_id: str) -> dict[str, list[str]]:
    """The dealer's staff events have named, by role."""
    bind()
    found: dict[str, list[str]] = {}
    for item in StaffItem.query(
        f"DEALER#{dealer_id}", StaffItem.sk.startswith("STAFF#"), consistent_read=True
    ):
        if isinstance(item, StaffItem):
            found.setdefault(item.role, []).append(item.staff_id)
    return found


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
