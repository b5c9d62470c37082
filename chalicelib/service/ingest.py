"""The synchronous webhook path: authenticate, check, validate, record. Nothing else.

Checks run in the contract's order and the first failure answers (DESIGN.md §3). Processing
happens after the 202, driven by the table stream, so this path costs one conditional write
(plus one partner read when the warm cache is cold; events that carry an odometer reading also
read, and may move, the vehicle's latest accepted reading, whose plausibility must be judged
before accepting: `checks`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import clock, errors
from chalicelib.inbound import partners, signatures
from chalicelib.observability import error_summary, logger
from chalicelib.store import accept as inbox

MAX_BODY_BYTES = 256 * 1024
MAX_WEBHOOK_ID = 256  # it becomes part of a table key (DynamoDB allows 2 KB)
JSON_MEDIA_TYPES = ("application/json",)


@dataclass(frozen=True)
class IngestResult:
    status: int
    webhook_id: str
    outcome: str  # accepted | duplicate
    event_type: str

    def body(self) -> dict[str, str]:
        return {"id": self.webhook_id, "status": self.outcome}


def _unsupported_media(detail: str) -> errors.UnsupportedMedia:
    return errors.UnsupportedMedia(detail, reason="media_type")


def check_media_type(headers: Mapping[str, str]) -> None:
    """JSON (`application/json` or `+json`), UTF-8 (no other charset), not encoded; else 415."""
    if (headers.get("content-encoding") or "").strip():
        raise _unsupported_media("Send the body as it is: no Content-Encoding.")
    media, *parameters = (headers.get("content-type") or "").split(";")
    media = media.strip().lower()
    if not (media in JSON_MEDIA_TYPES or (media.startswith("application/") and media.endswith("+json"))):
        raise _unsupported_media("Send the event as application/json.")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            raise _unsupported_media("JSON is UTF-8: send charset=utf-8, or no charset.")


def authenticate(partner_id: str, headers: Mapping[str, str], body: bytes) -> partners.Partner:
    """The sending partner, or a uniform 401. A miss on a cached partner re-reads it once."""
    msg_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signature = headers.get("webhook-signature") or ""
    partner = partners.get(partner_id)
    for attempt in range(2):
        if partner is None:
            raise errors.Unauthenticated("unknown_partner")
        try:
            signatures.verify(list(partner.keys), msg_id, timestamp, signature, body, clock.now())
            return partner
        except signatures.SignatureError as exc:
            if attempt == 1 or str(exc) != "no matching signature":
                raise errors.Unauthenticated("bad_signature") from exc
            partner = partners.get(partner_id, refresh=True)
    raise errors.Unauthenticated("bad_signature")


def parse_json(body: bytes) -> tuple[str, Any]:
    """The body as text and as JSON. JSON on the wire is UTF-8 without a BOM (RFC 8259 §8.1)."""
    try:
        text = body.decode("utf-8")
        return text, json.loads(text)  # a BOM is a JSONDecodeError here
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise errors.BadRequest("The body is not valid JSON (UTF-8, no BOM).") from exc


def ingest(partner_id: str, headers: Mapping[str, str], body: bytes) -> IngestResult:
    """Run every check of §3 in order, then record the event once. Raises a `Refusal`."""
    partner = authenticate(partner_id, headers, body)
    webhook_id = headers["webhook-id"]
    if len(body) > MAX_BODY_BYTES:
        raise errors.TooLarge(f"The body exceeds {MAX_BODY_BYTES} bytes.", reason="too_large")
    check_media_type(headers)
    if len(webhook_id) > MAX_WEBHOOK_ID or not webhook_id.isprintable():
        raise errors.BadRequest(
            f"webhook-id must be 1-{MAX_WEBHOOK_ID} printable characters.",
            errors=[{"field": "webhook-id", "message": f"1-{MAX_WEBHOOK_ID} printable characters"}],
        )
    text, payload = parse_json(body)

    from chalicelib.events import EventValidationError, parse_envelope_type, spec_for, validate_event

    event_type = parse_envelope_type(payload)
    spec = spec_for(event_type)
    if spec is None:
        raise errors.Invalid(
            "The event type is missing or unknown.",
            code="unknown-event-type",
            errors=[{"field": "type", "message": "unknown event type"}],
            reason="unknown_type",
        )
    if partner.kind not in spec.kinds:
        raise errors.Forbidden(
            f"A {partner.kind} partner may not send {spec.type}.",
            code="event-type-not-allowed",
            reason="type_not_allowed",
        )
    now = clock.now()
    try:
        event = validate_event(spec, payload, now=now)
    except EventValidationError as exc:
        raise errors.Invalid(
            f"{len(exc.errors)} field(s) are invalid.",
            errors=[{"field": e.field, "message": e.message} for e in exc.errors],
            reason="invalid_fields",
        ) from exc

    from chalicelib.service.checks import precheck

    reservation = precheck(partner.kind, partner.partner_id, spec.type, event.data)
    digest = hashlib.sha256(body).hexdigest()
    try:
        outcome = inbox.record(inbox.InboxRef(partner.partner_id, webhook_id), spec.type, text, digest, now)
    except Exception:
        _release(reservation)
        raise
    if isinstance(outcome, inbox.Existing):
        if outcome.body_sha256 != digest:
            _release(reservation)  # the reading was not accepted after all
            raise errors.Conflict("This webhook-id was already used for a different body.")
        return IngestResult(200, webhook_id, "duplicate", spec.type)
    return IngestResult(202, webhook_id, "accepted", spec.type)


def _release(reservation: Any) -> None:
    """Undo a reading's reservation when its event is not stored (best effort: the answer matters more)."""
    if reservation is None:
        return
    try:
        reservation.release()
    except Exception as exc:
        logger.warning("could not release a reading's reservation", extra={"error": error_summary(exc)})
