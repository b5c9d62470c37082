"""Opening a staff task: the one way events, reminders and the weekly KPI job open one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain.tasks import NewTask
from chalicelib.outbound import staff
from chalicelib.store import outbox, records, tasks


def open_task(
    dealer_id: str, task: NewTask, now: datetime, puts: list[Any], delivered_at: datetime | None = None
) -> bool:
    """Open a task and announce it on `staff-tasks`, once; True when this run opened it.

    A task about the dealer's vehicle is noted under it (for the delivery `delivered_at`) in
    `puts`, the caller's batch, so a transfer finds it. A run that crashed after opening the task
    may have stopped before recording the announcement: a later run records it unless it exists.
    """
    if task.vin and delivered_at is not None:
        puts.append(records.task_ref_item(dealer_id, task.vin, task.task_id, delivered_at))
    announcement = staff.task_created(tasks.as_task(dealer_id, task, now))
    if tasks.create(dealer_id, task, now, noted=True):
        puts.append(outbox.new_item(announcement, now))  # this run made it: not recorded yet
        return True
    outbox.put(announcement, now)
    return False
