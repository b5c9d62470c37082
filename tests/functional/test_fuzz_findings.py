"""What the fuzz (tests/e2e/test_fuzz.py) found, pinned here where it runs in milliseconds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Harness
from tests.support import content_types

READS = [
    "/dealers/dealer-a/tasks",
    "/dealers/dealer-a/timeline",
    "/dealers/dealer-a/loans",
    "/dealers/dealer-a/tags",
    "/dealers/dealer-a/kpis",
    "/dealers/dealer-a/incentives",
    "/dealers/dealer-a/vehicles/LSVAU2180N2123456",
    "/dealers/dealer-a/customers/C-1001",
    "/partners/dealer-a/events/msg_1",
]


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain", "application/xml"])
def test_a_read_with_a_stray_content_type_is_still_authenticated_first(
    harness: Harness, content_type: str
) -> None:
    """A GET carries no body, but a client may send a `Content-Type`: Chalice answered its own 415
    (`{"Code": "UnsupportedMediaType"}`, undocumented) before the key was looked at."""
    key = harness.creds["dealer-a"].api_key
    for path in READS:
        refused = harness.client.http.get(path, headers={"content-type": content_type})
        assert refused.status_code == 401, path
        assert content_types(refused) == ["application/problem+json"]
        answered = harness.client.http.get(
            path, headers={"content-type": content_type, "authorization": f"Bearer {key}"}
        )
        assert answered.status_code in (200, 404), (path, answered.status_code)
        assert json.loads(answered.body)  # our answer (a page, a view, a problem), not Chalice's
    for path in ("/health", "/openapi.json"):
        assert harness.client.http.get(path, headers={"content-type": content_type}).status_code == 200
    completed = harness.client.http.post(
        "/dealers/dealer-a/tasks/T-none/complete", headers={"content-type": content_type}
    )
    assert completed.status_code == 401


def test_the_customer_profile_answers_as_documented(harness: Harness) -> None:
    """The document described the profile with the event model's `Customer` (same name, a
    different thing): every real profile failed its own contract."""
    from jsonschema import Draft202012Validator

    from tests.conftest import example

    assert harness.post("dealer-a", example("vehicle.delivered")).status_code == 202
    harness.drain()
    answer = harness.get("/dealers/dealer-a/customers/C-1001")
    assert answer.status_code == 200
    document: dict[str, Any] = json.loads(harness.client.http.get("/openapi.json").body)
    ref = document["paths"]["/dealers/{dealer_id}/customers/{customer_id}"]["get"]["responses"]["200"]
    schema = ref["content"]["application/json"]["schema"]
    errors = list(Draft202012Validator({**document, **schema}).iter_errors(json.loads(answer.body)))
    assert errors == [], [e.message for e in errors[:3]]


@pytest.mark.parametrize(
    "path",
    [
        "/dealers/dealer-a/kpis?week=",
        "/dealers/dealer-a/incentives?month=",
        "/dealers/dealer-a/tasks?status=&assignee=&limit=&next=",
        "/dealers/dealer-a/loans?status=&limit=&next=",
        "/dealers/dealer-a/timeline?limit=&next=",
    ],
)
def test_an_empty_query_parameter_counts_as_left_out_as_documented(harness: Harness, path: str) -> None:
    """The app always read `?week=` as no week (the current one); the document said a week must
    match its pattern, so the fuzz saw an invalid request accepted. It says `allowEmptyValue` now."""
    document: dict[str, Any] = json.loads(harness.client.http.get("/openapi.json").body)
    route = "/dealers/{dealer_id}/" + path.split("?")[0].rsplit("/", 1)[1]
    names = {name.split("=")[0] for name in path.split("?")[1].split("&")}
    documented = {p["name"]: p for p in document["paths"][route]["get"]["parameters"] if p["in"] == "query"}
    assert names <= set(documented) and all(documented[n]["allowEmptyValue"] for n in names)
    assert harness.get(path).status_code == 200
    assert json.loads(harness.get(path).body) == json.loads(harness.get(path.split("?")[0]).body)
