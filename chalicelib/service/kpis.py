"""The weekly KPI board and the monthly incentives of a dealer, and the weekly job that judges
the week just ended (DESIGN.md §6, §8; seed 002 §4, §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib import clock, errors
from chalicelib.domain import cases as case_rules
from chalicelib.domain import kpis as rules
from chalicelib.observability import count, logger
from chalicelib.outbound import ops
from chalicelib.service.tasks import open_task
from chalicelib.settings import get_settings
from chalicelib.store import cases, outbox, write_all

METRIC_NAMES = {
    "handover_accuracy": ("KpiHandoverAccuracy", "Percent", 100),
    "lead_conversion": ("KpiLeadConversion", "Percent", 100),
    "joint_satisfaction": ("KpiJointSatisfaction", "None", 1),
    "complaint_response_24h": ("KpiComplaintResponse24h", "Percent", 100),
}


def _facts(dealer_id: str, start: datetime, end: datetime) -> list[rules.Fact]:
    return [
        rules.Fact(item.kind, item.counts_at, dict(item.values or {}), item.due_at, item.solution_at)
        for item in cases.facts(dealer_id, start, end)
    ]


def _week(text: str | None, now: datetime) -> str:
    tz = get_settings().local_tz
    if not text:
        return rules.week_of(now, tz)
    try:
        rules.parse_week(text)
    except ValueError as exc:
        raise errors.BadRequest(str(exc), errors=[{"field": "week", "message": str(exc)}]) from exc
    return text


def board(dealer_id: str, week: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The dealer's KPIs of an ISO week (default: the current one), as of now."""
    at = now or clock.now()
    chosen = _week(week, at)
    start, end = rules.week_bounds(chosen, get_settings().local_tz)
    figures = rules.board(_facts(dealer_id, start, end), at)
    risks = [
        {"audited_at": clock.iso(r.audited_at), "reasons": list(r.reasons)}
        for r in cases.risk_signals(dealer_id, start, end)
    ]
    return {
        "dealer_id": dealer_id,
        "week": chosen,
        "from": clock.iso(start),
        "to": clock.iso(end),
        "as_of": clock.iso(at),
        **figures,
        "risk_signals": risks,
    }


def incentives(dealer_id: str, month: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Each advisor's after-sales satisfaction and commission factor, each specialist's converted
    leads, over a calendar month (default: the current one)."""
    at = now or clock.now()
    tz = get_settings().local_tz
    chosen = month or at.astimezone(ZoneInfo(tz)).strftime("%Y-%m")
    try:
        start, end = rules.month_bounds(chosen, tz)
    except ValueError as exc:
        raise errors.BadRequest(str(exc), errors=[{"field": "month", "message": str(exc)}]) from exc
    staff = rules.incentives(
        _facts(dealer_id, start, end), get_settings().commission_lowered_factor, cases.staff(dealer_id)
    )
    return {"dealer_id": dealer_id, "month": chosen, "items": staff}


@dataclass
class Judged:
    dealers: int = 0
    improvement_cases: int = 0


def judge_last_week(now: datetime, dealer_ids: list[str]) -> Judged:
    """Once per dealer and week, for the ISO week before `now`'s: publish its KPIs as metrics, and
    open an improvement case for each KPI red in it and the week before. Safe to run again: what
    it opens has ids derived from dealer, week and KPI; the week is marked judged last."""
    tz = get_settings().local_tz
    week = rules.previous_week(rules.week_of(now, tz))
    before = rules.previous_week(week)
    out = Judged()
    for dealer_id in dealer_ids:
        if cases.judged(dealer_id, week):
            continue
        this_week = board(dealer_id, week, now)
        week_before = board(dealer_id, before, now)
        for name, (metric, unit, scale) in METRIC_NAMES.items():
            value = this_week[name]["value"]
            if value is not None:
                count(metric, value * scale, unit=unit, dealer_id=dealer_id)
        for kpi in rules.red_twice(this_week, week_before):
            opened = case_rules.improvement_tasks(dealer_id, week, kpi, now)
            announced: list[Any] = []
            for task in opened:
                open_task(dealer_id, task, now, announced)
            write_all(announced)
            figures = {"this_week": this_week[kpi], "week_before": week_before[kpi], "week_before_id": before}
            if outbox.put(
                ops.improvement_case(dealer_id, week, kpi, figures, [t.task_id for t in opened]), now
            ):
                out.improvement_cases += 1
                logger.warning(
                    "KPI red two weeks running", extra={"dealer_id": dealer_id, "kpi": kpi, "week": week}
                )
        cases.mark_judged(dealer_id, week, now)
        out.dealers += 1
    return out
