"""Loan standing from its schedule (DESIGN.md §6, §8; seeds 000, 003). Pure: no AWS.

Date-only deadlines count in the customer's time zone: an installment due on a date is missed
from 00:00 local the day after, and "days past due" counts local days since the oldest unpaid
installment's due date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

BUCKETS = ((1, 30, "1-30"), (31, 60, "31-60"), (61, 90, "61-90"))
COLLECTIONS_AFTER_DAYS = 30  # a collections task for HQ at 30 days past due (000, 003)
CARE_HOLD_DAYS = 30  # no care or marketing SMS to a customer this many days past due
OVERDUE_SMS_STAGE = 1  # the customer's SMS and the dealer's warning: the day after a missed due date
OVERDUE_STAGES = (OVERDUE_SMS_STAGE, COLLECTIONS_AFTER_DAYS, 31, 61, 91)
"""The days past due at which a missed installment's overdue work is looked at again: the SMS and
the dealer's follow-up, the collections task, then each new DPD bucket."""


@dataclass(frozen=True)
class Installment:
    seq: int
    due_date: date
    amount_minor: int
    payment_ref: str
    paid: bool = False


def installments(schedule: list[dict[str, Any]], paid: Iterable[int] = ()) -> list[Installment]:
    """The schedule as stored (JSON) in due order; `paid`: the seqs paid."""
    done = set(paid)
    out = [
        Installment(
            int(entry["seq"]),
            date.fromisoformat(entry["due_date"]),
            int(entry["amount_minor"]),
            str(entry["payment_ref"]),
            int(entry["seq"]) in done,
        )
        for entry in schedule
    ]
    return sorted(out, key=lambda i: (i.due_date, i.seq))


def local_day(instant: datetime, tz: str) -> date:
    return instant.astimezone(ZoneInfo(tz)).date()


def days_past_due(schedule: list[Installment], today: date) -> int:
    """Local days since the oldest unpaid installment fell due (0 when none is late)."""
    late = [i for i in schedule if not i.paid and i.due_date < today]
    return (today - late[0].due_date).days if late else 0


def dpd_bucket(days: int) -> str | None:
    """The delinquency bucket of `days` past due: 1-30, 31-60, 61-90, 90+ (None when current)."""
    if days <= 0:
        return None
    for low, high, name in BUCKETS:
        if low <= days <= high:
            return name
    return "90+"


def next_due(schedule: list[Installment]) -> Installment | None:
    """The oldest unpaid installment (late or not)."""
    return next((i for i in schedule if not i.paid), None)


def outstanding_minor(schedule: list[Installment]) -> int:
    return sum(i.amount_minor for i in schedule if not i.paid)


def status(schedule: list[Installment], today: date, settled: bool) -> str:
    """`settled` (settled, or nothing left to pay), `overdue` (an installment late), else `current`."""
    if settled or next_due(schedule) is None:
        return "settled"
    return "overdue" if days_past_due(schedule, today) > 0 else "current"


def next_stage(stage: int) -> int | None:
    """The stage after `stage` (None after the last)."""
    later = [s for s in OVERDUE_STAGES if s > stage]
    return later[0] if later else None


def stage_day(due_date: date, stage: int) -> date:
    """The local day an installment due on `due_date` is `stage` days past due."""
    return due_date + timedelta(days=stage)


def installment(schedule: list[Installment], seq: int) -> Installment | None:
    return next((i for i in schedule if i.seq == seq), None)


def care_held(days: int) -> bool:
    """Whether a customer this many days past due gets no care or marketing SMS (a birthday
    greeting to someone the collections desk is calling would be tone-deaf)."""
    return days >= CARE_HOLD_DAYS
