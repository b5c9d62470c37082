"""What `clm watch` shows: every publish the embedded AWS accepts, SMS with its number."""

from __future__ import annotations

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


def test_follow_from_the_end_shows_only_what_comes_next(tmp_path: Path) -> None:
    from clm.local.watch import follow

    path = tmp_path / "notifications.jsonl"
    path.write_text('{"channel": "sms", "to": "+1", "message": "old"}\n')
    stop = threading.Event()
    seen: list[dict[str, Any]] = []

    def watch() -> None:
        for entry in follow(path, from_start=False, stop=stop):
            seen.append(entry)
            stop.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    import time

    time.sleep(0.3)
    with path.open("a") as out:
        out.write('{"channel": "sms", "to": "+1", "message": "new"}\n')
    watcher.join(timeout=5)
    assert [e["message"] for e in seen] == ["new"]
