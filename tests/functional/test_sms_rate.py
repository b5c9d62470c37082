"""The sweep's SMS sender and the account-wide quota of `sms_rate` sends per second (DESIGN.md §5):
a second already full waits for the next one; a quota other senders keep full leaves the rest for
the next run, queued, and nothing is sent twice. Clocks are fake: the quota's seconds follow them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.conftest import NOW

SMS = 30


class FakeTime:
    """The monotonic clock the pacer reads and the wall clock the quota reads (pinned at `start`),
    moved together by `sleep`."""

    def __init__(self, start: datetime) -> None:
        self.start, self.elapsed = start, 0.0
        self.sleep(0)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        from chalicelib import clock

        self.elapsed += seconds
        clock.pin_system(self.start + timedelta(seconds=self.elapsed))


@pytest.fixture
def queued(aws_stack: dict[str, str]) -> Iterator[list[str]]:
    from chalicelib.store import outbox
    from chalicelib.store.outbox import Message

    ids = [f"sms#rate-{n}" for n in range(SMS)]
    for outbox_id in ids:
        outbox.put(Message(outbox_id, "sms", "+8613800138000", "test", send_after=NOW), NOW)
    yield ids


def publishes() -> list[int]:
    """The wall-clock second of each SMS publish from now on."""
    from chalicelib import aws, clock

    seconds: list[int] = []
    aws.client("sns").meta.events.register(
        "before-call.sns.Publish", lambda **_: seconds.append(int(clock.system_now().timestamp()))
    )
    return seconds


def fill_second(instant: datetime) -> None:
    """Another sender used the whole second of `instant`."""
    from chalicelib.settings import get_settings
    from chalicelib.store import outbox

    for _ in range(get_settings().sms_rate):
        assert outbox.take_sms_slot(instant, get_settings().sms_rate)
    assert not outbox.take_sms_slot(instant, get_settings().sms_rate)


def statuses(ids: list[str]) -> set[str]:
    from chalicelib.store import outbox

    return {item.status for item in (outbox.get(i) for i in ids) if item is not None}


def test_a_second_another_sender_filled_costs_a_wait_not_the_run(queued: list[str]) -> None:
    from chalicelib.service.sweep import SweepReport, send_sms

    start = NOW + timedelta(milliseconds=300)
    fake, sent = FakeTime(start), publishes()
    fill_second(start)
    report = SweepReport(at=start.isoformat())
    send_sms(NOW, report, monotonic=fake.monotonic, sleep=fake.sleep)
    assert (report.sms_sent, report.sms_waiting) == (SMS, 0)
    assert len(sent) == SMS and statuses(queued) == {"delivered"}
    assert fake.elapsed >= 0.7  # it waited for the next second before its first send


def test_a_quota_other_senders_keep_full_leaves_the_rest_queued_for_the_next_run(
    queued: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.service import sweep
    from chalicelib.service.sweep import SweepReport, send_sms
    from chalicelib.store import outbox

    fake, sent = FakeTime(NOW), publishes()
    asked: list[datetime] = []

    def always_full(instant: datetime, rate: int) -> bool:
        asked.append(instant)
        return False

    real = outbox.take_sms_slot
    monkeypatch.setattr(outbox, "take_sms_slot", always_full)
    report = SweepReport(at=NOW.isoformat())
    send_sms(NOW, report, monotonic=fake.monotonic, sleep=fake.sleep)
    assert (report.sms_sent, report.sms_waiting) == (0, SMS)
    assert len(asked) == 1 + sweep.RATE_LIMITED_WAITS  # the first second, then one after each wait
    assert len({int(a.timestamp()) for a in asked}) == len(asked)
    assert sent == [] and statuses(queued) == {"queued"}

    monkeypatch.setattr(outbox, "take_sms_slot", real)
    again = SweepReport(at=NOW.isoformat())
    send_sms(NOW, again, monotonic=fake.monotonic, sleep=fake.sleep)
    assert (again.sms_sent, again.sms_waiting) == (SMS, 0)
    assert len(sent) == SMS  # each delivered (below), so each once
    assert statuses(queued) == {"delivered"}


def test_no_second_of_the_quota_gets_more_than_the_rate_from_the_sweep(queued: list[str]) -> None:
    from chalicelib.service.sweep import SweepReport, send_sms
    from chalicelib.settings import get_settings

    fake, stamps = FakeTime(NOW), publishes()
    report = SweepReport(at=NOW.isoformat())
    send_sms(NOW, report, monotonic=fake.monotonic, sleep=fake.sleep)
    assert report.sms_sent == SMS
    per_second = {s: stamps.count(s) for s in stamps}
    assert max(per_second.values()) <= get_settings().sms_rate, per_second
