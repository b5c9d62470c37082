"""Every time-driven job, as of one instant. The schedule and `clm sweep --at` both call `sweep`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.outbound import staff
from chalicelib.service import work
from chalicelib.store import inbox, outbox, tasks

REDRIVE_AFTER = timedelta(seconds=60)


@dataclass
class SweepReport:
    at: str
    tasks_overdue: int = 0
    breaches_announced: int = 0
    inbox_redriven: int = 0
    outbox_redriven: int = 0

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


def redrive(now: datetime, report: SweepReport) -> None:
    """Hand anything recorded but not handled within a minute to the retry queue."""
    before = now - REDRIVE_AFTER
    stale_inbox = [work.inbox_ref(r.partner_id, r.webhook_id) for r in inbox.stale(before)]
    stale_outbox = [work.outbox_ref(i) for i in outbox.stale(before)]
    work.enqueue(stale_inbox + stale_outbox)
    report.inbox_redriven = len(stale_inbox)
    report.outbox_redriven = len(stale_outbox)


def sweep(now: datetime) -> SweepReport:
    from chalicelib import clock

    report = SweepReport(at=clock.iso(now))
    mark_overdue(now, report)
    redrive(now, report)
    return report
