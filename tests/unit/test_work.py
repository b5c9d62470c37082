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


def signal_record(pk: str, sk: str, event: str) -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}}


@pytest.mark.parametrize(
    ("pk", "sk", "event", "expected"),
    [
        ("CUST#dealer-a#C-1", "SIGNAL#drive#x#2026", "INSERT", work.tags_ref("dealer-a", "C-1")),
        ("CUST#dealer-a#C-1", "SIGNAL#deal#S7#2026", "MODIFY", work.tags_ref("dealer-a", "C-1")),
        ("CUST#dealer-a#C-1", "SIGNAL#deal#S7#2026", "REMOVE", None),  # superseded, compacted away
        ("CUST#dealer-a#C-1", "CUSTOMER", "MODIFY", None),  # a saved tag never refreshes again
        ("CUST#dealer-a", "SIGNAL#drive#x#2026", "INSERT", None),
        ("TAGS#dealer-a", "family_space#C-1", "INSERT", None),
    ],
)
def test_new_tag_signals_refresh_their_customer_s_tags(
    pk: str, sk: str, event: str, expected: dict[str, str] | None
) -> None:
    assert work.from_stream_record(signal_record(pk, sk, event)) == expected
