"""Mapping service results and problems to Chalice responses."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.inbound.problems import CONTENT_TYPE, Problem


def problem(p: Problem) -> Response:
    return Response(p.body(), status_code=p.status, headers={"content-type": CONTENT_TYPE})


def ok(body: Any, status: int = 200) -> Response:
    return Response(body, status_code=status, headers={"content-type": "application/json"})
