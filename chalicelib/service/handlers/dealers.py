"""The dealer network: feedback dealers raise with HQ (two clocks) and audits' risk signals
(DESIGN.md §6; seed 000)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.domain import cases as rules
from chalicelib.events.dealer import DealerAuditCompleted, DealerFeedbackOpened, DealerFeedbackReplied
from chalicelib.events.delivery import VehicleDelivered
from chalicelib.observability import count
from chalicelib.outbound import ops
from chalicelib.service import profiles
from chalicelib.service.handlers import Context, Effects, handles, open_task
from chalicelib.service.ownership import Target
from chalicelib.store import cases, outbox, tasks
from chalicelib.store.models import FeedbackItem


@handles(DealerFeedbackOpened)
def on_feedback_opened(ctx: Context, data: DealerFeedbackOpened, target: Target, effects: Effects) -> None:
    """Open HQ's two clocks: first reply within 24 h, solution within 72 h.

    Each side writes what it knows before it reads the other's: the dealer is noted under the
    feedback id, and its clocks opened, before HQ's early replies and the record are read; HQ's
    reply notes itself before it looks for the dealer, and files itself before it stops clocks.
    Whichever runs second sees the other, in any interleaving.
    """
    assert target.dealer_id is not None
    dealer_id = target.dealer_id
    cases.feedback_ref(data.feedback_id, dealer_id, ctx.received_at).save()
    fields = {"feedback_id": data.feedback_id, "category": data.category, "text": data.text}
    record = cases.open_feedback(dealer_id, {**fields, "opened_at": data.opened_at}, ctx.now)
    for task in rules.feedback_tasks(dealer_id, data.feedback_id, data.opened_at):
        open_task(ctx, dealer_id, task, effects)
    by = "hq"
    dealers, early = cases.feedback_refs(data.feedback_id)
    if dealers and dealers[0] == dealer_id:  # the replies that waited are for the first to open it
        for webhook_id, reply in early:
            by = reply["by"]
            at = datetime.fromisoformat(reply["at"])
            cases.reply_feedback(dealer_id, data.feedback_id, reply["kind"], at, ctx.now)
            cases.drop_early_reply(data.feedback_id, webhook_id)
    # Read again now that the clocks exist: a reply applied meanwhile found none to stop.
    _stop_clocks(ctx, dealer_id, cases.get_record("feedback", record.pk) or record, by)


@handles(DealerFeedbackReplied)
def on_feedback_replied(ctx: Context, data: DealerFeedbackReplied, target: Target, effects: Effects) -> None:
    """HQ's reply stops the first-reply clock; a solution stops both. One with `dealer_id` answers
    that dealer's feedback; one without answers the feedback of that id that reached CLM first
    (another dealer using the same id later changes nothing for it), and while no dealer has
    opened one, it waits for the first that does."""
    dealer_id = target.dealer_id
    if dealer_id is None:
        reply: dict[str, Any] = {"kind": data.kind, "by": data.by, "at": data.at.isoformat()}
        cases.early_reply(data.feedback_id, reply, ctx.webhook_id).save()
        dealers, _ = cases.feedback_refs(data.feedback_id)
        if not dealers:
            return  # applied when the first dealer's feedback of this id arrives
        cases.drop_early_reply(data.feedback_id, ctx.webhook_id)
        dealer_id = dealers[0]
    record = cases.reply_feedback(dealer_id, data.feedback_id, data.kind, data.at, ctx.now)
    _stop_clocks(ctx, dealer_id, record, data.by)


def _stop_clocks(ctx: Context, dealer_id: str, record: FeedbackItem, by: str) -> None:
    """Close the clocks the replies on file stopped (tasks not opened yet are closed when they are)."""
    for clock_name, at in (("first_reply", record.first_reply_at), ("solution", record.solution_at)):
        if at is not None:
            tasks.close(
                dealer_id, rules.feedback_task_id(dealer_id, record.feedback_id, clock_name), ctx.now, by
            )


@handles(DealerAuditCompleted)
def on_audit(ctx: Context, data: DealerAuditCompleted, target: Target, effects: Effects) -> None:
    """A shortfall (stock, documents, GPS below 95 % online) is a risk signal: kept on the dealer,
    and told to ops once per audit."""
    assert target.dealer_id is not None
    reasons = rules.audit_risks(
        data.inventory_expected, data.inventory_found, data.documents_complete, data.gps_online_ratio
    )
    if not reasons:
        return
    figures = {
        "inventory_expected": data.inventory_expected,
        "inventory_found": data.inventory_found,
        "documents_complete": data.documents_complete,
        "gps_online_ratio": data.gps_online_ratio,
    }
    effects.puts.append(
        cases.risk_signal(target.dealer_id, data.audited_at, reasons, figures, ctx.webhook_id)
    )
    if outbox.put(
        ops.risk_signal(target.dealer_id, data.audited_at, reasons, figures, ctx.webhook_id), ctx.now
    ):
        count("DealerRiskSignals", dealer_id=target.dealer_id)


@handles(VehicleDelivered)
def on_delivery_staff(ctx: Context, data: VehicleDelivered, target: Target, effects: Effects) -> None:
    """A delivery names the dealer's advisor and specialist (incentives list them every month),
    and its packages go to the customer's tags."""
    assert target.dealer_id is not None
    effects.puts.append(cases.staff_member(target.dealer_id, "sales", data.sales_advisor.id))
    effects.puts.append(cases.staff_member(target.dealer_id, "after_sales", data.service_specialist.id))
    effects.puts.append(profiles.delivery(target.dealer_id, data))
