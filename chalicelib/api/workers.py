"""Asynchronous handlers: the table stream, the work queue, and the sweep schedule."""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.observability import logger
from chalicelib.settings import WORK_MAX_RECEIVES, get_settings, resource_names

workers = Blueprint(__name__)
_settings = get_settings()


@workers.on_dynamodb_record(stream_arn=_settings.stream_arn, batch_size=50, name="table_stream")
def on_table_change(event: Any) -> None:
    """Apply new events and deliver new outbox messages; a failure goes to the retry queue.

    Raising here would block the whole shard, so a failed unit is handed to SQS (retries with
    backoff, then the DLQ). Only when even that fails does the batch raise and the stream retry.
    """
    from chalicelib.service import work

    retry: list[dict[str, str]] = []
    for record in event:
        ref = work.from_stream_record(record.to_dict() if hasattr(record, "to_dict") else record)
        if ref is None:
            continue
        try:
            work.handle(ref, event.context)
        except Exception as exc:
            logger.warning(
                "work failed; queued for retry", extra={"kind": ref["kind"], "error": repr(exc)[:300]}
            )
            work.note_failure(ref, exc)
            retry.append(ref)
    if retry:
        work.enqueue(retry, delay_seconds=work.RETRY_DELAY_SECONDS)


@workers.on_sqs_message(queue=resource_names(_settings.stage)["work"], batch_size=1, name="work_queue")
def on_work(event: Any) -> None:
    """Retry a unit of work; raising leaves the message for SQS to redeliver (then the DLQ)."""
    from chalicelib.service import work

    for record in event:
        ref = json.loads(record.body)
        receives = int(record.to_dict().get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            work.handle(ref, event.context)
        except Exception as exc:
            # The queue moves a message to the DLQ after its last receive: the event's sender sees it.
            work.note_failure(ref, exc, last_attempt=receives >= WORK_MAX_RECEIVES)
            raise


@workers.schedule(Rate(1, unit=Rate.MINUTES), name="sweep")
def on_schedule(event: Any) -> dict[str, Any]:
    from chalicelib import clock
    from chalicelib.service.sweep import sweep

    report = sweep(clock.now())
    logger.info("sweep done", extra=report.to_json())
    return report.to_json()
