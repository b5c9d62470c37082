"""RFC 9457 problem details: every error answer of the API is one of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Problem(Exception):
    status: int
    slug: str
    title: str
    detail: str
    errors: list[dict[str, str]] | None = field(default=None)
    reason: str = ""  # metric dimension; never sent to the caller

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def unauthorized(reason: str) -> Problem:
    """One answer for every authentication failure, so that it never says which part failed."""
    return Problem(
        401, "unauthorized", "Unauthorized", "The request could not be authenticated.", reason=reason
    )


def not_found(what: str) -> Problem:
    return Problem(404, "not-found", "Not Found", f"No such {what}.", reason="not_found")


def bad_request(detail: str, errors: list[dict[str, str]] | None = None) -> Problem:
    return Problem(400, "bad-request", "Bad Request", detail, errors, reason="bad_request")
