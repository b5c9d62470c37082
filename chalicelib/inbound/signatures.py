"""Standard Webhooks signatures (https://www.standardwebhooks.com), over the raw body bytes.

The `standardwebhooks` package decodes the body as UTF-8 and compares timestamps against the
wall clock; we need the raw bytes (a non-UTF-8 body with a good signature is a 400, not a
401) and the one injectable clock, so verification lives here and the tests check it against
that package and the specification's official test vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class SignatureError(Exception):
    """Verification failed. The reason is for logs only: callers answer a uniform 401."""


def new_secret() -> str:
    """A fresh 32-byte secret in the Standard Webhooks text form."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The `v1,<base64>` signature of one message."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(
    keys: list[bytes], msg_id: str, timestamp: str, signature_header: str, body: bytes, now: datetime
) -> None:
    """Accept when any `v1` signature in the header matches any key; raise `SignatureError` otherwise."""
    if not (msg_id and timestamp and signature_header):
        raise SignatureError("missing header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("timestamp is not unix seconds")
    sent_at = int(timestamp)
    if abs(now.timestamp() - sent_at) > TOLERANCE_SECONDS:
        raise SignatureError("timestamp outside tolerance")
    offered: list[bytes] = []
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    if not offered:
        raise SignatureError("no v1 signature")
    prefix = f"{msg_id}.{timestamp}.".encode()
    matched = False
    for key in keys:
        expected = hmac.new(key, prefix + body, hashlib.sha256).digest()
        for candidate in offered:
            # Evaluate every pair so that timing does not reveal which key or entry matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no matching signature")
