"""The weekly KPI board per dealer and the monthly incentives (DESIGN.md §6, §8; seed 002 §4, §6).

Pure: the facts come in, the figures go out. Weeks are ISO weeks and months calendar months in
the dealers' time zone (Monday 00:00 local starts a week). A week without facts for a KPI says
so (`no_data`) instead of inventing a value.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TARGETS: dict[str, float] = {
    "handover_accuracy": 0.98,
    "lead_conversion": 0.30,
    "joint_satisfaction": 90.0,
    "complaint_response_24h": 0.95,
}
KPIS: tuple[str, ...] = tuple(TARGETS)
SATISFACTION_FLOOR = 85.0  # below it, an advisor's commission factor is lowered (002 §4)
SATISFACTION_WEIGHT = 0.10  # the share of commission satisfaction weighs (002 §4)

FIRST_YEAR, LAST_YEAR = 2000, 9998
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Fact:
    """One thing a KPI counts: a confirmed handover, a closed lead, a first follow-up, a survey, a
    complaint (counted in the week its solution was due)."""

    kind: str
    counts_at: datetime
    values: dict[str, Any] = field(default_factory=dict)
    due_at: datetime | None = None
    solution_at: datetime | None = None


def parse_week(text: str) -> date:
    """The Monday of an ISO week `YYYY-Www`; ValueError for anything else (W53 only where it exists)."""
    found = _WEEK.match(text or "")
    if not found:
        raise ValueError("a week is YYYY-Www, e.g. 2026-W48")
    year, week = int(found.group(1)), int(found.group(2))
    _in_range(year)
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise ValueError(f"{text} is not a week of {year}") from exc


def week_of(instant: datetime, tz: str) -> str:
    year, week, _ = instant.astimezone(ZoneInfo(tz)).isocalendar()
    return f"{year}-W{week:02d}"


def previous_week(week: str) -> str:
    monday = parse_week(week) - timedelta(days=7)
    year, number, _ = monday.isocalendar()
    return f"{year}-W{number:02d}"


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)


def week_bounds(week: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of an ISO week in `tz`, as UTC instants."""
    monday = parse_week(week)
    return _local_midnight(monday, tz), _local_midnight(monday + timedelta(days=7), tz)


def parse_month(text: str) -> date:
    found = _MONTH.match(text or "")
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise ValueError("a month is YYYY-MM, e.g. 2026-11")
    _in_range(int(found.group(1)))
    return date(int(found.group(1)), int(found.group(2)), 1)


def _in_range(year: int) -> None:
    """Events before 2000 are refused (DESIGN.md §3): no period before it has data; nor after 9998,
    whose last week would end past the calendar."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"the year is {FIRST_YEAR}-{LAST_YEAR}")


def month_bounds(month: str, tz: str) -> tuple[datetime, datetime]:
    first = parse_month(month)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return _local_midnight(first, tz), _local_midnight(following, tz)


def _ratio(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _figure(name: str, value: float | None, n: int, places: int = 4) -> dict[str, Any]:
    """A KPI judged on its exact value (97.996 % is red against 98 %), shown rounded."""
    target = TARGETS[name]
    status = "no_data" if value is None else ("green" if value >= target else "red")
    return {
        "value": None if value is None else round(value, places),
        "target": target,
        "status": status,
        "n": n,
    }


def complaint_answered(fact: Fact, now: datetime) -> bool | None:
    """True when its solution came within 24 h; False when it came late, or has not come and the
    24 h are over; None while it may still come in time (not counted yet)."""
    if fact.due_at is None:
        return None
    if fact.solution_at is not None:
        return fact.solution_at <= fact.due_at
    return False if fact.due_at <= now else None


def board(facts: list[Fact], now: datetime) -> dict[str, Any]:
    """The week's KPIs from its facts, as of `now` (open complaints past 24 h are misses)."""
    by_kind: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_kind[fact.kind].append(fact)
    handovers = [bool(f.values.get("accurate")) for f in by_kind["handover"]]
    closed = [f.values.get("outcome") for f in by_kind["lead_closed"]]
    scores = [float(f.values["score"]) for f in by_kind["survey"] if "score" in f.values]
    answered = [a for a in (complaint_answered(f, now) for f in by_kind["complaint"]) if a is not None]
    hours = [float(f.values["hours"]) for f in by_kind["follow_up"] if "hours" in f.values]
    return {
        "handover_accuracy": _figure(
            "handover_accuracy", _ratio(sum(handovers), len(handovers)), len(handovers)
        ),
        "lead_conversion": _figure(
            "lead_conversion", _ratio(closed.count("converted"), len(closed)), len(closed)
        ),
        "joint_satisfaction": _figure(
            "joint_satisfaction", statistics.fmean(scores) if scores else None, len(scores), places=2
        ),
        "complaint_response_24h": _figure(
            "complaint_response_24h", _ratio(sum(answered), len(answered)), len(answered)
        ),
        "lead_follow_up_hours": {
            "median": round(statistics.median(hours), 2) if hours else None,
            "n": len(hours),
        },
    }


def red_twice(this_week: dict[str, Any], week_before: dict[str, Any]) -> list[str]:
    """The KPIs red in both weeks (a week without data is not red)."""
    return [k for k in KPIS if this_week[k]["status"] == "red" and week_before[k]["status"] == "red"]


def incentives(
    facts: list[Fact], lowered_factor: float, staff: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """Per advisor: the month's after-sales satisfaction of their customers' vehicles and the
    commission factor it sets (1.0 without data); per specialist: the leads they captured that
    converted. `staff` names the dealer's advisors (`sales`) and specialists (`after_sales`), so
    those without a figure this month are listed too."""
    scores: dict[str, list[float]] = defaultdict(list)
    converted: dict[str, int] = defaultdict(int)
    for advisor in (staff or {}).get("sales", []):
        scores.setdefault(advisor, [])
    for specialist in (staff or {}).get("after_sales", []):
        converted.setdefault(specialist, 0)
    for fact in facts:
        if fact.kind == "survey" and fact.values.get("advisor_id") and "score" in fact.values:
            scores[str(fact.values["advisor_id"])].append(float(fact.values["score"]))
        elif fact.kind == "lead_closed":
            if fact.values.get("advisor_id"):  # an advisor at work this month, surveyed or not
                scores.setdefault(str(fact.values["advisor_id"]), [])
            if fact.values.get("captured_by"):
                captured_by = str(fact.values["captured_by"])
                converted[captured_by] += fact.values.get("outcome") == "converted"
    out: list[dict[str, Any]] = []
    for advisor, found in sorted(scores.items()):
        mean = round(statistics.fmean(found), 2) if found else None
        out.append(
            {
                "staff_id": advisor,
                "role": "sales",
                "after_sales_satisfaction": {"mean": mean, "n": len(found)},
                "commission_factor": lowered_factor
                if mean is not None and mean < SATISFACTION_FLOOR
                else 1.0,
            }
        )
    for specialist, n in sorted(converted.items()):
        out.append({"staff_id": specialist, "role": "after_sales", "converted_leads": n})
    return out
