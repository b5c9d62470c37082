"""Task items: one partition per dealer; open tasks also sit in the sparse due index."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.expressions.condition import Condition

from chalicelib import clock
from chalicelib.domain.tasks import NewTask
from chalicelib.store import (
    BadCursor,
    bind,
    conditional_update,
    decode_cursor,
    due_in,
    encode_cursor,
    put_if_absent,
)

__all__ = ["BadCursor", "Task"]
from chalicelib.store.models import Item, TaskItem


def _shards() -> int:
    """How many partitions the due index is spread over (about 1,000 writes/s each on AWS)."""
    from chalicelib.settings import get_settings

    return get_settings().due_shards


def _shard(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % _shards()


@dataclass(frozen=True)
class Task:
    task_id: str
    dealer_id: str
    kind: str
    assignee_id: str | None
    assignee_role: str
    vin: str | None
    ref: str | None
    due_at: datetime
    status: str
    created_at: datetime
    closed_at: datetime | None
    closed_reason: str | None = None
    details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "kind": self.kind,
            "assignee_id": self.assignee_id,
            "assignee_role": self.assignee_role,
            "vin": self.vin,
            "due_at": clock.iso(self.due_at),
            "status": self.status,
            "created_at": clock.iso(self.created_at),
            "ref": self.ref,
            "closed_at": clock.iso(self.closed_at) if self.closed_at else None,
            "closed_reason": self.closed_reason,
            "details": self.details or {},
        }


def _to_task(item: TaskItem) -> Task:
    return Task(
        item.task_id,
        item.dealer_id,
        item.kind,
        item.assignee_id,
        item.assignee_role,
        item.vin,
        item.ref,
        item.due_at,
        item.status,
        item.created_at,
        item.closed_at,
        item.closed_reason,
        item.details,
    )


def _key(dealer_id: str, task_id: str) -> tuple[str, str]:
    return f"DEALER#{dealer_id}", f"TASK#{task_id}"


def _due_keys(task_id: str, due_at: datetime) -> tuple[str, str]:
    return f"DUE#{_shard(task_id)}", f"{clock.iso(due_at)}#{task_id}"


def _order_key(task_id: str, due_at: datetime) -> str:
    """Where a task sits in its dealer's list: by due time (UTC text sorts as time), then id."""
    return f"{clock.iso(due_at)}#{task_id}"


def _item(dealer_id: str, task: NewTask, now: datetime) -> TaskItem:
    pk, sk = _key(dealer_id, task.task_id)
    gpk, gsk = _due_keys(task.task_id, task.due_at)
    return TaskItem(
        pk,
        sk,
        task_id=task.task_id,
        dealer_id=dealer_id,
        kind=task.kind,
        assignee_id=task.assignee_id,
        assignee_role=task.assignee_role,
        vin=task.vin,
        ref=task.ref,
        details=task.details,
        due_at=task.due_at,
        status="open",
        created_at=now,
        gsi1pk=gpk,
        gsi1sk=gsk,
        lsi1sk=_order_key(task.task_id, task.due_at),
    )


def _vehicle_task(task: NewTask, delivered_at: datetime | None) -> None:
    if task.vin and delivered_at is None:
        raise ValueError("a task about a vehicle belongs to one of its deliveries: give delivered_at")


def new_items(
    dealer_id: str, task: NewTask, now: datetime, delivered_at: datetime | None = None
) -> list[Item]:
    """A new task and its note under the vehicle, to be written in a batch (none of them exists yet)."""
    _vehicle_task(task, delivered_at)
    from chalicelib.store import records

    items: list[Item] = [_item(dealer_id, task, now)]
    if task.vin and delivered_at is not None:
        items.append(records.task_ref_item(dealer_id, task.vin, task.task_id, delivered_at))
    return items


def create(
    dealer_id: str,
    task: NewTask,
    now: datetime,
    delivered_at: datetime | None = None,
    *,
    noted: bool = False,
) -> bool:
    """Open a task unless it already exists (in any state). True when this call created it.

    A task about a vehicle is also noted under the dealer's vehicle, with the delivery it
    belongs to (`delivered_at`), so that a transfer finds the tasks it supersedes; the note is
    written first, so a task never exists without it (`noted`: the caller writes it, in the
    event's batch, and a crash before that batch re-runs the event).
    """
    bind()
    if not noted:
        _vehicle_task(task, delivered_at)
    if task.vin and delivered_at is not None and not noted:
        from chalicelib.store import records

        records.task_ref_item(dealer_id, task.vin, task.task_id, delivered_at).save()
    return put_if_absent(_item(dealer_id, task, now))


def get(dealer_id: str, task_id: str) -> Task | None:
    bind()
    try:
        return _to_task(TaskItem.get(*_key(dealer_id, task_id), consistent_read=True))
    except TaskItem.DoesNotExist:
        return None


