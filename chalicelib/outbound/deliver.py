"""Deliver one outbox message to SNS, once.

Powertools idempotency guards the publish: two concurrent deliveries of the same message (a
stream record and a sweeper re-drive, or an SQS redelivery) publish it once. A crash between
publish and bookkeeping can still repeat it: delivery is at-least-once, never lost. A throttled
write after the publish is not a crash: the bookkeeping is retried (`_after_publish`) rather than
handed back to Powertools, which would forget the publish and let the retry send it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chalicelib import aws, clock, runtime
from chalicelib.settings import get_settings
from chalicelib.store import cases, outbox, records, reminders, write_all

IDEMPOTENCY_TTL = timedelta(days=7)
PAUSE_RECHECK = timedelta(hours=1)  # a paused overdue SMS is looked at again this often
BOOKKEEPING_TRIES = 5  # after a publish, its record is written again on failure, after a backoff
BOOKKEEPING_BACKOFF_S = 0.05  # doubled on each try: 50 ms, 100 ms, 200 ms, 400 ms
IN_PROGRESS_MS = 60_000  # without a Lambda context, a delivery not done by then is presumed dead
_guarded: Callable[..., Any] | None = None
_config: Any = None


def _attributes(attributes: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if isinstance(value, list):
            out[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        else:
            out[name] = {"DataType": "String", "StringValue": str(value)}
    return out


def publish(message: outbox.OutboxItem) -> str:
    """Send one stored message; returns the SNS message id."""
    sns = aws.client("sns")
    if message.channel == "sms":
        attrs = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        out = sns.publish(PhoneNumber=message.target, Message=message.message, MessageAttributes=attrs)
    else:
        out = sns.publish(
            TopicArn=get_settings().topics[message.target],
            Message=message.message,
            MessageAttributes=_attributes(message.attributes),
        )
    message_id: str = out["MessageId"]
    return message_id


def _withheld(message: outbox.OutboxItem) -> str | None:
    """Why an SMS must not go out after all: the customer opted out since it was recorded, or the
    number is on SNS's opted-out list (a reply of STOP). Checked right before each send."""
    attrs = message.attributes or {}
    customer = records.get_customer(attrs.get("dealer_id", ""), attrs.get("customer_id", ""))
    if customer is not None and customer.sms_opt_out:
        return "sms_opt_out"
    if customer is not None and attrs.get("kind") == "birthday" and customer.care_opt_out:
        return "care_opt_out"
    if attrs.get("kind") in ("repayment", "overdue"):  # paid between the reminder firing and 08:00
        reminder = reminders.get(attrs.get("reminder_owner", ""), attrs.get("reminder_id", ""))
        moot = reminders.repaid(reminder) if reminder is not None else None
        if moot is not None:
            return moot
    out = aws.client("sns").check_if_phone_number_is_opted_out(phoneNumber=message.target)
    return "sns_opted_out" if out.get("isOptedOut") else None


def _sms_outcome(message: outbox.OutboxItem, status: str, reason: str | None, now: Any) -> None:
    """What became of a reminder's SMS, on the reminder and on the timeline it belongs to."""
    attrs = message.attributes or {}
    owner, reminder_id = attrs.get("reminder_owner"), attrs.get("reminder_id")
    if not owner or not reminder_id:
        return
    reminders.after_send(owner, reminder_id, status, now, reason)
    deferred = message.send_after is not None and message.send_after > message.created_at
    if status == "sent" and not deferred:
        return  # sent as it fired: its timeline entry says so already
    entry = records.timeline_entry(
        owner,
        now,
        f"{reminder_id}-{status}",
        f"reminder.{status}",
        "clm",
        attrs.get("dealer_id"),
        {"kind": attrs.get("kind"), "reminder_id": reminder_id, "reason": reason},
    )
    entry.save()


def _deliver(outbox_id: str) -> dict[str, str]:
    item = outbox.get(outbox_id)
    if item is None:
        raise LookupError(f"outbox message {outbox_id} not found")
    if item.status in ("delivered", "suppressed"):
        return {"outbox_id": outbox_id, "status": f"already_{item.status}"}
    now = clock.now()
    if item.channel == "sms":
        reason = _withheld(item)
        if reason is not None:
            outbox.mark_delivered(outbox_id, now, status="suppressed")
            _sms_outcome(item, "suppressed", reason, now)
            return {"outbox_id": outbox_id, "status": "suppressed", "reason": reason}
    message_id = publish(item)
    _after_publish(item, now)
    return {"outbox_id": outbox_id, "status": "delivered", "message_id": message_id}


