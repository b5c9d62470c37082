"""Missed installments (DESIGN.md §6; seeds 000, 003) and the holds the three arms owe each other.

Each installment carries a chain of overdue reminders under its loan, one stage at a time
(`domain.loans.OVERDUE_STAGES`): the day after its due date the customer gets an SMS and the
selling dealer an `overdue_follow_up` task and a warning on `staff-tasks`; at 30 days past due HQ
collections gets a `collections` task, listed under the dealer; each later stage records the new
DPD bucket. A stage that finds its installment paid (or the loan settled) closes, and so does the
chain. A payment closes the installment's tasks.

Holds no single arm would think of: while a red-alert complaint about the vehicle is open, the
overdue SMS waits (looked at again every hour) and the collections task shows why; a customer
with a loan 30+ days past due gets no care or marketing SMS.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from chalicelib import clock
from chalicelib.domain import loans as loan_rules
from chalicelib.domain import reminders as rules
from chalicelib.domain import tasks as task_rules
from chalicelib.domain.tasks import NewTask
from chalicelib.observability import count
from chalicelib.outbound import sms, staff
from chalicelib.service import reminders
from chalicelib.service.tasks import open_task
from chalicelib.store import cases, loans, outbox, records, tasks, write_all
from chalicelib.store import reminders as scheduled
from chalicelib.store.models import CustomerItem, LoanItem, ReminderItem, VehicleItem

FOLLOW_UP_WINDOW = timedelta(hours=24)  # the dealer's call to its customer after the warning
COLLECTIONS_WINDOW = timedelta(days=3)  # HQ collections' first contact
HOLD_RECHECK = timedelta(hours=1)  # a paused overdue SMS is looked at again this often
RED_COMPLAINT_OPEN = "red_complaint_open"
PAID_BY = "payment"


def loan_owner(finance_id: str, loan_id: str) -> str:
    return f"LOAN#{finance_id}#{loan_id}"


def loan_key(loan: LoanItem) -> str:
    return f"{loan.finance_id}#{loan.loan_id}"


def follow_up_task_id(finance_id: str, loan_id: str, seq: int) -> str:
    return task_rules.task_id("overdue_follow_up", f"{finance_id}#{loan_id}#{seq}")


def collections_task_id(finance_id: str, loan_id: str, seq: int) -> str:
    return task_rules.task_id("collections", f"{finance_id}#{loan_id}#{seq}")


# --- scheduling -------------------------------------------------------------------------------------


def stage_reminder(
    dealer_id: str,
    finance_id: str,
    loan_id: str,
    customer_id: str,
    vin: str,
    installment: dict[str, Any],
    stage: int,
    now: datetime,
) -> ReminderItem:
    """The overdue stage `stage` of one installment: at 00:00 local `stage` days after its due date."""
    due_date = date.fromisoformat(installment["due_date"])
    seq = int(installment["seq"])
    subject = f"{finance_id}#{loan_id}#{seq}#{due_date.isoformat()}#{stage}"
    return scheduled.new_item(
        loan_owner(finance_id, loan_id),
        rules.reminder_id("overdue", subject),
        "overdue",
        dealer_id=dealer_id,
        customer_id=customer_id,
        trigger_at=rules.local_midnight(loan_rules.stage_day(due_date, stage), reminders.local_zone()),
        details={
            "finance_id": finance_id,
            "loan_id": loan_id,
            "seq": seq,
            "due_date": due_date.isoformat(),
            "amount_minor": int(installment["amount_minor"]),
            "amount": f"{int(installment['amount_minor']) / 100:.2f}",
            "stage": stage,
            "vin": vin,
            "car_tail": sms.vin_tail(vin),
        },
        now=now,
    )


def first_stages(
    dealer_id: str,
    finance_id: str,
    loan_id: str,
    customer_id: str,
    vin: str,
    schedule: list[Any],
    now: datetime,
) -> list[ReminderItem]:
    """The first overdue stage of every installment, scheduled with the booking (each later stage
    is scheduled by the one before, while the installment stays unpaid)."""
    return [
        stage_reminder(
            dealer_id,
            finance_id,
            loan_id,
            customer_id,
            vin,
            i.model_dump(mode="json"),
            loan_rules.OVERDUE_SMS_STAGE,
            now,
        )
        for i in schedule
    ]


# --- where a loan stands ----------------------------------------------------------------------------


def _today(now: datetime) -> date:
    return loan_rules.local_day(now, reminders.local_zone().key)


def standing(loan: LoanItem, now: datetime) -> dict[str, Any]:
    """Days past due and the bucket today (local), and the oldest unpaid installment."""
    schedule = loan_rules.installments(loan.schedule, {int(s) for s in loan.paid_seqs or ()})
    settled = loan.settled_at is not None
    days = 0 if settled else loan_rules.days_past_due(schedule, _today(now))
    oldest = None if settled else loan_rules.next_due(schedule)
    return {
        "loan_id": loan.loan_id,
        "finance_id": loan.finance_id,
        "vin": loan.vin,
        "days_past_due": days,
        "dpd_bucket": loan_rules.dpd_bucket(days),
        "oldest_unpaid_seq": oldest.seq if oldest is not None else None,
    }


def _timeline(
    loan: LoanItem, at: datetime, entry_id: str, event_type: str, summary: dict[str, Any]
) -> list[Any]:
    owners = [
        loan_owner(loan.finance_id, loan.loan_id),
        records.dealer_pk(loan.dealer_id),
        records.vehicle_pk(loan.dealer_id, loan.vin),
    ]
    return [
        records.timeline_entry(owner, at, entry_id, event_type, reminders.SYSTEM, loan.dealer_id, summary)
        for owner in owners
    ]


def track(loan: LoanItem, now: datetime, at: datetime) -> tuple[dict[str, Any], list[Any]]:
    """Record where the loan stands: a new DPD bucket (on the timelines, as of `at`), and whether
    its customer is held from care SMS. Returns the standing and the timeline entries to write."""
    found = standing(loan, now)
    bucket = found["dpd_bucket"]
    entries: list[Any] = []
    if loans.track_bucket(loan, bucket, now):
        count("LoanBucketChanged", bucket=bucket or "current")
        entry_id = f"dpd-{loan_key(loan)}-{bucket or 'current'}-{clock.iso(at)}"
        entries = _timeline(loan, at, entry_id, "loan.dpd_bucket_changed", dict(found))
    held = loan_rules.care_held(found["days_past_due"])
    records.note_past_due(loan.dealer_id, loan.customer_id, loan_key(loan), past_due=held)
    return found, entries


def care_held(customer: CustomerItem, now: datetime) -> bool:
    """Whether one of the customer's loans is 30+ days past due today (the note on the customer
    says which to look at; each is checked, so a stale note holds nothing)."""
    for key in customer.past_due_loans or ():
        finance_id, _, loan_id = key.partition("#")
        loan = loans.get(customer.dealer_id, finance_id, loan_id)
        if loan is not None and loan_rules.care_held(standing(loan, now)["days_past_due"]):
            return True
    return False


def _vehicle(loan: LoanItem) -> VehicleItem | None:
    """The dealer's own vehicle the loan is on (its advisor, its holds), if the dealer delivered it."""
    return records.get_vehicle(loan.dealer_id, loan.vin)


