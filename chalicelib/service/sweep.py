"""Every time-driven job, as of one instant. The schedule and `clm sweep --at` both call `sweep`.

Business jobs (overdue tasks) run as of the given instant; housekeeping (re-driving stuck work,
expiring events that waited too long for a delivery) keeps the real clock, so a sweep far in
the future re-drives and expires nothing (DESIGN.md §9).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.outbound import staff
from chalicelib.service import work
from chalicelib.store import inbox, outbox, records, tasks

WAIT_LIMIT = timedelta(days=7)  # then an event about a VIN its sender never delivered is ignored


@dataclass
class SweepReport:
    at: str
    tasks_overdue: int = 0
    breaches_announced: int = 0
    inbox_redriven: int = 0
    outbox_redriven: int = 0
    waiting_expired: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def mark_overdue(now: datetime, report: SweepReport) -> None:
    for task in tasks.due(now):
        if tasks.claim_overdue(task.dealer_id, task.task_id, now):
            report.tasks_overdue += 1
    for task in tasks.breached_unannounced():
        outbox.put(staff.task_overdue(task), now)
        outbox.put(staff.task_breach(task), now)
        tasks.announced(task.dealer_id, task.task_id)
        report.breaches_announced += 1


def redrive(real_now: datetime, report: SweepReport) -> None:
    """Hand what was lost to the retry queue: work pending and last handed to processing longer ago
    than the queue's visibility timeout plus a consumer's run (what is merely queued, or being
    retried, is younger).

    Each item is re-driven at most once per visibility timeout (its hand-off time moves to now),
    a page at a time, and a bounded number of times in all.
    """
    from chalicelib.settings import get_settings

    settings = get_settings()
    # Past the visibility timeout and a consumer's run: SQS would have redelivered it by now.
    before = real_now - timedelta(seconds=settings.work_visibility_seconds + settings.work_consumer_seconds)
    lost_inbox = [r for r in inbox.stale(before) if inbox.redriven(r, real_now)]
    lost_outbox = [i for i in outbox.stale(before) if outbox.handed_off(i, real_now)]
    refs = [work.inbox_ref(r.partner_id, r.webhook_id) for r in lost_inbox]
    work.enqueue(refs + [work.outbox_ref(i) for i in lost_outbox], why="redrive")
    report.inbox_redriven = len(lost_inbox)
    report.outbox_redriven = len(lost_outbox)


def expire_waiting(real_now: datetime, report: SweepReport) -> None:
    """Events that waited 7 days for a delivery that never came are ignored (`unknown_vehicle`)."""
    from chalicelib.service.process import ignore

    for waiting in inbox.waiting_since(real_now - WAIT_LIMIT):
        item = inbox.load(waiting.ref)
        event_type = item.event_type if item is not None else ""
        if ignore(waiting.ref, event_type, waiting.ops_reason or "unknown_vehicle", real_now):
            report.waiting_expired += 1
        if waiting.dealer_id and waiting.vin:
            records.delete_wait(waiting.dealer_id, waiting.vin, waiting.ref.webhook_id)


def sweep(now: datetime, real_now: datetime | None = None) -> SweepReport:
    """Run every job: business ones as of `now`, housekeeping as of `real_now` (default: the real clock)."""
    housekeeping_at = real_now or clock.system_now()
    report = SweepReport(at=clock.iso(now))
    mark_overdue(now, report)
    redrive(housekeeping_at, report)
    expire_waiting(housekeeping_at, report)
    return report
