"""Mapping service results and refusals to Chalice responses."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response

from chalicelib.api import problems
from chalicelib.errors import Refusal

# Spelled exactly so: Chalice adds its own `Content-Type` unless the response has one under this
# very name, and a lower-case one would make two headers on the wire.
CONTENT_TYPE_HEADER = "Content-Type"


def as_json(body: Any) -> str:
    """JSON as UTF-8 text: Chinese names and SMS read as themselves, not as `\\u` escapes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def problem(refusal: Refusal) -> Response:
    status, _ = problems.status_of(refusal)
    return Response(
        as_json(problems.body(refusal)),
        status_code=status,
        headers={CONTENT_TYPE_HEADER: problems.CONTENT_TYPE},
    )


def ok(body: Any, status: int = 200) -> Response:
    return Response(as_json(body), status_code=status, headers={CONTENT_TYPE_HEADER: "application/json"})
