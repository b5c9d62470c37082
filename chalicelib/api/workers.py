"""Asynchronous handlers: the table stream, the work queue, and the sweep schedule.

Stream and queue consumers report failures per record (Powertools batch processing, Lambda's
`ReportBatchItemFailures`, set on their event sources in `infra/`): one bad record never makes
the good ones of its batch run again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.observability import error_summary, logger
from chalicelib.settings import WORK_MAX_RECEIVES, get_settings, resource_names

workers = Blueprint(__name__)
_settings = get_settings()
STREAM_BATCH = 20  # a keys-only record is small; Lambda's 6 MB batch limit is far
QUEUE_BATCH = 10  # SQS's largest batch


def _partial(
    event: Any, event_type: str, record_handler: Any, raw: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run `record_handler` on every record (of `raw`, if given, else of the event); the failed
    ones are reported, not raised."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType[event_type], raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(
            event=raw if raw is not None else event.to_dict(),
            record_handler=record_handler,
            processor=processor,
            context=event.context,
        )
    )


def _stream_record(record: Any, lambda_context: Any = None, *, work_of: Mapping[str, Any]) -> None:
    """Apply a new event, deliver a new message or refresh a customer's tags; a failure goes to
    the retry queue.

    Raising would hold the whole shard up, so a failed unit is handed to SQS (retries with
    backoff, then the DLQ); only when even that fails is the record reported failed, and the
    stream retries it. `work_of` is the batch's work by sequence number (`on_table_change`).
    """
    from chalicelib.service import work

    ref = work_of.get(record.dynamodb.sequence_number)
    if ref is None:
        return
    try:
        work.handle(ref, lambda_context)
    except Exception as exc:
        logger.warning(
            "work failed; queued for retry", extra={"kind": ref["kind"], "error": error_summary(exc)}
        )
        work.retry_later(ref, exc)


def _queue_record(record: Any, lambda_context: Any = None) -> None:
    """Retry a unit of work; raising leaves the message for SQS to redeliver (then the DLQ)."""
    from chalicelib.service import work

    ref = json.loads(record.body)
    try:
        work.handle(ref, lambda_context)
    except Exception as exc:
        # The queue moves a message to the DLQ after its last receive: the event's sender sees it.
        last = int(record.attributes.approximate_receive_count) >= WORK_MAX_RECEIVES
        if work.note_failure(ref, exc, last_attempt=last):
            return  # out of attempts, and now in the DLQ: this message is done with
        raise


@workers.on_dynamodb_record(stream_arn=_settings.stream_arn, batch_size=STREAM_BATCH, name="table_stream")
def on_table_change(event: Any) -> dict[str, Any]:
    from functools import partial

    from chalicelib.service import work

    raw = event.to_dict()
    first, refreshes = [], []
    work_of: dict[str, Any] = {}
    last_signal: dict[tuple[str, str], str] = {}
    for record in raw.get("Records", []):
        sequence = record["dynamodb"]["SequenceNumber"]
        ref = work_of[sequence] = work.from_stream_record(record)
        if ref is not None and ref["kind"] == "tags":
            # A refresh reads every signal, all written by now: the customer's last one refreshes.
            previous = last_signal.get((ref["dealer_id"], ref["customer_id"]))
            if previous is not None:
                work_of[previous] = None
            last_signal[(ref["dealer_id"], ref["customer_id"])] = sequence
            refreshes.append(record)
        else:
            first.append(record)
    # Events and messages first, tag refreshes after them: what the sender waits for is not held
    # up by a read model (a failure is reported by sequence number whatever the order).
    handler = partial(_stream_record, work_of=work_of)
    return _partial(event, "DynamoDBStreams", handler, {**raw, "Records": [*first, *refreshes]})


@workers.on_sqs_message(
    queue=resource_names(_settings.stage)["work"], batch_size=QUEUE_BATCH, name="work_queue"
)
def on_work(event: Any) -> dict[str, Any]:
    return _partial(event, "SQS", _queue_record)


def _scheduled(schedule: str) -> dict[str, Any]:
    from chalicelib import clock
    from chalicelib.service.sweep import SCHEDULES, sweep

    report = sweep(clock.now(), jobs=SCHEDULES[schedule])
    logger.info("sweep done", extra={"schedule": schedule, **report.to_json()})
    return report.to_json()


@workers.schedule(Rate(1, unit=Rate.HOURS), name="sweep_reminders")
def on_reminders_schedule(event: Any) -> dict[str, Any]:
    """Hourly: reminders whose time has come, and the SMS due (08:00 sends the night's)."""
    return _scheduled("reminders")


@workers.schedule(Rate(5, unit=Rate.MINUTES), name="sweep_deadlines")
def on_deadlines_schedule(event: Any) -> dict[str, Any]:
    """Every 5 minutes: overdue tasks, SMS left by the rate, and housekeeping."""
    return _scheduled("deadlines")
