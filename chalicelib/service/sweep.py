"""Every time-driven job, as of one instant. The schedules and `clm sweep --at` both call `sweep`.

Business jobs (reminders, SMS whose time has come, overdue tasks) run as of the given instant;
housekeeping (re-driving stuck work, expiring events that waited too long for a delivery) keeps
the real clock, so a sweep far in the future re-drives and expires nothing (DESIGN.md §9).

Two schedules run them on AWS: `reminders` (and the weekly KPI judgement, which does its work
once per week and dealer) hourly, `deadlines` every 5 minutes (the local stack:
both every minute); `clm sweep` runs all of them. Each job reads only what is due, through the
sparse due index: its cost follows what is due, not the fleet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from chalicelib import clock
from chalicelib.domain.reminders import Pacer
from chalicelib.observability import count, error_summary, logger
from chalicelib.outbound import staff
from chalicelib.service import reminders, work
from chalicelib.store import inbox, outbox, records, tasks

LOST_TOO_OFTEN = "re-driven by the sweep too often without finishing (its worker died or timed out each time)"
WAIT_LIMIT = timedelta(days=7)  # then an event about a VIN its sender never delivered is ignored


@dataclass
class SweepReport:
    at: str
    tasks_overdue: int = 0
    breaches_announced: int = 0
    inbox_redriven: int = 0
    outbox_redriven: int = 0
    dead_lettered: int = 0  # lost too often: now in the dead-letter queue, for `clm dlq`
    waiting_expired: int = 0
    payments_redriven: int = 0  # gateway transactions applied again after a failure
    payments_stuck: int = 0  # given up after every re-drive: raised to ops
    reminders: dict[str, int] = field(default_factory=dict)  # fired reminders by outcome
    sms_sent: int = 0
    sms_suppressed: int = 0
    sms_waiting: int = 0  # due, but past this run's budget or the rate: the next run sends them
    kpi_weeks_judged: int = 0  # dealers whose last week the KPI job judged in this run
    improvement_cases: int = 0
    tasks_failed: int = 0  # overdue tasks whose claim or announcement failed: the next run tries again
    jobs_failed: dict[str, str] = field(default_factory=dict)  # job -> why it stopped; the others ran

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def mark_overdue(now: datetime, report: SweepReport) -> None:
    """Claim each task past its deadline, then announce each breach not yet announced. One task's
    failure (a throttled write) leaves it for the next run and does not hold up the others: a claim
    is conditional and announcement happens once, so a retry never doubles either."""
    for task in tasks.due(now):
        try:
            claimed = tasks.claim_overdue(task.dealer_id, task.task_id, now)
        except Exception as exc:
            _task_failed(report, "claim", task.task_id, exc)
            continue
        if claimed:
            report.tasks_overdue += 1
            count("SlaBreaches")  # service only: the SLA alarm watches this series
    for task in tasks.breached_unannounced():
        try:
            for message in staff.breach_messages(task):
                outbox.put(message, now)
            tasks.announced(task.dealer_id, task.task_id)
        except Exception as exc:
            _task_failed(report, "announce", task.task_id, exc)
            continue
        report.breaches_announced += 1


def _task_failed(report: SweepReport, step: str, task_id: str, error: BaseException) -> None:
    report.tasks_failed += 1
    why = {"step": step, "task_id": task_id, "error": error_summary(error)}
    logger.warning("overdue task left for the next run", extra=why)


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
    found: dict[str, list[work.WorkRef]] = {"redriven": [], "exhausted": [], "skipped": []}
    for lost in inbox.stale(before):
        found[inbox.redriven(lost, real_now)].append(work.inbox_ref(lost.partner_id, lost.webhook_id))
    inbox_redriven = len(found["redriven"])
    for outbox_id in outbox.stale(before):
        found[outbox.handed_off(outbox_id, real_now)].append(work.outbox_ref(outbox_id))
    work.enqueue(found["redriven"], why="redrive")
    work.dead_letter(found["exhausted"], why=LOST_TOO_OFTEN)
    report.inbox_redriven = inbox_redriven
    report.outbox_redriven = len(found["redriven"]) - inbox_redriven
    report.dead_lettered = len(found["exhausted"])


def redrive_payments(real_now: datetime, report: SweepReport) -> None:
    """Gateway transactions whose application failed, long after the notification: applied again."""
    from chalicelib.service import payments

    report.payments_redriven, report.payments_stuck = payments.redrive(real_now)


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


def remind(now: datetime, report: SweepReport) -> None:
    """Fire the reminders whose time has come."""
    for status, n in reminders.run_due(now).items():
        report.reminders[status] = report.reminders.get(status, 0) + n


SMS_PAGE = 100
# A send refused for a full second waits for the next one, this many times. The quota counts sends
# per wall-clock second and the pacer spaces them on the monotonic clock, so this run's own sends,
# each stamped a little after its slot, can fill a second by themselves; stopping there would leave
# the rest for the next run. A second full after each wait is other senders' use: then it stops.
RATE_LIMITED_WAITS = 2


def send_sms(
    now: datetime,
    report: SweepReport,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send the SMS whose time has come (deferred past quiet hours, or left by the rate), at the
    configured rate and within this run's budget: what does not fit waits for the next run."""
    from chalicelib.outbound.deliver import deliver
    from chalicelib.settings import get_settings

    settings = get_settings()
    pacer = Pacer(settings.sms_rate, monotonic, sleep)
    deadline = monotonic() + settings.sms_run_seconds
    tried: set[str] = set()
    while True:
        page = [i for i in outbox.queued_sms(now, limit=SMS_PAGE) if i not in tried]
        for position, outbox_id in enumerate(page):
            if not pacer.acquire(deadline):
                report.sms_waiting += len(page) - position
                return
            tried.add(outbox_id)
            try:
                status = deliver(outbox_id)["status"]
                for _ in range(RATE_LIMITED_WAITS):
                    if status != "rate_limited" or not _wait_for_next_second(deadline, monotonic, sleep):
                        break
                    status = deliver(outbox_id)["status"]
            except Exception as exc:  # it stays queued: the next run tries it again
                logger.warning("SMS not sent", extra={"outbox_id": outbox_id, "error": error_summary(exc)})
                count("SmsFailed")
                continue
            if status == "rate_limited":  # other senders hold the quota second after second: the rest waits
                report.sms_waiting += len(page) - position
                return
            if status == "delivered":
                report.sms_sent += 1
            elif status == "suppressed":
                report.sms_suppressed += 1
        if len(page) < SMS_PAGE:
            return


