"""Mapping service results and problems to Chalice responses."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.inbound.problems import CONTENT_TYPE, Problem

# Spelled exactly so: Chalice adds its own `Content-Type` unless the response has one under this
# very name, and a lower-case one would make two headers on the wire.
CONTENT_TYPE_HEADER = "Content-Type"


def problem(p: Problem) -> Response:
    return Response(p.body(), status_code=p.status, headers={CONTENT_TYPE_HEADER: CONTENT_TYPE})


def ok(body: Any, status: int = 200) -> Response:
    return Response(body, status_code=status, headers={CONTENT_TYPE_HEADER: "application/json"})
