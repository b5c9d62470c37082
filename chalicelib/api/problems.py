"""RFC 9457 problem details: the one place where a service's refusal becomes an HTTP answer."""

from __future__ import annotations

from typing import Any

from chalicelib import errors

CONTENT_TYPE = "application/problem+json"

# Most specific first: a subclass of a refusal keeps its own status.
STATUS: dict[type[errors.Refusal], tuple[int, str]] = {
    errors.BadRequest: (400, "Bad Request"),
    errors.Unauthenticated: (401, "Unauthorized"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NotFound: (404, "Not Found"),
    errors.Conflict: (409, "Conflict"),
    errors.TooLarge: (413, "Payload Too Large"),
    errors.UnsupportedMedia: (415, "Unsupported Media Type"),
    errors.Invalid: (422, "Unprocessable Content"),
    errors.Unavailable: (503, "Service Unavailable"),
}


def status_of(refusal: errors.Refusal) -> tuple[int, str]:
    for kind in type(refusal).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500, "Internal Server Error"


def body(refusal: errors.Refusal) -> dict[str, Any]:
    status, title = status_of(refusal)
    out: dict[str, Any] = {
        "type": f"/problems/{refusal.code}",
        "title": title,
        "status": status,
        "detail": refusal.detail,
    }
    if refusal.errors is not None:
        out["errors"] = refusal.errors
    return out
