"""Pure reminder rules: due dates, thresholds, quiet hours, date-only deadlines, birthdays, ids, pacing."""

from __future__ import annotations

import itertools
import string
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chalicelib.domain import reminders as r

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CST = "+08:00"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2024-01-31T10:00:00+08:00", 1, "2024-02-29T10:00:00+08:00"),  # leap year: clamped to the 29th
        ("2023-01-31T10:00:00+08:00", 1, "2023-02-28T10:00:00+08:00"),
        ("2023-11-30T09:15:00+08:00", 3, "2024-02-29T09:15:00+08:00"),
        ("2023-11-20T10:00:00+08:00", 3, "2024-02-20T10:00:00+08:00"),
        ("2024-12-15T23:59:00+08:00", 1, "2025-01-15T23:59:00+08:00"),  # across the year
        ("2024-08-31T00:00:00+00:00", 12, "2025-08-31T00:00:00+00:00"),
        ("2024-02-29T12:00:00+08:00", 12, "2025-02-28T12:00:00+08:00"),
        ("2024-03-31T08:00:00+08:00", 0, "2024-03-31T08:00:00+08:00"),
    ],
)
def test_calendar_months_clamp_to_the_months_end_and_keep_the_time_and_offset(
    start: str, months: int, expected: str
) -> None:
    moved = r.add_months(at(start), months)
    assert moved == at(expected) and moved.utcoffset() == at(expected).utcoffset()


def test_the_first_service_is_reminded_7_days_before_its_date_or_500_km_before_its_km() -> None:
    due = r.first_service_due(at("2023-11-20T10:00:00+08:00"), 3, 5000)
    assert due.due_at == at("2024-02-20T10:00:00+08:00")
    assert due.trigger_at == at("2024-02-13T10:00:00+08:00")
    assert (due.due_km, due.trigger_km) == (5000, 4500)
    assert not due.reached_by(4499) and due.reached_by(4500) and due.reached_by(9000)
    assert not due.reached_by(None)


def test_after_a_service_the_next_is_due_at_its_odometer_and_date_plus_the_plan() -> None:
    due = r.next_service_due("RO-1", at("2024-02-18T16:20:00+08:00"), 4870, 12, 10000)
    assert due.kind == "maintenance"
    assert due.due_at == at("2025-02-18T16:20:00+08:00") and due.due_km == 14870
    assert due.trigger_km == 14370 and due.trigger_at == at("2025-02-11T16:20:00+08:00")
    assert r.next_service_due("RO-1", due.due_at, 0, 1, 10).cycle == due.cycle  # the cycle names the service
    assert r.restarts_cycle("first_service") and r.restarts_cycle("maintenance")
    assert not r.restarts_cycle("repair")


def test_a_tiny_plan_never_puts_the_km_threshold_below_zero() -> None:
    assert r.first_service_due(at("2024-01-01T00:00:00+00:00"), 1, 300).trigger_km == 0


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-03-10T20:59:59", "2026-03-10T20:59:59"),  # before 21:00: at once
        ("2026-03-10T21:00:00", "2026-03-11T08:00:00"),  # 21:00 is quiet: the next morning
        ("2026-03-10T23:30:00", "2026-03-11T08:00:00"),
        ("2026-03-11T00:00:00", "2026-03-11T08:00:00"),  # after midnight: the same morning
        ("2026-03-11T07:59:59", "2026-03-11T08:00:00"),
        ("2026-03-11T08:00:00", "2026-03-11T08:00:00"),  # 08:00 is not quiet
        ("2026-12-31T22:00:00", "2027-01-01T08:00:00"),  # across the year
    ],
)
@pytest.mark.parametrize("tz", [SHANGHAI, BERLIN, NEW_YORK])
def test_quiet_hours_defer_to_8_in_the_customers_zone(local: str, expected: str, tz: ZoneInfo) -> None:
    instant = datetime.fromisoformat(local).replace(tzinfo=tz).astimezone(UTC)  # what the sweep holds
    sendable = r.sendable_at(instant, tz)
    assert sendable == datetime.fromisoformat(expected).replace(tzinfo=tz)
    assert r.in_quiet_hours(instant, tz) == (sendable != instant)


def test_quiet_hours_are_the_customers_not_the_servers() -> None:
    instant = at("2026-03-10T13:30:00+00:00")  # 21:30 in Shanghai, 14:30 in Berlin
    assert r.sendable_at(instant, SHANGHAI) == at("2026-03-11T08:00:00+08:00")
    assert r.sendable_at(instant, BERLIN) == instant


