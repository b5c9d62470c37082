"""Every row of DESIGN.md §3 through the Chalice test client, on a mocked account."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import Harness, example
from tests.support import content_types, dumps, signed_headers

PROBLEM = "application/problem+json"


def body_of(response: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(response.body)
    return loaded


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert content_types(response) == [PROBLEM]
    problem = body_of(response)
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= set(problem)
    return problem


def test_new_valid_event_is_accepted(harness: Harness) -> None:
    response = harness.post("dealer-a", example("vehicle.delivered"), msg_id="msg_new")
    assert response.status_code == 202
    assert body_of(response) == {"id": "msg_new", "status": "accepted"}


def test_redelivery_with_same_body_is_a_duplicate_without_second_effect(harness: Harness) -> None:
    event = example("vehicle.delivered")
    assert harness.post("dealer-a", event, msg_id="msg_dup").status_code == 202
    harness.drain()
    again = harness.post("dealer-a", event, msg_id="msg_dup")
    assert again.status_code == 200
    assert body_of(again) == {"id": "msg_dup", "status": "duplicate"}
    harness.drain()
    tasks = body_of(harness.get("/dealers/dealer-a/tasks"))["items"]
    assert sorted(t["kind"] for t in tasks) == ["delivery_feedback", "handover_confirm", "handover_submit"]
    timeline = body_of(harness.get("/dealers/dealer-a/vehicles/LSVAU2180N2123456"))["timeline"]
    assert [e["type"] for e in timeline] == ["vehicle.delivered"]


def test_same_id_with_different_body_conflicts(harness: Harness) -> None:
    event = example("vehicle.delivered")
    assert harness.post("dealer-a", event, msg_id="msg_c").status_code == 202
    event["data"]["model"] = "S9"
    assert_problem(harness.post("dealer-a", event, msg_id="msg_c"), 409)


def test_ten_concurrent_copies_make_one_acceptance(harness: Harness) -> None:
    """Ten Lambda instances receive the same delivery at once: the conditional write lets one through.

    Each thread runs the ingest service (what every instance runs); Chalice's app object itself
    serves one request at a time, as a Lambda instance does.
    """
    import threading

    from chalicelib import clock
    from chalicelib.service.ingest import ingest

    body = dumps(example("vehicle.delivered"))
    headers = signed_headers(
        harness.creds["dealer-a"].webhook_secret, body, "msg_burst", int(clock.now().timestamp())
    )
    start = threading.Barrier(10)

    def send(_: int) -> int:
        start.wait()
        return ingest("dealer-a", headers, body).status

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(send, range(10)))
    assert statuses == [200] * 9 + [202]
    harness.drain()
    assert len(body_of(harness.get("/dealers/dealer-a/tasks"))["items"]) == 3


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda h: {"partner_id": "nobody"}, id="unknown-partner"),
        pytest.param(lambda h: {"headers": {"webhook-signature": "v1,AAAA"}}, id="bad-signature"),
        pytest.param(lambda h: {"headers": {"webhook-signature": ""}}, id="missing-signature"),
        pytest.param(lambda h: {"secret": h.creds["dealer-b"].webhook_secret}, id="other-partners-secret"),
        pytest.param(lambda h: {"timestamp": 1_000_000_000}, id="stale-timestamp"),
    ],
)
def test_authentication_failures_are_401_and_never_say_why(harness: Harness, mutate: Any) -> None:
    change = mutate(harness)
    partner_id = change.pop("partner_id", "dealer-a")
    problem = assert_problem(harness.post(partner_id, example("vehicle.delivered"), **change), 401)
    assert problem["detail"] == "The request could not be authenticated."


def test_body_over_256_kib_is_413(harness: Harness) -> None:
    event = example("vehicle.delivered")
    event["padding"] = "x" * (256 * 1024)
    assert_problem(harness.post("dealer-a", event), 413)


def test_exactly_256_kib_is_not_too_large(harness: Harness) -> None:
    event = example("vehicle.delivered")
    event["padding"] = ""
    size = len(dumps(event))
    event["padding"] = "x" * (256 * 1024 - size)
    assert len(dumps(event)) == 256 * 1024
    assert harness.post("dealer-a", event).status_code == 202


def test_non_json_content_type_is_415(harness: Harness) -> None:
    assert_problem(harness.post("dealer-a", example("vehicle.delivered"), content_type="text/plain"), 415)


def test_json_with_charset_is_fine(harness: Harness) -> None:
    response = harness.post(
        "dealer-a", example("vehicle.delivered"), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 202


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b""])
def test_malformed_json_is_400(harness: Harness, raw: bytes) -> None:
    assert_problem(harness.post("dealer-a", None, body=raw), 400)


def test_unknown_type_is_422(harness: Harness) -> None:
    problem = assert_problem(
        harness.post(
            "dealer-a", {"type": "vehicle.exploded", "timestamp": "2026-11-20T10:00:05+08:00", "data": {}}
        ),
        422,
    )
    assert problem["errors"] == [{"field": "type", "message": "unknown event type"}]


def test_type_not_allowed_for_kind_is_403(harness: Harness) -> None:
    assert_problem(harness.post("dealer-a", example("loan.booked")), 403)
    assert_problem(harness.post("finance-demo", example("vehicle.delivered")), 403)
    assert_problem(harness.post("hq", example("vehicle.delivered")), 403)


def test_invalid_fields_are_422_listing_every_error(harness: Harness) -> None:
    event = example("vehicle.delivered")
    event["data"]["vin"] = "LSVAU2180N212345O"
    event["data"]["customer"]["phone"] = "12345"
    del event["data"]["model"]
    problem = assert_problem(harness.post("dealer-a", event), 422)
    fields = {e["field"] for e in problem["errors"]}
    assert {"data.vin", "data.customer.phone", "data.model"} <= fields
    assert "12345" not in json.dumps(problem)


def test_checks_run_in_the_contract_order(harness: Harness) -> None:
    # Bad signature and bad everything else: 401 first.
    assert_problem(
        harness.post(
            "dealer-a", None, body=b"{", content_type="text/plain", headers={"webhook-signature": "v1,AAAA"}
        ),
        401,
    )
    # Wrong content type and malformed JSON: 415 before 400.
    assert_problem(harness.post("dealer-a", None, body=b"{", content_type="text/plain"), 415)
    # Unknown type from a finance partner: 422 (type) before 403 (kind).
    assert_problem(harness.post("finance-demo", {"type": "nope", "data": {}}), 422)
    # Type not allowed and fields invalid: 403 before 422.
    assert_problem(harness.post("finance-demo", {"type": "vehicle.delivered", "data": {}}), 403)


def test_rejections_leave_no_trace_and_allow_a_correct_retry(harness: Harness) -> None:
    event = example("vehicle.delivered")
    broken = json.loads(json.dumps(event))
    broken["data"]["vin"] = "short"
    assert_problem(harness.post("dealer-a", broken, msg_id="msg_fix"), 422)
    assert harness.post("dealer-a", event, msg_id="msg_fix").status_code == 202


def test_rotated_secret_works_at_once_and_old_one_for_24_hours(harness: Harness, clock_at: Any) -> None:
    from datetime import timedelta

    from chalicelib import clock
    from chalicelib.inbound import partners

    old = harness.creds["dealer-a"].webhook_secret
    assert harness.post("dealer-a", example("odometer.reported"), secret=old).status_code == 202
    new = partners.rotate_secret("dealer-a")
    assert harness.post("dealer-a", example("odometer.reported"), secret=new).status_code == 202
    assert harness.post("dealer-a", example("odometer.reported"), secret=old).status_code == 202
    clock_at(clock.now() + timedelta(hours=24, minutes=1))
    partners.forget()
    assert_problem(harness.post("dealer-a", example("odometer.reported"), secret=old), 401)
    assert harness.post("dealer-a", example("odometer.reported"), secret=new).status_code == 202


# --- inputs a hostile or broken sender may try (issue: ownership and outcomes) --------------------


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("data.delivered_at", "0001-01-01T00:00:00+08:00"),
        ("data.delivered_at", "9999-12-31T23:59:59+08:00"),
        ("data.delivered_at", "1999-12-31T23:59:59+00:00"),
        ("data.delivered_at", "2026-11-20T02:10:01+00:00"),  # NOW + 5 min 1 s
        ("timestamp", "2026-11-20T02:10:01+00:00"),
    ],
)
def test_event_times_out_of_bounds_are_422_at_once(harness: Harness, where: str, value: str) -> None:
    payload = example("vehicle.delivered")
    if where == "timestamp":
        payload["timestamp"] = value
    else:
        payload["data"]["delivered_at"] = value
    problem = assert_problem(harness.post("dealer-a", payload), 422)
    assert [e["field"] for e in problem["errors"]] == [where]


def test_five_minutes_ahead_is_still_accepted(harness: Harness) -> None:
    payload = example("vehicle.delivered")
    payload["data"]["delivered_at"] = "2026-11-20T02:10:00+00:00"
    assert harness.post("dealer-a", payload).status_code == 202
    harness.drain()
    assert len(body_of(harness.get("/dealers/dealer-a/tasks"))["items"]) == 3


@pytest.mark.parametrize(
    ("content_type", "encoding", "status"),
    [
        ("application/json; charset=latin-1", None, 415),
        ("application/json; charset=iso-8859-1", None, 415),
        ('application/json; charset="UTF-8"', None, 202),
        ("application/json;charset=utf-8;version=1", None, 202),
        ("application/json", "gzip", 415),
        ("application/json", "identity", 415),
    ],
)
def test_charsets_and_encodings(
    harness: Harness, content_type: str, encoding: str | None, status: int
) -> None:
    import gzip

    body = dumps(example("vehicle.delivered"))
    if encoding == "gzip":
        body = gzip.compress(body)
    headers = {"content-encoding": encoding} if encoding else {}
    response = harness.post("dealer-a", None, body=body, content_type=content_type, headers=headers)
    assert response.status_code == status, response.body
    if status == 415:
        assert_problem(response, 415)


def test_a_partner_tried_before_it_existed_works_right_after_it_is_added(harness: Harness) -> None:
    from chalicelib.inbound import partners, signatures

    secret = signatures.new_secret()
    key = partners.new_api_key()
    early = harness.post("dealer-late", example("odometer.reported"), secret=secret)
    assert_problem(early, 401)
    early_read = harness.client.http.get(
        "/dealers/dealer-late/tasks", headers={"authorization": f"Bearer {key}"}
    )
    assert early_read.status_code == 401
    partners.add("dealer-late", "dealer", webhook_secret=secret, api_key=key)  # as `clm partner add` does
    assert harness.post("dealer-late", example("odometer.reported"), secret=secret).status_code == 202
    read = harness.client.http.get("/dealers/dealer-late/tasks", headers={"authorization": f"Bearer {key}"})
    assert read.status_code == 200


def test_a_rotated_secret_works_even_right_after_the_old_one_was_used(harness: Harness) -> None:
    from chalicelib.inbound import partners

    assert harness.post("dealer-a", example("odometer.reported")).status_code == 202  # partner now cached
    cached = partners._cache["dealer-a"]
    new = partners.rotate_secret("dealer-a")
    partners._cache["dealer-a"] = cached  # a warm Lambda still holds the old secrets (the CLI ran elsewhere)
    assert harness.post("dealer-a", example("odometer.reported"), secret=new).status_code == 202


def test_unauthenticated_identifiers_are_logged_cut_short(harness: Harness) -> None:
    import io

    from chalicelib.observability import logger

    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        long_partner = "p" * 60_000
        long_id = "w" * 60_000
        harness.post(long_partner, example("odometer.reported"))
        harness.post(
            "dealer-a", example("odometer.reported"), msg_id=long_id, headers={"webhook-signature": "v1,AA=="}
        )
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    rejected = [line for line in logged if line.get("message") == "webhook rejected"]
    assert len(rejected) == 2
    assert all(
        len(line.get("partner_id") or "") <= 65 and len(line.get("webhook_id") or "") <= 65
        for line in rejected
    )
    assert rejected[0]["partner_id"].startswith("p" * 64)
    assert "p" * 100 not in stream.getvalue() and "w" * 100 not in stream.getvalue()
