"""What `clm watch` shows: every publish the embedded AWS accepts, SMS with its number."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any


def test_sms_and_topic_messages_are_recorded_and_followed(aws_stack: Any, tmp_path: Path) -> None:
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from clm.local.watch import follow, record_publishes, render

    path = tmp_path / "notifications.jsonl"
    undo = record_publishes(path)
    try:
        sns = aws.client("sns")
        sns.publish(PhoneNumber="+8613800138000", Message="【CLM】您的爱车首保将至")
        sns.publish(
            TopicArn=get_settings().topics["red_alerts"],
            Message='{"complaint_id": "c1"}',
            MessageAttributes={
                "severity": {"DataType": "String", "StringValue": "red"},
                "roles": {"DataType": "String.Array", "StringValue": '["qc", "ops"]'},
            },
        )
    finally:
        undo()
    sns.publish(PhoneNumber="+8613800138001", Message="not recorded: the recorder was taken off")

    stop = threading.Event()
    entries = []
    for entry in follow(path, from_start=True, stop=stop):
        entries.append(entry)
        if len(entries) == 2:
            stop.set()
    sms, alert = entries
    assert (sms["channel"], sms["to"], sms["message"]) == ("sms", "+8613800138000", "【CLM】您的爱车首保将至")
    assert alert["channel"] == "sns" and alert["to"] == get_settings().topics["red_alerts"]
    assert alert["attributes"] == {"severity": "red", "roles": ["qc", "ops"]}
    assert path.read_text(encoding="utf-8").count("\n") == 2
    line = render(alert)
    assert line.split("  ")[1:3] == ["SNS", get_settings().topics["red_alerts"].rsplit(":", 1)[1]]
    assert "severity=red" in line and '{"complaint_id": "c1"}' in line
    assert "+8613800138000" in render(sms) and "首保" in render(sms)


def test_follow_from_the_end_shows_only_what_comes_next(tmp_path: Path, monkeypatch: Any) -> None:
    import time

    from clm.local import watch as watch_module
    from clm.local.watch import follow

    path = tmp_path / "notifications.jsonl"
    path.write_text('{"channel": "sms", "to": "+1", "message": "old"}\n')
    stop = threading.Event()
    seen: list[dict[str, Any]] = []
    at_the_end = threading.Event()

    class Waits:
        """follow's first wait on an existing file comes when it read to the end and found nothing:
        the line appended after that is the next one (a fixed sleep loses the race on a busy machine)."""

        @staticmethod
        def sleep(seconds: float) -> None:
            at_the_end.set()
            time.sleep(seconds)

    monkeypatch.setattr(watch_module, "time", Waits)

    def watch() -> None:
        for entry in follow(path, from_start=False, stop=stop):
            seen.append(entry)
            stop.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert at_the_end.wait(60), "follow never reached the end of the file"
        with path.open("a") as out:
            out.write('{"channel": "sms", "to": "+1", "message": "new"}\n')
        watcher.join(timeout=60)
    finally:
        stop.set()
    assert [e["message"] for e in seen] == ["new"]


def test_reminders_that_sent_no_sms_yet_are_watch_lines_too(harness: Any, tmp_path: Path) -> None:
    """A deferred (quiet hours) or suppressed reminder shows in `clm watch`, with why."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.service.sweep import sweep
    from clm.local.watch import record_reminders, render
    from tests.functional.test_reminders import delivery, event

    path = tmp_path / "notifications.jsonl"
    undo = record_reminders(path)
    try:
        late = datetime(2026, 11, 19, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
        assert harness.post("dealer-a", delivery(late)).status_code == 202
        harness.drain()
        sweep(datetime(2027, 2, 12, 14, 30, tzinfo=UTC))
        harness.drain()
        assert (
            harness.post("dealer-a", event("customer.preferences_updated", sms_opt_out=True)).status_code
            == 202
        )
        harness.drain()
        sweep(datetime(2027, 2, 13, 0, 0, tzinfo=UTC) + timedelta(seconds=1))
        harness.drain()
    finally:
        undo()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(e["channel"], e["message"]) for e in lines] == [
        ("reminder", "first_service deferred"),
        ("reminder", "first_service suppressed"),
    ]
    deferred, suppressed = lines
    assert deferred["to"] == "dealer-a#LSVAU2180N2123456"
    assert deferred["attributes"] == {
        "status": "deferred",
        "reason": "quiet_hours",
        "send_at": "2027-02-13T00:00:00.000Z",
    }
    assert suppressed["attributes"] == {"status": "suppressed", "reason": "sms_opt_out"}
    assert "REMINDER" in render(suppressed) and "reason=sms_opt_out" in render(suppressed)