def hold_of(vehicle: VehicleItem | None) -> dict[str, Any] | None:
    """Why collections must wait, if it must: an open red-alert complaint about the vehicle."""
    if vehicle is None or not vehicle.red_complaints:
        return None
    still_open = cases.open_red_complaints(vehicle.dealer_id, vehicle.vin, list(vehicle.red_complaints))
    return {"reason": RED_COMPLAINT_OPEN, "complaint_ids": still_open} if still_open else None


def task_holds(dealer_id: str, listed: list[Any]) -> dict[str, dict[str, Any] | None]:
    """The hold of each collections task in `listed` (by task id), read from its vehicle now."""
    vehicles: dict[str, VehicleItem | None] = {}
    out: dict[str, dict[str, Any] | None] = {}
    for task in listed:
        if task.kind != "collections" or not task.vin:
            continue
        if task.vin not in vehicles:
            vehicles[task.vin] = records.get_vehicle(dealer_id, task.vin)
        out[task.task_id] = hold_of(vehicles[task.vin])
    return out


# --- the stages -------------------------------------------------------------------------------------


def _follow_up(
    loan: LoanItem, seq: int, vehicle: VehicleItem | None, found: dict[str, Any], now: datetime
) -> NewTask:
    advisor = vehicle.sales_advisor.id if vehicle is not None else None
    return NewTask(
        follow_up_task_id(loan.finance_id, loan.loan_id, seq),
        "overdue_follow_up",
        advisor,
        "sales",
        now + FOLLOW_UP_WINDOW,
        loan.vin,
        loan.loan_id,
        {"finance_id": loan.finance_id, "seq": seq, "days_past_due": found["days_past_due"]},
    )


def _collections(loan: LoanItem, seq: int, found: dict[str, Any], now: datetime) -> NewTask:
    return NewTask(
        collections_task_id(loan.finance_id, loan.loan_id, seq),
        "collections",
        None,
        "collections",
        now + COLLECTIONS_WINDOW,
        loan.vin,
        loan.loan_id,
        {
            "finance_id": loan.finance_id,
            "seq": seq,
            "days_past_due": found["days_past_due"],
            "dpd_bucket": found["dpd_bucket"],
        },
    )


def _moot(loan: LoanItem | None, seq: int, due_date: str | None = None) -> str | None:
    return scheduled.installment_moot(loan, seq, due_date)


