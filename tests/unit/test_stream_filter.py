"""The table stream's filters (infra/) let through exactly the records that are work."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.service import work
from clm.local import stream_filter


def record(pk: str, sk: str, event: str) -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}}


KEYS = [
    ("INBOX#dealer-a#msg_1", "INBOX"),
    ("OUTBOX#task-created#dealer-a#t1", "OUTBOX"),
    ("CUST#dealer-a#C-1", "SIGNAL#drive#2026-11-20T00:05:00.000Z#S7#2026-11-20T00:05:00.000Z"),
    ("CUST#dealer-a#C-1", "CUSTOMER"),
    ("CUST#dealer-a#C-1", "REMIND#birthday"),
    ("VEH#dealer-a#LSVAU2180N2123456", "VEHICLE"),
    ("TAGS#dealer-a", "family_space#C-1"),
    ("DEALER#dealer-a", "TASK#handover_submit-1"),
]


@pytest.mark.parametrize("event", ["INSERT", "MODIFY", "REMOVE"])
@pytest.mark.parametrize(("pk", "sk"), KEYS)
def test_a_record_reaches_the_handler_exactly_when_it_is_work(pk: str, sk: str, event: str) -> None:
    filters = stream_filter.patterns()
    assert filters, "the stream's event source filters its records"
    sent = record(pk, sk, event)
    assert stream_filter.passes(filters, sent) == (work.from_stream_record(sent) is not None)


def test_without_filters_every_record_passes_and_an_unknown_rule_is_refused() -> None:
    assert stream_filter.passes([], record("VEH#x", "VEHICLE", "REMOVE"))
    pattern = {"dynamodb": {"Keys": {"pk": {"S": [{"anything-but": "X"}]}}}}
    with pytest.raises(ValueError, match="unsupported"):
        stream_filter.passes([pattern], record("VEH#x", "VEHICLE", "INSERT"))
    assert not stream_filter.matches({"eventName": ["INSERT"]}, {"dynamodb": {}})
