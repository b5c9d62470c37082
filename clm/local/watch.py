"""What the local stack sends out, where a person can see it: `clm watch`.

On AWS, SNS delivers a topic's messages to its subscribers and SMS to phones; on the local stack
both end inside the embedded AWS. Its process therefore appends every publish it accepts (topic
messages with their attributes, SMS with the number) as one JSON line to
`.clm/notifications.jsonl`, and `clm watch` follows that file. Reminders that sent no SMS yet
(deferred to 08:00) or none at all (suppressed, closed: and why) are lines there too, taken from
the timeline entries the embedded DynamoDB stores. The file starts empty with each run of the
stack, as the embedded AWS does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILE_NAME = "notifications.jsonl"


def _attributes(raw: dict[str, Any] | None) -> dict[str, Any]:
    """SNS message attributes as name -> value (arrays as lists)."""
    out: dict[str, Any] = {}
    for name, typed in (raw or {}).items():
        if isinstance(typed, dict):
            value = typed.get("StringValue", typed.get("Value", typed.get("BinaryValue")))
            kind = typed.get("DataType", typed.get("Type"))  # moto keeps SNS's `Type`/`Value` shape
            if kind == "String.Array" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            out[name] = value
        else:
            out[name] = typed
    return out


_lock = threading.Lock()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _append(path: Path, entry: dict[str, Any]) -> None:
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    with _lock, path.open("a", encoding="utf-8") as out:
        out.write(line)


def record_publishes(path: Path) -> Callable[[], None]:
    """In the embedded AWS process: append every SNS publish moto accepts to `path`; returns the undo."""
    from moto.sns.models import SNSBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    original = SNSBackend.publish

    def publish(
        self: Any, message: str, arn: str | None, phone_number: str | None = None, **kwargs: Any
    ) -> str:
        message_id: str = original(self, message, arn, phone_number=phone_number, **kwargs)
        entry = {
            "at": _now(),
            "channel": "sms" if phone_number else "sns",
            "to": phone_number or arn,
            "attributes": _attributes(kwargs.get("message_attributes")),
            "message": message,
            "message_id": message_id,
        }
        _append(path, entry)
        return message_id

    SNSBackend.publish = publish  # type: ignore[method-assign,assignment]

    def undo() -> None:
        SNSBackend.publish = original  # type: ignore[method-assign]

    return undo


SILENT_OUTCOMES = ("reminder.deferred", "reminder.suppressed", "reminder.closed")


def _written_items(operation: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    if operation == "PutItem":
        return [request.get("Item") or {}]
    if operation == "BatchWriteItem":
        return [
            put["PutRequest"]["Item"]
            for writes in (request.get("RequestItems") or {}).values()
            for put in writes
            if "PutRequest" in put
        ]
    return []


def reminder_entry(item: dict[str, Any]) -> dict[str, Any] | None:
    """The watch line of a stored timeline entry that says a reminder sent no SMS (now, or at all)."""
    event_type = (item.get("event_type") or {}).get("S", "")
    if (item.get("et") or {}).get("S") != "timeline" or event_type not in SILENT_OUTCOMES:
        return None
    try:
        from chalicelib import envelope

        # Sealed at rest (`SealedJSONAttribute`); its data key is this process's own, in memory.
        summary = json.loads(envelope.open_sealed((item.get("summary") or {}).get("S", "{}")))
    except (ValueError, KeyError):
        summary = {}
    owner = (item.get("pk") or {}).get("S", "")
    status = event_type.removeprefix("reminder.")
    attributes = {"status": status, "reason": summary.get("reason")}
    if summary.get("send_at"):
        attributes["send_at"] = summary["send_at"]
    return {
        "at": _now(),
        "channel": "reminder",
        "to": owner.split("#", 1)[-1],  # <dealer>#<vin> (or #<customer id>)
        "attributes": {k: v for k, v in attributes.items() if v is not None},
        "message": f"{summary.get('kind')} {status}",
    }


_reminders_to: list[Path] = []  # where the DynamoDB hook writes (installed once per process)


def record_reminders(path: Path) -> Callable[[], None]:
    """In the embedded AWS process: append a line for each reminder outcome without an SMS;
    returns the undo."""
    from moto.dynamodb.responses import DynamoHandler

    from clm.local.moto_speedups import around_call_action

    def watch(handler: Any, proceed: Callable[[], Any]) -> Any:
        answer = proceed()
        target = handler.headers.get("X-Amz-Target") or handler.headers.get("x-amz-target") or ""
        operation = target.rpartition(".")[2]
        if _reminders_to and operation in ("PutItem", "BatchWriteItem"):
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                body = handler.body  # moto's DynamoDB handler holds it parsed; raw text otherwise
                request = body if isinstance(body, dict) else json.loads(body)
                for item in _written_items(operation, request):
                    entry = reminder_entry(item)
                    if entry is not None:
                        _append(_reminders_to[0], entry)
        return answer

    around_call_action(DynamoHandler, "_clm_watch_reminders", watch)
    _reminders_to[:] = [path]
    return _reminders_to.clear


def follow(path: Path, *, from_start: bool, stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
    """Each entry of `path` as it is written (from its end, or from its start); ends when `stop` is set."""
    while not path.exists():
        if stop is not None and stop.is_set():
            return
        time.sleep(0.1)
    with path.open(encoding="utf-8") as source:
        if not from_start:
            source.seek(0, 2)
        pending = ""
        while stop is None or not stop.is_set():
            chunk = source.readline()
            if not chunk:
                if path.stat().st_size < source.tell():  # a new run of the stack started the file again
                    source.seek(0)
                time.sleep(0.1)
                continue
            pending += chunk
            if not pending.endswith("\n"):
                continue
            line, pending = pending, ""
            try:
                yield json.loads(line)
            except ValueError:
                continue


def render(entry: dict[str, Any]) -> str:
    """One line a person reads: time, channel, where to, attributes, body."""
    to = str(entry.get("to") or "")
    if entry.get("channel") == "sns":
        to = to.rsplit(":", 1)[-1]  # the topic's name, not its whole ARN
    attributes = " ".join(f"{k}={v}" for k, v in sorted((entry.get("attributes") or {}).items()))
    parts = [str(entry.get("at", "")), str(entry.get("channel", "")).upper(), to]
    if attributes:
        parts.append(f"[{attributes}]")
    parts.append(str(entry.get("message", "")))
    return "  ".join(parts)
