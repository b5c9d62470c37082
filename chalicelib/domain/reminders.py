"""When customers are reminded (DESIGN.md §6, §7): service dues, renewals, birthdays, quiet hours.

Pure functions of instants, dates and zones; no AWS. A reminder has a time trigger (an instant)
and, for services, a mileage trigger (an odometer reading); whichever comes first fires it, once.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib.domain.services import CYCLE_KINDS

ReminderKind = Literal["first_service", "maintenance", "insurance_renewal", "birthday"]

SERVICE_LEAD = timedelta(days=7)  # a service reminder goes out 7 days before the date it is due
KM_MARGIN = 500  # ... or when the odometer is this close to the km it is due at
INSURANCE_STAGES = (30, 7)  # days before `expires_on`: the renewal SMS and task, then a second SMS
BIRTHDAY_HOUR = time(10, 0)  # the greeting's local time
QUIET_START, QUIET_END = time(21, 0), time(8, 0)  # no customer SMS between these, local time


def add_months(instant: datetime, months: int) -> datetime:
    """`instant` moved by calendar months, the day clamped to the month's end (Jan 31 + 1 = Feb 28/29).

    Counted in the instant's own offset, so "3 months after a delivery at 10:00 +08:00" is 10:00
    +08:00 on that day.
    """
    month0 = instant.month - 1 + months
    year, month = instant.year + month0 // 12, month0 % 12 + 1
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class ServiceDue:
    """When the next service is due: a date (an instant) and an odometer reading."""

    kind: ReminderKind  # first_service | maintenance
    cycle: str  # what started the cycle: the delivery or the service (stable, for ids)
    due_at: datetime
    due_km: int

    @property
    def trigger_at(self) -> datetime:
        return self.due_at - SERVICE_LEAD

    @property
    def trigger_km(self) -> int:
        return max(self.due_km - KM_MARGIN, 0)

    def reached_by(self, odometer_km: int | None) -> bool:
        """Whether a reading fires the reminder before its date."""
        return odometer_km is not None and odometer_km >= self.trigger_km


def first_service_due(delivered_at: datetime, due_months: int, due_km: int) -> ServiceDue:
    """Before the first service, the next one is due at the delivery's `first_service` plan."""
    cycle = f"delivery@{delivered_at.timestamp():.0f}"
    return ServiceDue("first_service", cycle, add_months(delivered_at, due_months), due_km)


def next_service_due(
    repair_order_id: str, completed_at: datetime, odometer_km: int, interval_months: int, interval_km: int
) -> ServiceDue:
    """After a first service or maintenance: its odometer + interval, its date + interval."""
    return ServiceDue(
        "maintenance",
        f"service@{repair_order_id}",
        add_months(completed_at, interval_months),
        odometer_km + interval_km,
    )


def restarts_cycle(service_kind: str) -> bool:
    return service_kind in CYCLE_KINDS


def zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's time zone (an IANA name), or the default one."""
    return ZoneInfo(name or default)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 local on `day`: where "N days before" a date-only deadline starts (§7)."""
    return datetime.combine(day, time(0, 0), tzinfo=tz)


def insurance_trigger(expires_on: date, days_before: int, tz: ZoneInfo) -> datetime:
    return local_midnight(expires_on - timedelta(days=days_before), tz)


def birthday_in(year: int, birthday: date) -> date:
    """The birthday as celebrated in `year`: 29 February falls on 28 February in common years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def next_birthday_greeting(birthday: date, after: datetime, tz: ZoneInfo) -> datetime:
    """The first 10:00 local on the customer's birthday at or after `after`."""
    local_year = after.astimezone(tz).year
    for year in (local_year, local_year + 1):
        at = datetime.combine(birthday_in(year, birthday), BIRTHDAY_HOUR, tzinfo=tz)
        if at >= after:
            return at
    raise AssertionError("a birthday comes every year")  # pragma: no cover


def in_quiet_hours(instant: datetime, tz: ZoneInfo) -> bool:
    local = instant.astimezone(tz).time()
    return local >= QUIET_START or local < QUIET_END


def sendable_at(instant: datetime, tz: ZoneInfo) -> datetime:
    """When an SMS due at `instant` may go out: at once, or at 08:00 local after quiet hours."""
    local = instant.astimezone(tz)
    if not in_quiet_hours(instant, tz):
        return instant
    day = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_END, tzinfo=tz)


def reminder_id(kind: str, subject: str) -> str:
    """Deterministic: the same logical reminder always has the same id, so it is sent once."""
    digest = hashlib.sha256(f"{kind}|{subject}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


class Pacer:
    """Spaces sends `1/rate` seconds apart on an injected clock: the SMS quota is per account.

    `clock` returns seconds (monotonic) and `sleep` waits; tests give both a fake clock. A slot is
    taken only when it opens before `deadline`, so a run never overstays its budget: what does
    not fit waits for the next run.
    """

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        if rate <= 0:
            raise ValueError("the send rate is positive")
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None

    def acquire(self, deadline: float | None = None) -> bool:
        """Wait for the next slot; False (without waiting) when it opens after `deadline`."""
        now = self._clock()
        slot = now if self._next is None else max(self._next, now)
        if deadline is not None and slot > deadline:
            return False
        if slot > now:
            self._sleep(slot - now)
        self._next = slot + self.interval
        return True