def test_quiet_hours_across_a_daylight_saving_change() -> None:
    # New York springs forward on 2026-03-08: 08:00 that morning is 12:00 UTC, not 13:00.
    night = datetime(2026, 3, 7, 23, 0, tzinfo=NEW_YORK)
    assert r.sendable_at(night, NEW_YORK).astimezone(UTC) == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_date_only_deadlines_count_from_local_midnight() -> None:
    trigger = r.insurance_trigger(date(2027, 1, 20), 30, SHANGHAI)
    assert trigger == at("2026-12-21T00:00:00+08:00")
    assert trigger.astimezone(UTC) == datetime(2026, 12, 20, 16, 0, tzinfo=UTC)
    assert r.insurance_trigger(date(2027, 1, 20), 7, SHANGHAI) == at("2027-01-13T00:00:00+08:00")
    assert r.sendable_at(trigger, SHANGHAI) == at("2026-12-21T08:00:00+08:00")  # out at the first 08:00


@pytest.mark.parametrize(
    ("birthday", "after", "expected"),
    [
        (date(1990, 5, 1), "2026-04-30T12:00:00+08:00", "2026-05-01T10:00:00+08:00"),
        (date(1990, 5, 1), "2026-05-01T10:00:00+08:00", "2026-05-01T10:00:00+08:00"),
        (date(1990, 5, 1), "2026-05-01T10:00:01+08:00", "2027-05-01T10:00:00+08:00"),  # once a year
        (date(1992, 2, 29), "2026-01-01T00:00:00+08:00", "2026-02-28T10:00:00+08:00"),  # common year
        (date(1992, 2, 29), "2027-03-01T00:00:00+08:00", "2028-02-29T10:00:00+08:00"),  # leap year
        (date(1990, 1, 1), "2026-12-31T20:00:00+00:00", "2027-01-01T10:00:00+08:00"),  # local year already
    ],
)
def test_the_birthday_greeting_is_at_10_local_on_the_day(birthday: date, after: str, expected: str) -> None:
    assert r.next_birthday_greeting(birthday, at(after), SHANGHAI) == at(expected)


def test_reminder_ids_are_derived_from_what_they_remind_of() -> None:
    first = r.reminder_id("first_service", "dealer-a#VIN@1")
    assert first == r.reminder_id("first_service", "dealer-a#VIN@1")
    assert first != r.reminder_id("first_service", "dealer-a#VIN@2")
    assert first != r.reminder_id("maintenance", "dealer-a#VIN@1")
    assert first.startswith("first_service-") and set(first.split("-")[1]) <= set(string.hexdigits)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@pytest.mark.parametrize(("n", "rate"), [(1, 20), (100, 20), (1000, 20), (37, 3), (500, 50)])
def test_the_pacer_spaces_sends_at_the_rate(n: int, rate: int) -> None:
    fake = FakeClock()
    pacer = r.Pacer(rate, fake, fake.sleep)
    slots = []
    for _ in range(n):
        assert pacer.acquire()
        slots.append(fake.now)
    assert slots[0] == 1000.0
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(abs(gap - 1 / rate) < 1e-9 for gap in gaps)
    assert abs((slots[-1] - slots[0]) - (n - 1) / rate) < 1e-6


def test_the_pacer_lets_time_already_spent_count_and_never_overstays_its_deadline() -> None:
    fake = FakeClock()
    pacer = r.Pacer(10, fake, fake.sleep)
    assert pacer.acquire()
    fake.now += 5  # the send itself took long: the next slot is already open
    assert pacer.acquire() and fake.now == 1005.0
    deadline = fake.now + 0.25
    assert pacer.acquire(deadline) and pacer.acquire(deadline)  # 1005.1, 1005.2
    assert not pacer.acquire(deadline)  # 1005.3 is past it: no waiting either
    assert fake.now == pytest.approx(1005.2)
    with pytest.raises(ValueError):
        r.Pacer(0, fake, fake.sleep)


def test_sms_templates_exist_for_every_kind_in_both_languages_and_zh_cn_is_signed() -> None:
    from chalicelib.outbound import sms

    values = {
        "vin_tail": "123456",
        "due_date": "2027-02-20",
        "due_km": 5000,
        "insurer": "PICC",
        "policy_no": "P-1",
        "expires_on": "2027-01-20",
        "days": 30,
    }
    for kind in ("first_service", "maintenance", "insurance_renewal", "birthday"):
        assert set(sms.templates()[kind]) == set(sms.LOCALES)
        zh = sms.render(kind, "zh-CN", "星辰汽车", **values)
        en = sms.render(kind, "en", "Star Motors", **values)
        assert zh.startswith("【星辰汽车】") and "{" not in zh and "}" not in zh
        assert "Star Motors" in en and "{" not in en
        assert sms.render(kind, "fr", "B", **values).startswith("【B】")  # unknown locale: zh-CN
    assert "123456" in sms.render("first_service", "en", "B", **values)
    assert "5000" in sms.render("maintenance", "zh-CN", "B", **values)


def test_an_instant_around_midnight_utc_is_judged_in_local_time() -> None:
    # 23:59 UTC is 07:59 next morning in Shanghai: quiet, sent one minute later.
    instant = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)
    assert r.sendable_at(instant, SHANGHAI) == instant + timedelta(minutes=1)
