"""Loan standing from its schedule: days past due in local days, DPD buckets, status (DESIGN.md §6)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from chalicelib.domain import loans


def schedule(*paid: int) -> list[loans.Installment]:
    raw = [
        {"seq": n, "due_date": f"2026-{n:02d}-28", "amount_minor": 350000, "payment_ref": f"P{n:02d}"}
        for n in range(1, 4)
    ]
    return loans.installments(raw, paid)


def test_days_past_due_count_from_the_oldest_unpaid_installment() -> None:
    assert loans.days_past_due(schedule(), date(2026, 1, 28)) == 0  # the due date itself: not late
    assert loans.days_past_due(schedule(), date(2026, 1, 29)) == 1
    assert loans.days_past_due(schedule(), date(2026, 3, 1)) == 32  # Jan 28 is the oldest unpaid
    assert loans.days_past_due(schedule(1), date(2026, 3, 1)) == 1  # Feb 28 now
    assert loans.days_past_due(schedule(1, 2, 3), date(2027, 1, 1)) == 0


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (0, None),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "90+"),
    ],
)
def test_dpd_buckets_at_their_edges(days: int, bucket: str | None) -> None:
    assert loans.dpd_bucket(days) == bucket


def test_status_outstanding_and_next_due() -> None:
    assert loans.status(schedule(), date(2026, 1, 28), settled=False) == "current"
    assert loans.status(schedule(), date(2026, 1, 29), settled=False) == "overdue"
    assert loans.status(schedule(1, 2, 3), date(2026, 1, 29), settled=False) == "settled"
    assert loans.status(schedule(), date(2026, 1, 29), settled=True) == "settled"
    assert loans.outstanding_minor(schedule(1)) == 700000
    found = loans.next_due(schedule(1))
    assert found is not None and found.seq == 2


def test_a_due_date_counts_in_the_customer_s_time_zone() -> None:
    late_evening_utc = datetime(2026, 1, 28, 16, 30, tzinfo=UTC)  # 00:30 on Jan 29 in Shanghai
    today = loans.local_day(late_evening_utc, "Asia/Shanghai")
    assert today == date(2026, 1, 29)
    assert loans.days_past_due(schedule(), today) == 1
