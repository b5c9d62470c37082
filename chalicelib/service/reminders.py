"""Customer reminders (DESIGN.md §6, §7): scheduled when their cause is applied, fired once.

A reminder is scheduled by the event that makes it due (a delivery: the first service and the
birthday; a first service or maintenance: the next one; a policy: its renewal; a birthday given
later) and fired by the sweep when its time comes, or by an odometer reading that reaches its
threshold first. Firing opens the staff tasks, records the SMS in the outbox (deferred past quiet
hours, withheld from opted-out customers) and writes what happened on the vehicle's timeline; all
under ids derived from the reminder, so however often it fires, it is sent once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib import clock
from chalicelib.domain import reminders as rules
from chalicelib.domain import tasks as task_rules
from chalicelib.domain.ownership import SUPERSEDED
from chalicelib.domain.reminders import ServiceDue
from chalicelib.domain.tasks import NewTask, Role, TaskKind
from chalicelib.observability import count, logger
from chalicelib.outbound import sms
from chalicelib.service.tasks import open_task
from chalicelib.settings import get_settings
from chalicelib.store import outbox, records, reminders, tasks, write_all
from chalicelib.store.models import CustomerItem, ReminderItem, VehicleItem

SYSTEM = "clm"  # the author of timeline entries no partner wrote
CARE_CALL_WINDOW = timedelta(days=2)  # the advisor's care call after a service reminder
SERVICE_KINDS = frozenset({"first_service", "maintenance"})
REMINDER_TASKS: dict[str, tuple[tuple[TaskKind, Role], ...]] = {
    "first_service": (("first_service_care_call", "sales"), ("first_service_booking", "after_sales")),
    "maintenance": (("maintenance_care_call", "sales"), ("maintenance_booking", "after_sales")),
    "insurance_renewal": (("insurance_renewal", "sales"),),
    "birthday": (),
    "repayment": (),
}
REPAYMENT_DAYS_BEFORE = 3  # the repayment SMS, 003 §4.3
"""The "dual line" of a service reminder (002 §2, §5): the advisor calls, the specialist books."""


def local_zone() -> ZoneInfo:
    """The customers' time zone: the configured default (Asia/Shanghai); no event carries one yet."""
    return rules.zone(None, get_settings().local_tz)


# --- scheduling -------------------------------------------------------------------------------------


def service_cycle(reminder_id: str, due: ServiceDue) -> dict[str, Any]:
    """The vehicle's current service cycle, as its item keeps it (and the vehicle view shows it)."""
    return {
        "kind": due.kind,
        "cycle": due.cycle,
        "reminder_id": reminder_id,
        "due_at": clock.iso(due.due_at),
        "due_km": due.due_km,
        "remind_at": clock.iso(due.trigger_at),
        "remind_km": due.trigger_km,
    }


def service_reminder(
    dealer_id: str, vin: str, delivered_at: datetime, customer_id: str, due: ServiceDue, now: datetime
) -> tuple[ReminderItem, dict[str, Any]]:
    """The reminder of a service cycle, and the cycle as the vehicle item keeps it."""
    subject = f"{dealer_id}#{vin}@{delivered_at.timestamp():.0f}#{due.cycle}"
    reminder_id = rules.reminder_id(due.kind, subject)
    item = reminders.new_item(
        records.vehicle_pk(dealer_id, vin),
        reminder_id,
        due.kind,
        dealer_id=dealer_id,
        customer_id=customer_id,
        vin=vin,
        delivered_at=delivered_at,
        trigger_at=due.trigger_at,
        details={
            "due_date": due.due_at.date().isoformat(),
            "due_at": clock.iso(due.due_at),
            "due_km": due.due_km,
            "cycle": due.cycle,
        },
        now=now,
    )
    return item, service_cycle(reminder_id, due)


def birthday_reminder(dealer_id: str, customer_id: str, birthday: date, now: datetime) -> ReminderItem:
    """The customer's next birthday greeting (10:00 local), one per year."""
    at = rules.next_birthday_greeting(birthday, now, local_zone())
    subject = f"{dealer_id}#{customer_id}#{at.year}"
    return reminders.new_item(
        records.customer_pk(dealer_id, customer_id),
        rules.reminder_id("birthday", subject),
        "birthday",
        dealer_id=dealer_id,
        customer_id=customer_id,
        trigger_at=at,
        details={"birthday": birthday.isoformat(), "year": at.year},
        now=now,
    )


def insurance_subject(dealer_id: str, vin: str, delivered_at: datetime, policy: dict[str, Any]) -> str:
    return f"{dealer_id}#{vin}@{delivered_at.timestamp():.0f}#{policy['policy_no']}#{policy['expires_on']}"


