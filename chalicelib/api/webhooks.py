"""`POST /webhooks/{partner_id}`: signed partner events (DESIGN.md §3)."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api.problems import status_of
from chalicelib.api.responses import ok, problem
from chalicelib.errors import Refusal
from chalicelib.observability import cut, logger, metrics

webhooks = Blueprint(__name__)


# Every content type reaches the handler: the signature is checked before the media type (401 before 415).
@webhooks.route("/webhooks/{partner_id}", methods=["POST"], content_types=["*/*"])
def receive(partner_id: str) -> Response:
    from aws_lambda_powertools.metrics import MetricUnit

    from chalicelib.service.ingest import ingest

    request = webhooks.current_request
    # Not authenticated yet: identifiers are logged cut short (a 60 KB header stays out of the logs).
    logger.thread_safe_append_keys(
        partner_id=cut(partner_id), webhook_id=cut(request.headers.get("webhook-id"))
    )
    try:
        raw = request.raw_body or b""
        result = ingest(partner_id, request.headers, raw.encode() if isinstance(raw, str) else raw)
    except Refusal as exc:
        logger.info("webhook rejected", extra={"status": status_of(exc)[0], "reason": exc.reason})
        metrics.add_dimension("reason", exc.reason)
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
        response = problem(exc)
    else:
        # Debug only: the hot path stays lean; the processor logs every applied event at INFO.
        logger.debug(f"webhook {result.outcome}", extra={"event_type": result.event_type})
        name = "EventsAccepted" if result.outcome == "accepted" else "EventsDuplicate"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        response = ok(result.body(), result.status)
    finally:
        metrics.flush_metrics()
        logger.thread_safe_remove_keys(["partner_id", "webhook_id"])
    return response
