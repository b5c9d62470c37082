"""What the local stack sends out, where a person can see it: `clm watch`.

On AWS, SNS delivers a topic's messages to its subscribers and SMS to phones; on the local stack
both end inside the embedded AWS. Its process therefore appends every publish it accepts (topic
messages with their attributes, SMS with the number) as one JSON line to
`.clm/notifications.jsonl`, and `clm watch` follows that file. The file starts empty with each
run of the stack, as the embedded AWS does.
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


def record_publishes(path: Path) -> Callable[[], None]:
    """In the embedded AWS process: append every SNS publish moto accepts to `path`; returns the undo."""
    from moto.sns.models import SNSBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    lock = threading.Lock()
    original = SNSBackend.publish

    def publish(
        self: Any, message: str, arn: str | None, phone_number: str | None = None, **kwargs: Any
    ) -> str:
        message_id: str = original(self, message, arn, phone_number=phone_number, **kwargs)
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "channel": "sms" if phone_number else "sns",
            "to": phone_number or arn,
            "attributes": _attributes(kwargs.get("message_attributes")),
            "message": message,
            "message_id": message_id,
        }
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with lock, path.open("a", encoding="utf-8") as out:
            out.write(line)
        return message_id

    SNSBackend.publish = publish  # type: ignore[method-assign,assignment]

    def undo() -> None:
        SNSBackend.publish = original  # type: ignore[method-assign]

    return undo


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
