"""Envelope for partner webhook secrets: KMS-encrypted at rest, bound to the partner id.

The table never holds a secret in plaintext; a stolen table dump without KMS access is useless.
"""

from __future__ import annotations

import base64

from chalicelib import aws
from chalicelib.settings import get_settings


def seal(partner_id: str, plaintext: str) -> str:
    settings = get_settings()
    out = aws.client("kms").encrypt(
        KeyId=settings.kms_key_id,
        Plaintext=plaintext.encode(),
        EncryptionContext={"partner_id": partner_id},
    )
    return base64.b64encode(out["CiphertextBlob"]).decode()


def unseal(partner_id: str, sealed: str) -> str:
    out = aws.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(sealed),
        EncryptionContext={"partner_id": partner_id},
    )
    plaintext: bytes = out["Plaintext"]
    return plaintext.decode()