def renewal_task_id(dealer_id: str, vin: str, delivered_at: datetime, policy: dict[str, Any]) -> str:
    return task_rules.task_id("insurance_renewal", insurance_subject(dealer_id, vin, delivered_at, policy))


def insurance_reminders(
    dealer_id: str, vehicle: VehicleItem, policy: dict[str, Any], now: datetime
) -> list[ReminderItem]:
    """The renewal reminders of a policy: 30 days before it expires (SMS and the advisor's task),
    and a second SMS 7 days before. A stage whose successor is already due is skipped (a policy
    reported 5 days before it expires gets one message, not two at once); none once it expired."""
    tz = local_zone()
    expires_on = date.fromisoformat(policy["expires_on"])
    if rules.local_midnight(expires_on, tz) <= now:
        return []
    subject = insurance_subject(dealer_id, vehicle.vin, vehicle.delivered_at, policy)
    stages = rules.INSURANCE_STAGES
    out = []
    for position, days in enumerate(stages):
        later = stages[position + 1 :]
        if later and rules.insurance_trigger(expires_on, later[0], tz) <= now:
            continue
        out.append(
            reminders.new_item(
                records.vehicle_pk(dealer_id, vehicle.vin),
                rules.reminder_id("insurance_renewal", f"{subject}#{days}"),
                "insurance_renewal",
                dealer_id=dealer_id,
                customer_id=vehicle.customer_id,
                vin=vehicle.vin,
                delivered_at=vehicle.delivered_at,
                trigger_at=rules.insurance_trigger(expires_on, days, tz),
                details={**policy, "days": days},
                now=now,
            )
        )
    return out


def repayment_reminders(
    dealer_id: str,
    finance_id: str,
    loan_id: str,
    customer_id: str,
    vin: str,
    schedule: list[Any],
    now: datetime,
) -> list[ReminderItem]:
    """An SMS 3 days before each installment falls due (00:00 local that day, sent from 08:00);
    none for an installment already due. Kept with the loan."""
    tz = local_zone()
    out = []
    for installment in schedule:
        due_date = installment.due_date
        if rules.local_midnight(due_date, tz) <= now:
            continue
        subject = f"{finance_id}#{loan_id}#{installment.seq}#{due_date.isoformat()}"
        out.append(
            reminders.new_item(
                f"LOAN#{finance_id}#{loan_id}",
                rules.reminder_id("repayment", subject),
                "repayment",
                dealer_id=dealer_id,
                customer_id=customer_id,
                trigger_at=rules.insurance_trigger(due_date, REPAYMENT_DAYS_BEFORE, tz),
                details={
                    "finance_id": finance_id,
                    "loan_id": loan_id,
                    "seq": installment.seq,
                    "due_date": due_date.isoformat(),
                    "amount": f"{installment.amount_minor / 100:.2f}",
                    "vin": vin,
                    "car_tail": sms.vin_tail(vin),
                },
                now=now,
            )
        )
    return out


# --- firing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    status: str  # sent | deferred | suppressed | closed (or what it already was)
    reason: str | None = None


def _still_due(
    reminder: ReminderItem, vehicle: VehicleItem | None, customer: CustomerItem | None, now: datetime
) -> str | None:
    """Why a scheduled reminder no longer applies (its cause moved on), or None."""
    if reminder.vin is not None:
        if vehicle is None or vehicle.delivered_at != reminder.delivered_at:
            return "superseded"  # the dealer sold the car again: a new delivery, new reminders
        if vehicle.transferred_at is not None:
            return "transferred"
        if (
            reminder.kind in SERVICE_KINDS
            and (vehicle.next_service or {}).get("reminder_id") != reminder.reminder_id
        ):
            return "serviced"  # a service completed the cycle before its reminder was due
        if reminder.kind == "insurance_renewal":
            policy = vehicle.insurance or {}
            mine = {k: reminder.details.get(k) for k in ("policy_no", "expires_on")}
            if {k: policy.get(k) for k in mine} != mine:
                return "renewed"
            if _overtaken(reminder, now):
                return "overtaken"  # a sweep this late sends the next stage's message, not both
    if reminder.kind == "birthday" and (
        customer is None or customer.birthday != reminder.details.get("birthday")
    ):
        return "birthday_changed"
    if reminder.kind == "repayment":
        return reminders.repaid(reminder)
    return None


def _overtaken(reminder: ReminderItem, now: datetime) -> bool:
    """Whether a later renewal stage of the same policy is already due as well."""
    stages = rules.INSURANCE_STAGES
    days = reminder.details.get("days")
    later = stages[stages.index(days) + 1 :] if days in stages else ()
    expires_on = date.fromisoformat(reminder.details["expires_on"])
    return bool(later) and rules.insurance_trigger(expires_on, later[0], local_zone()) <= now


