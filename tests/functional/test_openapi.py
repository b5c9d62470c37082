"""`GET /openapi.json`: valid OpenAPI 3.1 of every route and every event, generated from the code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import EXAMPLES, Harness


@pytest.fixture
def document(harness: Harness) -> dict[str, Any]:
    answer = harness.client.http.get("/openapi.json")  # no key
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    found: dict[str, Any] = json.loads(answer.body)
    return found


def event_schema(document: dict[str, Any], name: str) -> Any:
    from jsonschema import Draft202012Validator

    # OpenAPI 3.1 schemas are JSON Schema 2020-12; refs resolve inside the document.
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_of_the_app_and_nothing_else_is_described(document: dict[str, Any]) -> None:
    import app as app_module

    routes = {(path, method.lower()) for path, entries in app_module.app.routes.items() for method in entries}
    described = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert routes == described
    for path, method in described:
        operation = document["paths"][path][method]
        assert operation["responses"] and operation.get("operationId"), (path, method)
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path


OPEN = {"openapi", "health"}
"""Operations that need no credential at all."""
GATEWAYS = {"wechatpayNotification": "401", "alipayNotification": "400"}
"""Verified by the gateway's own signature in the request (DESIGN.md §5), each with its refusal."""


def test_every_operation_says_how_it_is_authenticated_and_how_it_refuses(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["standardWebhooks"] == {
        **schemes["standardWebhooks"],
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            name = operation["operationId"]
            security = operation.get("security")
            if name in OPEN:
                assert security is None and not any(c in operation["responses"] for c in ("401", "403"))
            elif name in GATEWAYS:
                assert GATEWAYS[name] in operation["responses"], name
            else:
                assert security, (method, path)
                assert {s for requirement in security for s in requirement} <= set(schemes), name
                assert "401" in operation["responses"], name
    webhook = document["paths"]["/webhooks/{partner_id}"]["post"]
    assert webhook["security"] == [{"standardWebhooks": []}]
    headers = {p["name"] for p in webhook["parameters"] if p["in"] == "header" and p["required"]}
    assert headers == {"webhook-id", "webhook-timestamp"}  # with the signature: the three of §3
    reads = [
        op for path, item in document["paths"].items() for op in item.values() if path.startswith("/dealers")
    ]
    assert reads and all(op["security"] == [{"apiKey": []}] for op in reads)


def test_no_event_model_shadows_a_schema_of_the_read_api(document: dict[str, Any]) -> None:
    """Event models' nested schemas share `components.schemas` with the read API's answers: a
    pydantic model named like one (the event's `Customer`) once replaced the profile's schema."""
    from chalicelib.api.openapi import SCHEMAS

    for name, schema in SCHEMAS.items():
        assert document["components"]["schemas"][name] == schema, name


def test_every_event_type_has_its_schema_from_its_model(document: dict[str, Any]) -> None:
    from chalicelib.events import EVENT_SPECS

    mapping = document["components"]["schemas"]["Event"]["discriminator"]["mapping"]
    assert set(mapping) == set(EVENT_SPECS)
    for event_type, spec in EVENT_SPECS.items():
        schema = document["components"]["schemas"][mapping[event_type].rsplit("/", 1)[1]]
        assert schema["properties"]["type"] == {"const": event_type}
        data = schema["properties"]["data"]
        if "$ref" in data:
            data = document["components"]["schemas"][data["$ref"].rsplit("/", 1)[1]]
        fields = set(spec.model.model_fields)
        assert set(data["properties"]) == fields, event_type  # generated from the model, not by hand
        assert set(data.get("required", [])) == {
            n for n, f in spec.model.model_fields.items() if f.is_required()
        }


def test_every_example_event_validates_against_the_contract_and_a_broken_one_does_not(
    document: dict[str, Any],
) -> None:
    checker = event_schema(document, "Event")
    examples = sorted(EXAMPLES.glob("*.json"))
    assert len(examples) >= 20
    for path in examples:
        payload = json.loads(path.read_text())
        errors = list(checker.iter_errors(payload))
        assert errors == [], (path.name, [e.message for e in errors[:3]])
    delivery = json.loads((EXAMPLES / "vehicle.delivered.json").read_text())
    del delivery["data"]["customer"]
    assert list(event_schema(document, "Event_vehicle_delivered").iter_errors(delivery))
    delivery = json.loads((EXAMPLES / "vehicle.delivered.json").read_text())
    delivery["data"]["powertrain"] = "steam"
    assert list(event_schema(document, "Event_vehicle_delivered").iter_errors(delivery))


def test_make_openapi_writes_the_served_document(
    document: dict[str, Any], tmp_path: Any, capsys: Any
) -> None:
    from clm import openapi

    target = tmp_path / "openapi.json"
    openapi.main([str(target)])
    assert json.loads(target.read_text(encoding="utf-8")) == document
    assert "wrote" in capsys.readouterr().out
