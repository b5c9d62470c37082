"""Units of asynchronous work and how they reach a worker.

A unit is a small JSON reference: ``{"kind": "inbox", "partner_id", "webhook_id"}`` (apply an
accepted event), ``{"kind": "outbox", "outbox_id"}`` (deliver a notification) or
``{"kind": "tags", "dealer_id", "customer_id"}`` (refresh a customer's preference tags; its
dead-letter copy adds ``"why"``, the error of its last attempt). The table
stream produces them as items are written; failures and re-drives go through the SQS work queue,
whose redrive policy ends repeated failures in the dead-letter queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib import aws
from chalicelib.settings import get_settings

WorkRef = dict[str, str]
RETRY_DELAY_SECONDS = 5  # first retry after a stream failure; SQS visibility spaces later ones


def inbox_ref(partner_id: str, webhook_id: str) -> WorkRef:
    return {"kind": "inbox", "partner_id": partner_id, "webhook_id": webhook_id}


def outbox_ref(outbox_id: str) -> WorkRef:
    return {"kind": "outbox", "outbox_id": outbox_id}


def tags_ref(dealer_id: str, customer_id: str) -> WorkRef:
    return {"kind": "tags", "dealer_id": dealer_id, "customer_id": customer_id}


def from_stream_record(record: Mapping[str, Any]) -> WorkRef | None:
    """The work a stream record calls for: a new inbox or outbox item, a new or rewritten tag
    signal; None for anything else.

    The stream carries keys only (a webhook body can be 256 KiB; a Lambda batch must stay under
    6 MB), and the keys say everything needed: ``INBOX#<partner>#<webhook id>``, ``OUTBOX#<id>``,
    ``CUST#<dealer>#<customer>`` with ``SIGNAL#…``.
    """
    name = record.get("eventName")
    keys = record.get("dynamodb", {}).get("Keys", {})
    pk = keys.get("pk", {}).get("S", "")
    kind, _, rest = pk.partition("#")
    if kind == "CUST" and name in ("INSERT", "MODIFY"):
        from chalicelib.store.profiles import customer_of_signal

        owner = customer_of_signal(pk, keys.get("sk", {}).get("S", ""))
        return tags_ref(*owner) if owner is not None else None
    if name != "INSERT":
        return None
    if kind == "INBOX":
        partner_id, _, webhook_id = rest.partition("#")  # partner ids never contain '#'
        if partner_id and webhook_id:
            return inbox_ref(partner_id, webhook_id)
    if kind == "OUTBOX" and rest:
        return outbox_ref(rest)
    return None


def handle(ref: Mapping[str, str], lambda_context: Any = None) -> str:
    """Do one unit of work (idempotent)."""
    if ref.get("kind") == "inbox":
        from chalicelib.service.process import process
        from chalicelib.store.inbox import InboxRef

        return process(InboxRef(ref["partner_id"], ref["webhook_id"]))
    if ref.get("kind") == "outbox":
        from chalicelib.outbound.deliver import deliver

        return deliver(ref["outbox_id"], lambda_context)["status"]
    if ref.get("kind") == "tags":
        from chalicelib import clock
        from chalicelib.service.profiles import refresh

        return refresh(ref["dealer_id"], ref["customer_id"], clock.now())
    raise ValueError(f"unknown work kind {ref.get('kind')!r}")


def note_failure(ref: Mapping[str, str], error: BaseException, *, last_attempt: bool = False) -> bool:
    """Count a failed attempt (it is handed to the retry queue now); `last_attempt` when the queue
    sends it to the DLQ next. True when this failure used up the work's attempts and it is now in
    the dead-letter queue: the caller must not retry it."""
    from chalicelib.observability import error_summary

    why = error_summary(error)
    exhausted = False
    if ref.get("kind") == "outbox":
        from chalicelib import clock
        from chalicelib.store import outbox

        exhausted = outbox.handed_off(ref["outbox_id"], clock.system_now(), error=why) == "exhausted"
    if ref.get("kind") == "inbox":
        from chalicelib.store.inbox import InboxRef, note_failure

        exhausted = note_failure(
            InboxRef(ref["partner_id"], ref["webhook_id"]), why, last_attempt=last_attempt
        )
    if last_attempt:  # the queue moves this very message to the DLQ: only the bookkeeping is left
        if ref.get("kind") == "outbox":  # (an event: `inbox.note_failure` dead-lettered it)
            _given_up(ref, None)
        if ref.get("kind") == "tags":
            # No item keeps a refresh's error, so its DLQ copy carries it (`clm dlq list`'s why).
            # Should this send fail, the queue moves the message itself, without the why.
            dead_letter([{**ref, "why": why}])
            return True
        return False
    if not exhausted:
        return False
    dead_letter([dict(ref)])
    return True


def retry_later(ref: WorkRef, error: BaseException) -> None:
    """A unit that failed outside the work queue (the stream, a released event): counted, then
    retried through the queue after `RETRY_DELAY_SECONDS`, or dead-lettered once out of attempts."""
    if not note_failure(ref, error):
        enqueue([ref], delay_seconds=RETRY_DELAY_SECONDS)


def dead_letter(refs: Iterable[WorkRef], why: str | None = None) -> None:
    """Give units up: into the dead-letter queue first (where `clm dlq` and the DLQ alarm see
    them), then out of the re-drive queues. A failure in between leaves a unit pending: it comes
    here again, and a replay of two copies applies it once. `why` stands in for a missing error."""
    batch = list(refs)
    _send(batch, "dlq")
    for ref in batch:
        _given_up(ref, why)


def _given_up(ref: Mapping[str, str], why: str | None) -> None:
    if ref.get("kind") == "inbox":
        from chalicelib.store import inbox

        inbox.dead_letter(inbox.InboxRef(ref["partner_id"], ref["webhook_id"]), why)
    elif ref.get("kind") == "outbox":
        from chalicelib.store import outbox

        outbox.give_up(ref["outbox_id"], why)


def enqueue(refs: Iterable[WorkRef], delay_seconds: int = 0, why: str = "retry") -> None:
    """Put units on the work queue (batches of 10, SQS's limit); raises if any entry failed.

    Counted (`WorkQueued`, by `why`: retry or redrive): in a healthy burst nothing is queued.
    """
    _send(list(refs), "work", delay_seconds, why)


def _send(batch: list[WorkRef], queue: str, delay_seconds: int = 0, why: str = "dead_letter") -> None:
    if not batch:
        return
    from chalicelib.observability import count

    count("WorkQueued" if queue == "work" else "WorkDeadLettered", len(batch), why=why)
    sqs = aws.client("sqs")
    url = get_settings().queue_urls[queue]
    for start in range(0, len(batch), 10):
        chunk = batch[start : start + 10]
        out = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "MessageBody": json.dumps(ref), "DelaySeconds": delay_seconds}
                for i, ref in enumerate(chunk)
            ],
        )
        if out.get("Failed"):
            raise RuntimeError(f"{len(out['Failed'])} message(s) were not queued on {queue}")
