"""`POST /webhooks/payments/wechatpay` and `/alipay`: the gateways' own notification formats and
replies (DESIGN.md §5). Verified over the raw bytes before anything is parsed; a refusal never
says which check failed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api.responses import CONTENT_TYPE_HEADER
from chalicelib.observability import count, logger

payments_api = Blueprint(__name__)
RETRY_REASONS = frozenset({"bad_signature", "unknown_serial", "undecryptable_resource"})
"""Refusals a configuration change could explain: checked once more against fresh keys."""


def _raw() -> bytes:
    raw = payments_api.current_request.raw_body or b""
    return raw.encode() if isinstance(raw, str) else raw


def _wechat_fail(status: int, message: str) -> Response:
    body = json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False)
    return Response(body, status_code=status, headers={CONTENT_TYPE_HEADER: "application/json"})


def _alipay_reply(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, headers={CONTENT_TYPE_HEADER: "text/plain; charset=utf-8"})


def _verified(gateway: str, keys_of: Callable[[bool], Any], verify: Callable[[Any], Any]) -> Any:
    """The notification verified with the gateway's keys, read again once when they may be stale."""
    from chalicelib.inbound.gateways import GatewayRefused

    keys = keys_of(False)
    if keys is None:
        raise LookupError(f"{gateway} is not configured")
    try:
        return verify(keys)
    except GatewayRefused as exc:
        if exc.reason not in RETRY_REASONS:
            raise
        fresh = keys_of(True)
        if fresh is None or fresh == keys:
            raise
        return verify(fresh)


@payments_api.route("/webhooks/payments/wechatpay", methods=["POST"], content_types=["*/*"])
def wechatpay() -> Response:
    """Success: 204 with no body. Failure: 4xx/5xx with `{"code": "FAIL", "message"}`."""
    from chalicelib import clock
    from chalicelib.inbound import gateway_keys, gateways
    from chalicelib.service import payments

    request = payments_api.current_request
    body = _raw()
    try:
        notice = _verified(
            "wechatpay",
            lambda fresh: gateway_keys.wechatpay(fresh),
            lambda keys: gateways.verify_wechat(request.headers, body, keys, clock.now()),
        )
        outcome = payments.receive(gateways.wechat_payment(notice))
    except gateways.GatewayRefused as exc:
        logger.info("payment notification refused", extra={"gateway": "wechatpay", "reason": exc.reason})
        count("PaymentNotificationsRefused", gateway="wechatpay", reason=exc.reason)
        return _wechat_fail(401, "verification failed")
    except Exception as exc:  # ours: WeChat sends it again
        logger.exception(
            "payment notification failed", extra={"gateway": "wechatpay", "error": type(exc).__name__}
        )
        return _wechat_fail(500, "temporarily unavailable, send again")
    logger.info("payment notification", extra={"gateway": "wechatpay", "outcome": outcome})
    return Response("", status_code=204, headers={})


@payments_api.route("/webhooks/payments/alipay", methods=["POST"], content_types=["*/*"])
def alipay() -> Response:
    """`success` once the notification is kept; `fail` (4xx/5xx) only when it must come again."""
    from chalicelib.inbound import gateway_keys, gateways
    from chalicelib.service import payments

    body = _raw()
    try:
        notice = _verified(
            "alipay",
            lambda fresh: gateway_keys.alipay(fresh),
            lambda keys: gateways.verify_alipay(body, keys),
        )
        outcome = payments.receive(gateways.alipay_payment(notice))
    except gateways.GatewayRefused as exc:
        logger.info("payment notification refused", extra={"gateway": "alipay", "reason": exc.reason})
        count("PaymentNotificationsRefused", gateway="alipay", reason=exc.reason)
        return _alipay_reply("fail", 400)
    except Exception as exc:
        logger.exception(
            "payment notification failed", extra={"gateway": "alipay", "error": type(exc).__name__}
        )
        return _alipay_reply("fail", 500)
    logger.info("payment notification", extra={"gateway": "alipay", "outcome": outcome})
    return _alipay_reply("success")
