"""Helpers for tests: signing and posting events the way partners do."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.inbound import signatures


def signed_headers(
    secret: str, body: bytes, msg_id: str, timestamp: int, content_type: str = "application/json"
) -> dict[str, str]:
    return {
        "content-type": content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures.sign(signatures.secret_key(secret), msg_id, timestamp, body),
    }


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def content_types(response: Any) -> list[str]:
    """Every Content-Type header of a `chalice.test.Client` response, whatever its spelling."""
    return [value for name, value in response.headers.items() if name.lower() == "content-type"]


def strings_in(value: Any) -> list[str]:
    """Every string in a raw DynamoDB item (or any JSON value), and every string inside those that
    are JSON documents: a JSONAttribute escapes non-ASCII text, which a plain search would miss."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    if isinstance(value, str):
        if value[:1] in "[{":
            try:
                return [value, *strings_in(json.loads(value))]
            except ValueError:
                pass
        return [value]
    return []