def _after_publish(item: outbox.OutboxItem, now: Any) -> None:
    """Record a message that went out, retrying a failed write (a throttle): raising here would
    make Powertools forget the publish, and the retry would send the message a second time. Every
    write is idempotent, so writing again is harmless."""
    for attempt in range(BOOKKEEPING_TRIES):
        try:
            outbox.mark_delivered(item.outbox_id, now)
            if item.channel == "sms":
                _sms_outcome(item, "sent", None, now)
            return
        except Exception:
            if attempt == BOOKKEEPING_TRIES - 1:
                raise  # at-least-once: the retry may send it again
            time.sleep(BOOKKEEPING_BACKOFF_S * 2**attempt)


def _build_guard() -> Callable[..., Any]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#outbox",
        expiry_attr="expires_at",
        boto3_client=aws.client("dynamodb"),
    )
    global _config
    config = _config = IdempotencyConfig(expires_after_seconds=int(IDEMPOTENCY_TTL.total_seconds()))

    @idempotent_function(data_keyword_argument="ref", persistence_store=persistence, config=config)
    def deliver_once(ref: dict[str, str]) -> dict[str, str]:
        return _deliver(ref["outbox_id"])

    return deliver_once


def _sms_waits(outbox_id: str) -> str | None:
    """Whether an SMS must wait (outside the idempotency guard, which would remember the answer):
    for its send time (`queued`), or for a send slot (`rate_limited`); the sweep sends it then."""
    item = outbox.get(outbox_id)
    if item is None or item.status != "queued":
        return None
    if item.send_after is not None and item.send_after > clock.now():
        return "queued"
    if _paused(item):
        return "paused"
    if not outbox.take_sms_slot(clock.system_now(), get_settings().sms_rate):
        return "rate_limited"
    return None


def _paused(item: outbox.OutboxItem) -> bool:
    """An overdue SMS about a vehicle with an open red-alert complaint waits, whenever that complaint
    came (after the SMS was queued for 08:00, say): its send time moves on by `PAUSE_RECHECK`."""
    attrs = item.attributes or {}
    if attrs.get("kind") != "overdue":
        return False
    owner, reminder_id = attrs.get("reminder_owner", ""), attrs.get("reminder_id", "")
    reminder = reminders.get(owner, reminder_id)
    if reminder is None:
        return False
    vin = reminder.vin or (reminder.details or {}).get("vin")
    if not vin:
        return False
    vehicle = records.get_vehicle(reminder.dealer_id, vin)
    if vehicle is None or not vehicle.red_complaints:
        return False
    still_open = cases.open_red_complaints(reminder.dealer_id, vin, list(vehicle.red_complaints))
    if not still_open:
        return False
    now = clock.now()
    if outbox.defer_sms(item.outbox_id, now + PAUSE_RECHECK):
        summary = {"kind": "overdue", "reminder_id": reminder_id, "reason": "red_complaint_open"}
        paused = f"{reminder_id}-paused"
        write_all(
            [
                records.timeline_entry(
                    o,
                    item.created_at,  # once per message, however many hours it stays paused
                    paused,
                    "reminder.paused",
                    "clm",
                    reminder.dealer_id,
                    summary | {"complaint_ids": still_open},
                )
                for o in reminders.timeline_owners(reminder)
            ]
        )
    return True


def deliver(outbox_id: str, lambda_context: Any = None) -> dict[str, str]:
    """Publish one outbox message unless it was already published (or is being published)."""
    if outbox_id.startswith(outbox.SMS_PREFIX):
        waits = _sms_waits(outbox_id)
        if waits is not None:
            return {"outbox_id": outbox_id, "status": waits}
    global _guarded
    if _guarded is None:
        _guarded = _build_guard()
    # Lets Powertools expire an in-progress record when this invocation times out (one left behind
    # by a failed delete would otherwise block the message for the idempotency TTL). Registered on
    # every call: a context kept from an earlier invocation would tell a stale remaining time.
    _config.register_lambda_context(lambda_context or _NoLambdaContext())
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    try:
        result: dict[str, str] = _guarded(ref={"outbox_id": outbox_id})
    except IdempotencyAlreadyInProgressError:
        # Published and recorded, but Powertools' own success write failed: done, not in progress.
        item = outbox.get(outbox_id)
        if item is None or item.status not in ("delivered", "suppressed"):
            raise
        return {"outbox_id": outbox_id, "status": f"already_{item.status}"}
    return result


class _NoLambdaContext:
    """A sweep or `clm` call: an in-progress delivery expires after `IN_PROGRESS_MS`."""

    def get_remaining_time_in_millis(self) -> int:
        return IN_PROGRESS_MS


@runtime.keeps_state
def reset() -> None:
    """Forget the idempotency layer (it holds a client bound to one endpoint)."""
    global _guarded, _config
    _guarded = _config = None