def close(
    dealer_id: str, task_id: str, now: datetime, by: str, status: str = "done", reason: str | None = None
) -> Task | None:
    """End a task (from open or overdue) as `done`, or `cancelled` with a `reason`. None when it
    does not exist or has already ended.

    An open task leaves the due queue. An overdue one keeps its place in the breach queue: if its
    breach is not announced yet, the sweep still announces it (the deadline was missed).
    """
    bind()
    pk, sk = _key(dealer_id, task_id)
    done: list[Any] = [TaskItem.status.set(status), TaskItem.closed_at.set(now), TaskItem.closed_by.set(by)]
    if reason is not None:
        done.append(TaskItem.closed_reason.set(reason))
    attempts: list[tuple[list[Any], Condition]] = [
        ([*done, TaskItem.gsi1pk.remove(), TaskItem.gsi1sk.remove()], TaskItem.status == "open"),
        (done, TaskItem.status == "overdue"),
    ]
    for actions, condition in attempts:
        item = TaskItem(pk, sk)
        if conditional_update(item, actions, condition):
            return _to_task(item)
    return None


def claim_overdue(dealer_id: str, task_id: str, now: datetime) -> bool:
    """Turn an open task past its due time overdue, exactly once.

    The claim moves the task from the due queue to the breach queue in the same update, so a
    crash before its notifications are recorded leaves it where the next sweep finds it.
    """
    bind()
    pk, sk = _key(dealer_id, task_id)
    shard = _shard(task_id)
    return conditional_update(
        TaskItem(pk, sk),
        [TaskItem.status.set("overdue"), TaskItem.breached.set(True), TaskItem.gsi1pk.set(f"BREACH#{shard}")],
        (TaskItem.status == "open") & (TaskItem.due_at <= now),
    )


def breached_unannounced(limit: int = 500) -> list[Task]:
    """Tasks claimed overdue whose notifications are not recorded yet."""
    bind()
    found: list[Task] = []
    for shard in range(_shards()):
        for item in Item.due_index.query(f"BREACH#{shard}", limit=limit):
            if isinstance(item, TaskItem):
                found.append(_to_task(item))
    return found


def announced(dealer_id: str, task_id: str) -> None:
    """The breach notifications are recorded: the task leaves the breach queue."""
    bind()
    pk, sk = _key(dealer_id, task_id)
    TaskItem(pk, sk).update(
        actions=[TaskItem.gsi1pk.remove(), TaskItem.gsi1sk.remove()], condition=TaskItem.pk.exists()
    )


def due(now: datetime, limit: int = 500) -> list[Task]:
    """Open tasks whose due time has come, oldest first, across every shard."""
    upper = f"{clock.iso(now)}#~"
    found = [
        _to_task(item)
        for item in due_in("DUE", _shards(), upper, limit)
        if isinstance(item, TaskItem) and item.status == "open"
    ]
    found.sort(key=lambda t: t.due_at)
    return found[:limit]


def page(
    dealer_id: str, status: str | None, assignee: str | None, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    """One page of a dealer's tasks in due order (then id), filtered; reads until the page is full."""
    bind()
    start = decode_cursor(cursor, f"DEALER#{dealer_id}", "TASK#", ("pk", "sk", "lsi1sk"))
    condition: Condition | None = None
    if status:
        condition = TaskItem.status == status
    if assignee:
        by_assignee = TaskItem.assignee_id == assignee
        condition = by_assignee if condition is None else condition & by_assignee
    found: list[Task] = []
    last: dict[str, Any] | None = start
    while True:
        result = TaskItem.due_order.query(
            f"DEALER#{dealer_id}",
            consistent_read=True,
            filter_condition=condition,
            limit=limit - len(found),
            last_evaluated_key=last,
            page_size=max(limit, 25),
        )
        for item in result:
            if isinstance(item, TaskItem):
                found.append(_to_task(item))
                if len(found) == limit:
                    break
        if len(found) == limit:
            last = result.last_evaluated_key
            return found, encode_cursor(last)
        last = result.last_evaluated_key
        if not last:
            return found, None


def as_task(dealer_id: str, task: NewTask, now: datetime) -> Task:
    """The view of a freshly opened task (what `create` stores)."""
    return Task(
        task.task_id,
        dealer_id,
        task.kind,
        task.assignee_id,
        task.assignee_role,
        task.vin,
        task.ref,
        task.due_at,
        "open",
        now,
        None,
        None,
        task.details,
    )


def cancel(dealer_id: str, task_id: str, now: datetime, reason: str) -> Task | None:
    """End an open or overdue task without doing it (its cause is gone: `superseded`)."""
    return close(dealer_id, task_id, now, "clm", status="cancelled", reason=reason)