def _wait_for_next_second(
    deadline: float, monotonic: Callable[[], float], sleep: Callable[[float], None]
) -> bool:
    """Sleep until the quota's next second begins (and a millisecond into it, as a sleep may wake a
    hair early); False, without sleeping, when that is past the run's budget."""
    pause = 1.001 - clock.system_now().timestamp() % 1.0
    if monotonic() + pause > deadline:
        return False
    sleep(pause)
    return True


def judge_kpis(now: datetime, report: SweepReport) -> None:
    """The week before `now`'s, once per dealer: KPI metrics, improvement cases (two weeks red)."""
    from chalicelib.service import kpis
    from chalicelib.store.partners import list_partners

    dealers = [p.partner_id for p in list_partners(now) if p.kind == "dealer"]
    judged = kpis.judge_last_week(now, dealers)
    report.kpi_weeks_judged += judged.dealers
    report.improvement_cases += judged.improvement_cases


Job = Literal["reminders", "deadlines", "sms", "kpis", "housekeeping"]
SCHEDULES: dict[str, tuple[Job, ...]] = {
    "reminders": ("reminders", "sms", "kpis"),
    "deadlines": ("deadlines", "sms", "housekeeping"),
}
ALL_JOBS: tuple[Job, ...] = ("reminders", "deadlines", "sms", "kpis", "housekeeping")


def sweep(now: datetime, real_now: datetime | None = None, jobs: Iterable[Job] = ALL_JOBS) -> SweepReport:
    """Run the jobs: business ones as of `now` (pinned for their run, so every rule they reach
    agrees on the instant), housekeeping as of `real_now` (default: the real clock).

    Each job runs even when one before it failed (a throttled call must not cost every other
    job its run); the failures are in `jobs_failed`, and every job reads what is still due, so
    the next run finishes what this one left."""
    housekeeping_at = real_now or clock.system_now()
    chosen = set(jobs)
    report = SweepReport(at=clock.iso(now))
    business: list[tuple[str, Callable[[datetime, SweepReport], None]]] = [
        ("reminders", remind),
        ("deadlines", mark_overdue),
        ("sms", send_sms),
        ("kpis", judge_kpis),
    ]
    with clock.pinned(now):
        for name, job in business:
            if name in chosen:
                _run(name, job, now, report)
    if "housekeeping" in chosen:
        for name, job in (
            ("redrive", redrive),
            ("redrive_payments", redrive_payments),
            ("expire_waiting", expire_waiting),
        ):
            _run(f"housekeeping.{name}", job, housekeeping_at, report)
    return report


def _run(name: str, job: Callable[[datetime, SweepReport], None], at: datetime, report: SweepReport) -> None:
    try:
        job(at, report)
    except Exception as exc:
        report.jobs_failed[name] = why = error_summary(exc)
        count("SweepJobsFailed")  # the job is in the log line; the alarm watches one series
        logger.error("sweep job failed; the next run resumes it", extra={"job": name, "error": why})
