"""What a use case refuses, and why, in its own words: `api/problems.py` alone turns these into HTTP.

Services raise a `Refusal`; the API maps its class to a status and a title. `code` names the
particular refusal (the problem type a client may branch on), `reason` is the metric dimension
and log field, never sent to the caller.
"""

from __future__ import annotations

from typing import ClassVar


class Refusal(Exception):
    """A request the service will not carry out; the caller is told `detail` and `errors`."""

    default_code: ClassVar[str] = "refused"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code
        self.errors = errors
        self.reason = reason or self.code.replace("-", "_")


class Unauthenticated(Refusal):
    """One refusal for every authentication failure, so that it never says which part failed."""

    default_code = "unauthorized"

    def __init__(self, reason: str) -> None:
        super().__init__("The request could not be authenticated.", reason=reason)


class Forbidden(Refusal):
    default_code = "forbidden"


class NotFound(Refusal):
    default_code = "not-found"

    def __init__(self, what: str) -> None:
        super().__init__(f"No such {what}.", reason="not_found")


class BadRequest(Refusal):
    default_code = "bad-request"


class TooLarge(Refusal):
    default_code = "payload-too-large"


class UnsupportedMedia(Refusal):
    default_code = "unsupported-media-type"


class Invalid(Refusal):
    """Well-formed but not acceptable: unknown type, invalid fields, an implausible reading."""

    default_code = "invalid-fields"


class Conflict(Refusal):
    default_code = "conflict"


class Unavailable(Refusal):
    """Not now: the caller should send again."""

    default_code = "unavailable"
