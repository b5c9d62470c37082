from __future__ import annotations

from typing import Any

import pytest

from chalicelib.service import work


def record(pk: str, event: str = "INSERT") -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": "X"}}}}


@pytest.mark.parametrize(
    ("pk", "expected"),
    [
        ("INBOX#dealer-a#msg_1", work.inbox_ref("dealer-a", "msg_1")),
        ("INBOX#dealer-a#msg#with#hashes", work.inbox_ref("dealer-a", "msg#with#hashes")),
        ("OUTBOX#task-created#dealer-a#t1", work.outbox_ref("task-created#dealer-a#t1")),
        ("VEH#LSVAU2180N2123456", None),
        ("INBOX#dealer-a", None),
        ("OUTBOX#", None),
        ("", None),
    ],
)
def test_new_inbox_and_outbox_items_become_work(pk: str, expected: dict[str, str] | None) -> None:
    assert work.from_stream_record(record(pk)) == expected


@pytest.mark.parametrize("event", ["MODIFY", "REMOVE"])
def test_only_new_items_are_work(event: str) -> None:
    assert work.from_stream_record(record("INBOX#dealer-a#msg_1", event)) is None


def test_unknown_work_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        work.handle({"kind": "mystery"})
