from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import masking, odometer, tasks

DELIVERED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_delivery_opens_three_tasks_with_contract_deadlines() -> None:
    opened = {t.kind: t for t in tasks.delivery_tasks("LSVAU2180N2123456", DELIVERED, "S-01", "A-07")}
    assert set(opened) == {"handover_submit", "handover_confirm", "delivery_feedback"}
    assert opened["handover_submit"].due_at == DELIVERED + timedelta(hours=24)
    assert opened["handover_confirm"].due_at == DELIVERED + timedelta(hours=24)
    assert opened["delivery_feedback"].due_at == DELIVERED + timedelta(days=3)
    assert (opened["handover_submit"].assignee_id, opened["handover_submit"].assignee_role) == (
        "S-01",
        "sales",
    )
    assert opened["handover_confirm"].assignee_role == "after_sales"
    assert opened["delivery_feedback"].assignee_id == "A-07"


def test_task_ids_are_stable_per_cause_and_distinct_across_causes() -> None:
    first = tasks.delivery_tasks("LSVAU2180N2123456", DELIVERED, "S-01", "A-07")
    again = tasks.delivery_tasks("LSVAU2180N2123456", DELIVERED, "S-02", "A-08")
    resold = tasks.delivery_tasks("LSVAU2180N2123456", DELIVERED + timedelta(days=900), "S-01", "A-07")
    other = tasks.delivery_tasks("LSVAU2180N2123457", DELIVERED, "S-01", "A-07")
    assert [t.task_id for t in first] == [t.task_id for t in again]
    assert not {t.task_id for t in first} & {t.task_id for t in other}
    assert not {t.task_id for t in first} & {t.task_id for t in resold}
    assert first[0].task_id == tasks.delivery_task_id("handover_submit", "LSVAU2180N2123456", DELIVERED)


T0 = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("km", "at", "ok"),
    [
        (12_000, T0 + timedelta(days=1), True),  # exactly 2,000 km in a day
        (12_001, T0 + timedelta(days=1), False),  # more than 2,000 km a day
        (9_999, T0 + timedelta(days=1), False),  # went back at a later time
        (10_050, T0 + timedelta(hours=1), True),
        (10_100, T0 + timedelta(hours=1), False),  # 100 km in an hour is 2,400 km a day
        (5_000, T0 - timedelta(days=3), True),  # older reading: history, not judged
        (10_000, T0, True),  # the same reading again
    ],
)
def test_odometer_plausibility(km: int, at: datetime, ok: bool) -> None:
    assert (odometer.implausibility(10_000, T0, km, at) is None) is ok


def test_first_reading_is_always_plausible() -> None:
    assert odometer.implausibility(None, None, 999_999, T0) is None


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+8613800138000", "+86138****8000"), ("+14155550123", "+1415***0123"), ("", ""), (None, None)],
)
def test_phone_masking_hides_the_middle(phone: str | None, masked: str | None) -> None:
    assert masking.mask_phone(phone) == masked


def test_name_masking_keeps_only_the_first_character() -> None:
    assert masking.mask_name("张伟") == "张*"
    assert masking.mask_name("Li Na") == "L***"
    assert masking.mask_name(None) is None
