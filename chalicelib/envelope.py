"""Envelope encryption of personal data at rest (PIPL): names, phone numbers, raw webhook bodies.

Each value is sealed with AES-256-GCM under a data key that KMS generated (`GenerateDataKey`,
bound to an encryption context); the value carries the data key as KMS wrapped it. A process
keeps its data key for `DATA_KEY_SECONDS` or `DATA_KEY_MESSAGES` values, whichever ends first, and
remembers the data keys it unwrapped, so neither the webhook path nor the processor makes a KMS
call per event: one `GenerateDataKey` per process and hour, one `Decrypt` per data key it meets.

Why not the AWS Encryption SDK (what Powertools' data masking wraps)? It does the same with a
richer message format, but importing it imports boto3 and s3transfer: measured 0.39 s, and
0.77 s with Powertools' data masking, on a cold webhook whose whole budget (`make bench`,
`cold_webhook_vs_boto3` <= 1.4) is about that. This module uses `cryptography`'s AEAD (already
shipped for the gateways' signatures) and the process's own KMS client; the format is versioned
so it can move to the SDK's later.

Sealed value: ``pii1.`` + base64url(len(wrapped key) as 2 bytes | wrapped key | 12-byte nonce |
ciphertext and tag). A value without the prefix was stored before sealing and reads as it is.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from chalicelib import aws, runtime
from chalicelib.settings import get_settings

PREFIX = "pii1."
CONTEXT = {"purpose": "clm-personal-data"}  # KMS encryption context of every data key
AAD = b"clm-personal-data/1"  # bound into every value: a value sealed for another use will not open
DATA_KEY_SECONDS = 3600.0  # how long a process seals with one data key
DATA_KEY_MESSAGES = 1_000_000  # and for how many values (random 96-bit nonces: far below the limit)
OPENED_KEYS = 1024  # unwrapped data keys remembered (least recently used forgotten first)
NONCE_BYTES = 12


class EnvelopeError(ValueError):
    """A sealed value that does not open: damaged, or sealed for another key or use."""


@dataclass
class _DataKey:
    plaintext: bytes
    wrapped: bytes
    born: float
    used: int = 0


_lock = threading.Lock()
_sealing: _DataKey | None = None
_opened: OrderedDict[bytes, bytes] = OrderedDict()


@runtime.keeps_state
def forget_keys() -> None:
    """Drop every data key this process holds (tests switch KMS mocks; keys are then unknown)."""
    global _sealing
    with _lock:
        _sealing = None
        _opened.clear()


def _sealing_key() -> _DataKey:
    global _sealing
    with _lock:
        key = _sealing
        fresh = key is not None and time.monotonic() - key.born < DATA_KEY_SECONDS
        if key is not None and fresh and key.used < DATA_KEY_MESSAGES:
            key.used += 1
            return key
    made = aws.client("kms").generate_data_key(
        KeyId=get_settings().kms_key_id, KeySpec="AES_256", EncryptionContext=CONTEXT
    )
    key = _DataKey(made["Plaintext"], made["CiphertextBlob"], time.monotonic(), used=1)
    with _lock:
        _sealing = key
        _remember(key.wrapped, key.plaintext)
    return key


def _remember(wrapped: bytes, plaintext: bytes) -> None:
    _opened[wrapped] = plaintext
    _opened.move_to_end(wrapped)
    while len(_opened) > OPENED_KEYS:
        _opened.popitem(last=False)


def _opening_key(wrapped: bytes) -> bytes:
    with _lock:
        found = _opened.get(wrapped)
        if found is not None:
            _opened.move_to_end(wrapped)
            return found
    from botocore.exceptions import ClientError

    try:
        out = aws.client("kms").decrypt(CiphertextBlob=wrapped, EncryptionContext=CONTEXT)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {
            "InvalidCiphertextException",
            "IncorrectKeyException",
        }:
            raise EnvelopeError("a sealed value whose data key KMS does not recognise") from None
        raise
    plaintext: bytes = out["Plaintext"]
    with _lock:
        _remember(wrapped, plaintext)
    return plaintext


def _aead(key: bytes):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def seal(value: str) -> str:
    """`value` encrypted under this process's data key, as text a table attribute can hold."""
    key = _sealing_key()
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aead(key.plaintext).encrypt(nonce, value.encode("utf-8"), AAD)
    blob = len(key.wrapped).to_bytes(2, "big") + key.wrapped + nonce + sealed
    return PREFIX + base64.urlsafe_b64encode(blob).decode("ascii")


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def open_sealed(value: str) -> str:
    """The plaintext of a sealed value; a value stored before sealing began is returned as it is."""
    if not is_sealed(value):
        return value
    from cryptography.exceptions import InvalidTag

    try:
        blob = base64.urlsafe_b64decode(value[len(PREFIX) :].encode("ascii"))
        size = int.from_bytes(blob[:2], "big")
        wrapped, nonce, sealed = (
            blob[2 : 2 + size],
            blob[2 + size : 2 + size + NONCE_BYTES],
            blob[2 + size + NONCE_BYTES :],
        )
    except (ValueError, UnicodeEncodeError):
        raise EnvelopeError("a sealed value that is not well formed") from None
    if not wrapped or len(nonce) != NONCE_BYTES or not sealed:
        raise EnvelopeError("a sealed value that is not well formed")
    try:
        plain = _aead(_opening_key(wrapped)).decrypt(nonce, sealed, AAD)
    except InvalidTag:
        raise EnvelopeError("a sealed value that fails its authentication tag") from None
    return plain.decode("utf-8")