def _still_late(loan: LoanItem, seq: int, task_id: str, now: datetime) -> None:
    """A payment or settlement applied while the task was being opened closed nothing: read the
    loan again, and if the installment is settled or paid by now, the task is done."""
    again = loans.get(loan.dealer_id, loan.finance_id, loan.loan_id)
    if _moot(again, seq) is not None:
        tasks.close(loan.dealer_id, task_id, now, PAID_BY)


def fire(reminder: ReminderItem, now: datetime) -> reminders.Fired:
    """One overdue stage of one installment, once (every write under ids derived from it)."""
    details = reminder.details
    seq, stage = int(details["seq"]), int(details["stage"])
    loan = loans.get(reminder.dealer_id, details["finance_id"], details["loan_id"])
    moot = _moot(loan, seq, details.get("due_date"))
    if moot is not None:
        scheduled.settle(reminder, "closed", now, reason=moot)
        return reminders.Fired("closed", moot)
    assert loan is not None
    at = reminder.trigger_at
    found, batch = track(loan, now, at)
    vehicle = _vehicle(loan)
    delivered_at = vehicle.delivered_at if vehicle is not None else None
    opened: list[str] = []
    if stage == loan_rules.OVERDUE_SMS_STAGE:
        task = _follow_up(loan, seq, vehicle, found, now)
        open_task(loan.dealer_id, task, now, batch, delivered_at)
        outbox.put(staff.loan_overdue(tasks.as_task(loan.dealer_id, task, now), found), now)
        opened.append(task.task_id)
        _still_late(loan, seq, task.task_id, now)
    elif stage == loan_rules.COLLECTIONS_AFTER_DAYS and found["oldest_unpaid_seq"] == seq:
        # An older installment still unpaid reached 30 days first: its collections task is open.
        task = _collections(loan, seq, found, now)
        open_task(loan.dealer_id, task, now, batch)
        opened.append(task.task_id)
        _still_late(loan, seq, task.task_id, now)
    following = loan_rules.next_stage(stage)
    if following is not None:
        schedule = {int(i["seq"]): i for i in loan.schedule}
        scheduled.put_once(
            stage_reminder(
                loan.dealer_id,
                loan.finance_id,
                loan.loan_id,
                loan.customer_id,
                loan.vin,
                schedule[seq],
                following,
                now,
            )
        )
    extra: dict[str, Any] = {"fired_by": "date", "tasks": opened, **found}
    if stage != loan_rules.OVERDUE_SMS_STAGE:
        write_all([*batch, *reminders.timeline_entries(reminder, "done", at, {**extra, "reason": None})])
        scheduled.settle(reminder, "done", now, fired_by="date")
        return reminders.Fired("done")
    hold = hold_of(vehicle)
    if hold is not None:
        write_all([*batch, *reminders.timeline_entries(reminder, "paused", at, {**extra, **hold})])
        scheduled.postpone(reminder, now + HOLD_RECHECK, now, RED_COMPLAINT_OPEN)
        return reminders.Fired("paused", RED_COMPLAINT_OPEN)
    customer = records.get_customer(loan.dealer_id, loan.customer_id)
    status, reason, send_at = reminders.queue_sms(reminder, customer, now)
    extra["reason"] = reason
    if send_at is not None:
        extra["send_at"] = clock.iso(send_at)
    write_all([*batch, *reminders.timeline_entries(reminder, status, at, extra)])
    scheduled.settle(reminder, status, now, reason=reason, fired_by="date", send_at=send_at)
    return reminders.Fired(status, reason)


# --- payments and settlements -----------------------------------------------------------------------


def paid(loan: LoanItem, seq: int, now: datetime, at: datetime) -> None:
    """An installment was paid: its overdue tasks are done, and where the loan stands is recorded.
    If the loan is still 30+ days past due (an older installment remains), its collections task
    is the oldest unpaid one's."""
    tasks.close(loan.dealer_id, follow_up_task_id(loan.finance_id, loan.loan_id, seq), now, PAID_BY)
    tasks.close(loan.dealer_id, collections_task_id(loan.finance_id, loan.loan_id, seq), now, PAID_BY)
    found, batch = track(loan, now, at)
    oldest = found["oldest_unpaid_seq"]
    if oldest is not None and found["days_past_due"] >= loan_rules.COLLECTIONS_AFTER_DAYS:
        task = _collections(loan, oldest, found, now)
        open_task(loan.dealer_id, task, now, batch)
        _still_late(loan, oldest, task.task_id, now)  # paid too, meanwhile
    write_all(batch)


def settled(loan: LoanItem, now: datetime, at: datetime) -> None:
    """The loan is settled: every overdue task of it is done, and it is current again."""
    for entry in loan.schedule:
        seq = int(entry["seq"])
        tasks.close(loan.dealer_id, follow_up_task_id(loan.finance_id, loan.loan_id, seq), now, PAID_BY)
        tasks.close(loan.dealer_id, collections_task_id(loan.finance_id, loan.loan_id, seq), now, PAID_BY)
    _, batch = track(loan, now, at)
    write_all(batch)