def _tasks_of(reminder: ReminderItem, vehicle: VehicleItem, now: datetime) -> list[NewTask]:
    if reminder.kind == "insurance_renewal":
        policy = reminder.details
        due_at = rules.local_midnight(date.fromisoformat(policy["expires_on"]), local_zone())
        task_id = renewal_task_id(reminder.dealer_id, vehicle.vin, vehicle.delivered_at, policy)
        return [
            NewTask(
                task_id, "insurance_renewal", vehicle.sales_advisor.id, "sales", max(due_at, now), vehicle.vin
            )
        ]
    out = []
    service_due = datetime.fromisoformat(reminder.details["due_at"])
    for kind, role in REMINDER_TASKS[reminder.kind]:
        person = vehicle.sales_advisor if role == "sales" else vehicle.service_specialist
        due_at = now + CARE_CALL_WINDOW if role == "sales" else max(now + CARE_CALL_WINDOW, service_due)
        out.append(
            NewTask(
                task_rules.task_id(kind, reminder.reminder_id), kind, person.id, role, due_at, vehicle.vin
            )
        )
    return out


CARE_KINDS = frozenset({"birthday"})
"""Care and marketing messages: the customer's own opt-out, and none while a loan is 30+ days past due."""


def _why_no_sms(reminder: ReminderItem, customer: CustomerItem | None, now: datetime) -> str | None:
    if customer is None or not customer.phone:
        return "no_phone"
    if customer.sms_opt_out:
        return "sms_opt_out"
    if reminder.kind in CARE_KINDS:
        if customer.care_opt_out:
            return "care_opt_out"
        from chalicelib.service import overdue

        if overdue.care_held(customer, now):
            return "loan_past_due"
    return None


def _text(reminder: ReminderItem, customer: CustomerItem) -> str:
    values = {**reminder.details, "vin_tail": sms.vin_tail(reminder.vin)}
    return sms.render(reminder.kind, customer.locale, get_settings().sms_brand, **values)


def queue_sms(
    reminder: ReminderItem, customer: CustomerItem | None, now: datetime
) -> tuple[str, str | None, datetime | None]:
    """Record the reminder's SMS in the outbox (deferred past quiet hours) unless it must not go
    out; its status (`sent`, `deferred` or `suppressed`), why, and when it goes out."""
    reason = _why_no_sms(reminder, customer, now)
    if reason is not None:
        return "suppressed", reason, None
    assert customer is not None and customer.phone
    send_at = rules.sendable_at(now, local_zone())
    message = sms.message(
        sms.outbox_id(reminder.reminder_id),
        customer.phone,
        _text(reminder, customer),
        send_at,
        reminder_owner=reminder.pk,
        reminder_id=reminder.reminder_id,
        kind=reminder.kind,
        dealer_id=reminder.dealer_id,
        customer_id=reminder.customer_id,
    )
    outbox.put(message, now)
    return ("deferred", "quiet_hours", send_at) if send_at > now else ("sent", None, send_at)


def timeline_entries(reminder: ReminderItem, status: str, at: datetime, extra: dict[str, Any]) -> list[Any]:
    """What became of a reminder, on the timeline of what it is about (one entry per outcome); a
    loan's also on its dealer's and its vehicle's."""
    summary = {"kind": reminder.kind, "reminder_id": reminder.reminder_id, **reminder.details, **extra}
    summary.pop("birthday", None)  # personal data stays on the profile
    return [
        records.timeline_entry(
            owner,
            at,
            f"{reminder.reminder_id}-{status}",
            f"reminder.{status}",
            SYSTEM,
            reminder.dealer_id,
            summary,
        )
        for owner in reminders.timeline_owners(reminder)
    ]


