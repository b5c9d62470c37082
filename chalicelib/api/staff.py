"""The staff read API (DESIGN.md §8), `/openapi.json` and `/health`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.responses import ok, problem
from chalicelib.errors import Refusal

staff_api = Blueprint(__name__)
# These requests carry no body: whatever `Content-Type` a client sends, the key is checked first (401)
# and the answer is a problem. Chalice would otherwise answer its own 415 for anything but JSON.
ANY_TYPE = ["*/*"]


def _answer(dealer_id: str | None, action: Callable[[Any], Any]) -> Response:
    """Authorize the caller for `dealer_id`, run `action(partner)`, map refusals to problem answers."""
    from chalicelib.service import read

    request = staff_api.current_request
    try:
        partner = read.authorize(request.headers.get("authorization"), dealer_id)
        return ok(action(partner))
    except Refusal as exc:
        return problem(exc)


def _listing(dealer_id: str, use_case: Callable[[str, dict[str, str]], Any]) -> Response:
    """A read of `dealer_id` shaped by the query string (filters, pages, a period)."""
    query = dict(staff_api.current_request.query_params or {})
    return _answer(dealer_id, lambda _: use_case(dealer_id, query))


@staff_api.route("/dealers/{dealer_id}/tasks", methods=["GET"], content_types=ANY_TYPE)
def list_tasks(dealer_id: str) -> Response:
    from chalicelib.service import read

    return _listing(dealer_id, read.list_tasks)


@staff_api.route("/dealers/{dealer_id}/tasks/{task_id}/complete", methods=["POST"], content_types=ANY_TYPE)
def complete_task(dealer_id: str, task_id: str) -> Response:
    from chalicelib.service import read

    return _answer(dealer_id, lambda partner: read.complete_task(dealer_id, task_id, partner))


@staff_api.route("/dealers/{dealer_id}/vehicles/{vin}", methods=["GET"], content_types=ANY_TYPE)
def vehicle(dealer_id: str, vin: str) -> Response:
    from chalicelib.service import read

    return _answer(dealer_id, lambda _: read.vehicle_timeline(dealer_id, vin))


@staff_api.route("/dealers/{dealer_id}/timeline", methods=["GET"], content_types=ANY_TYPE)
def dealer_timeline(dealer_id: str) -> Response:
    """The dealer's records as they happened, newest first, a page at a time."""
    from chalicelib.service import read

    return _listing(dealer_id, read.dealer_timeline)


@staff_api.route("/dealers/{dealer_id}/loans", methods=["GET"], content_types=ANY_TYPE)
def dealer_loans(dealer_id: str) -> Response:
    """The dealer's customers' loans and where each stands today (`?status=current|overdue|settled`)."""
    from chalicelib.service import read

    return _listing(dealer_id, read.list_loans)


@staff_api.route("/dealers/{dealer_id}/customers/{customer_id}", methods=["GET"], content_types=ANY_TYPE)
def customer(dealer_id: str, customer_id: str) -> Response:
    """The dealer's customer: contact (masked), preferences, vehicles, preference tags with evidence."""
    from urllib.parse import unquote

    from chalicelib.service import read

    return _answer(dealer_id, lambda _: read.customer_profile(dealer_id, unquote(customer_id)))


@staff_api.route("/dealers/{dealer_id}/tags", methods=["GET"], content_types=ANY_TYPE)
def tag_counts(dealer_id: str) -> Response:
    """How many of the dealer's customers carry each preference tag."""
    from chalicelib.service import read

    return _listing(dealer_id, read.tag_counts)


@staff_api.route("/dealers/{dealer_id}/kpis", methods=["GET"], content_types=ANY_TYPE)
def kpis(dealer_id: str) -> Response:
    """The dealer's KPI board of an ISO week (`?week=YYYY-Www`, default the current week)."""
    from chalicelib.service import read

    return _listing(dealer_id, read.kpis)


@staff_api.route("/dealers/{dealer_id}/incentives", methods=["GET"], content_types=ANY_TYPE)
def incentives(dealer_id: str) -> Response:
    """Each staff member's incentive figures of a month (`?month=YYYY-MM`, default the current one)."""
    from chalicelib.service import read

    return _listing(dealer_id, read.incentives)


@staff_api.route("/partners/{partner_id}/events/{webhook_id}", methods=["GET"], content_types=ANY_TYPE)
def event_outcome(partner_id: str, webhook_id: str) -> Response:
    """What became of an accepted event, for its sender only."""
    from urllib.parse import unquote

    from chalicelib.service import read

    return _answer(None, lambda partner: read.event_outcome(partner, partner_id, unquote(webhook_id)))


@staff_api.route("/openapi.json", methods=["GET"], content_types=ANY_TYPE)
def openapi() -> Response:
    """The API's machine-readable contract; no key needed (it describes, it reveals no data)."""
    from chalicelib.api.openapi import document

    return ok(document())


@staff_api.route("/health", methods=["GET"], content_types=ANY_TYPE)
def health() -> Response:
    from chalicelib.service import read

    try:
        return ok(read.health())
    except Refusal as exc:
        return problem(exc)