def fire(
    reminder: ReminderItem,
    now: datetime,
    *,
    fired_by: str = "date",
    at: datetime | None = None,
    vehicle: VehicleItem | None = None,
) -> Fired:
    """Send one due reminder, once: tasks, SMS or the reason for none, its timeline entry, then
    its own record (last: a crash before it fires it again, which repeats nothing)."""
    if reminder.status != "scheduled":
        return Fired(reminder.status, reminder.reason)
    if reminder.kind == "overdue":
        from chalicelib.service import overdue

        return overdue.fire(reminder, now)
    if reminder.vin is not None and vehicle is None:
        vehicle = records.get_vehicle(reminder.dealer_id, reminder.vin)
    customer = records.get_customer(reminder.dealer_id, reminder.customer_id)
    at = at or reminder.trigger_at
    closed = _still_due(reminder, vehicle, customer, now)
    if closed is not None:
        reminders.settle(reminder, "closed", now, reason=closed)
        return Fired("closed", closed)
    opened: list[str] = []
    batch: list[Any] = []  # written in one request with the timeline entry
    if vehicle is not None:
        for task in _tasks_of(reminder, vehicle, now):
            open_task(reminder.dealer_id, task, now, batch, vehicle.delivered_at)
            opened.append(task.task_id)
    status, reason, send_at = queue_sms(reminder, customer, now)
    extra = {"fired_by": fired_by, "reason": reason, "tasks": opened}
    if send_at is not None:
        extra["send_at"] = clock.iso(send_at)
    follow_up = []
    if reminder.kind == "birthday" and customer is not None and customer.birthday:
        # Next year's greeting, scheduled as this one is sent.
        follow_up.append(
            birthday_reminder(
                reminder.dealer_id,
                reminder.customer_id,
                date.fromisoformat(customer.birthday),
                reminder.trigger_at + timedelta(days=1),
            )
        )
    write_all([*batch, *follow_up, *timeline_entries(reminder, status, at, extra)])
    reminders.settle(reminder, status, now, reason=reason, fired_by=fired_by, send_at=send_at)
    count("RemindersFired", status=status)  # sent, deferred or suppressed (the dashboard)
    if vehicle is not None:
        cycle = reminder.kind in SERVICE_KINDS
        if not records.mark_reminded(vehicle, reminder.reminder_id, now, cycle=cycle):
            _end_moot_tasks(reminder, opened, now)
    return Fired(status, reason)


def _end_moot_tasks(reminder: ReminderItem, opened: list[str], now: datetime) -> None:
    """The vehicle moved on while the reminder fired: its tasks end as the change would have ended
    them (a new delivery or a transfer cancels them; a service does them)."""
    assert reminder.vin is not None
    vehicle = records.get_vehicle(reminder.dealer_id, reminder.vin)
    moved = vehicle is None or vehicle.delivered_at != reminder.delivered_at or vehicle.transferred_at
    for task_id in opened:
        if moved:
            tasks.cancel(reminder.dealer_id, task_id, now, SUPERSEDED)
        else:
            tasks.close(reminder.dealer_id, task_id, now, SYSTEM)


def fire_by_km(vehicle: VehicleItem, now: datetime, read_at: datetime) -> Fired | None:
    """A reading reached the current cycle's threshold before its date: fire its reminder now."""
    cycle = vehicle.next_service or {}
    reminder = reminders.get(records.vehicle_pk(vehicle.dealer_id, vehicle.vin), cycle.get("reminder_id", ""))
    if reminder is None:
        return None
    return fire(reminder, now, fired_by="km", at=read_at, vehicle=vehicle)


def reached_threshold(vehicle: VehicleItem, km: int) -> bool:
    """Whether a reading of `km` fires the vehicle's current service reminder (not fired yet)."""
    cycle = vehicle.next_service
    return bool(cycle) and vehicle.service_reminder_fired != cycle["reminder_id"] and km >= cycle["remind_km"]


def close_cycle_tasks(dealer_id: str, reminder_id: str, kind: str, now: datetime, by: str) -> None:
    """A service completed the cycle whose reminder went out: its care call and booking are done."""
    for task_kind, _ in REMINDER_TASKS.get(kind, ()):
        tasks.close(dealer_id, task_rules.task_id(task_kind, reminder_id), now, by)


def run_due(now: datetime, page: int = 200, max_pages: int = 50) -> dict[str, int]:
    """Fire every reminder whose time has come (the sweep): reads only what is due, again until
    nothing new is (a fired reminder may schedule its next stage, already due in a late sweep)."""
    counts: dict[str, int] = {}
    seen: set[str] = set()
    for _ in range(max_pages):
        due = [r for r in reminders.due(now, limit=page) if r.reminder_id not in seen]
        for reminder in due:
            seen.add(reminder.reminder_id)
            try:
                fired = fire(reminder, now)
            except Exception as exc:  # one reminder's fault must not stop everyone's: it stays due
                logger.warning(
                    "reminder not fired",
                    extra={
                        "reminder_id": reminder.reminder_id,
                        "kind": reminder.kind,
                        "error": repr(exc)[:300],
                    },
                )
                count("RemindersFailed", kind=reminder.kind)
                counts["failed"] = counts.get("failed", 0) + 1
                continue
            counts[fired.status] = counts.get(fired.status, 0) + 1
        if not due:
            break
    return counts
