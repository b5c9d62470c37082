"""Payment gateways' notifications, verified over the raw bytes before anything is parsed
(DESIGN.md §5): WeChat Pay API v3 and Alipay. No AWS here: keys come in as arguments.

WeChat Pay v3 signs `"{Wechatpay-Timestamp}\\n{Wechatpay-Nonce}\\n{body}\\n"` with RSA-SHA256
(PKCS#1 v1.5) under the platform key named by `Wechatpay-Serial`, and encrypts the transaction in
`resource` with AEAD_AES_256_GCM under the merchant's APIv3 key. Alipay signs the notification's
sorted `key=value` pairs, `sign` and `sign_type` left out, with RSA2 (RSA-SHA256) under Alipay's
key.

Every refusal is a `GatewayRefused` whose `reason` is for logs and ops only: the gateway is told
only that it failed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

TOLERANCE = timedelta(minutes=5)
WECHAT_SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
WECHAT_PROBE = "WECHATPAY/SIGNTEST/"
WECHAT_ALGORITHM = "AEAD_AES_256_GCM"


class GatewayRefused(Exception):
    """The notification is not one the gateway sent (or not one we can read): never applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WechatKeys:
    mchid: str
    apiv3_key: bytes  # 32 bytes
    platform_keys: Mapping[str, str]  # serial -> PEM public key; several during a rotation


@dataclass(frozen=True)
class WechatNotice:
    event_type: str
    notification_id: str
    resource: dict[str, Any]  # the decrypted transaction
    foreign: bool  # signed by WeChat, but for another merchant (`mchid`): kept, raised to ops


def load_public_key(pem: str) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise GatewayRefused("bad_public_key") from exc


def _rsa_sha256_valid(pem: str, message: bytes, signature_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        load_public_key(pem).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower(), "")


def verify_wechat(headers: Mapping[str, str], body: bytes, keys: WechatKeys, now: datetime) -> WechatNotice:
    """A WeChat Pay v3 notification, verified and decrypted; `GatewayRefused` otherwise."""
    signature = _header(headers, "Wechatpay-Signature")
    timestamp = _header(headers, "Wechatpay-Timestamp")
    nonce = _header(headers, "Wechatpay-Nonce")
    serial = _header(headers, "Wechatpay-Serial")
    kind = _header(headers, "Wechatpay-Signature-Type")
    if not (signature and timestamp and nonce and serial):
        raise GatewayRefused("missing_headers")
    if signature.startswith(WECHAT_PROBE):
        raise GatewayRefused("signature_probe")  # WeChat checks that we refuse these
    if kind and kind != WECHAT_SIGNATURE_TYPE:
        raise GatewayRefused("signature_type")
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError) as exc:
        raise GatewayRefused("bad_timestamp") from exc
    if abs(now - sent_at) > TOLERANCE:
        raise GatewayRefused("stale_timestamp")
    pem = keys.platform_keys.get(serial)
    if pem is None:
        raise GatewayRefused("unknown_serial")
    if not _rsa_sha256_valid(pem, b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body), signature):
        raise GatewayRefused("bad_signature")
    try:
        notice = json.loads(body)
        resource = notice["resource"]
        if resource.get("algorithm") != WECHAT_ALGORITHM:
            raise GatewayRefused("algorithm")
        plain = _aes_gcm_decrypt(
            keys.apiv3_key, resource["nonce"], resource["ciphertext"], resource.get("associated_data") or ""
        )
        transaction = json.loads(plain)
        if not isinstance(transaction, dict):
            raise GatewayRefused("unreadable_resource")
        return WechatNotice(
            str(notice.get("event_type", "")),
            str(notice.get("id", "")),
            transaction,
            str(transaction.get("mchid", "")) != keys.mchid,
        )
    except GatewayRefused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GatewayRefused("unreadable_resource") from exc


def _aes_gcm_decrypt(key: bytes, nonce: str, ciphertext_b64: str, associated_data: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) != 32:
        raise GatewayRefused("bad_apiv3_key")
    try:
        return AESGCM(key).decrypt(nonce.encode(), base64.b64decode(ciphertext_b64), associated_data.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise GatewayRefused("undecryptable_resource") from exc


@dataclass(frozen=True)
class AlipayKeys:
    app_id: str
    public_key: str  # Alipay's PEM public key


def alipay_signed_content(params: Mapping[str, str]) -> str:
    """What Alipay signs: every parameter but `sign` and `sign_type`, sorted, as `k=v` joined by `&`."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def parse_alipay_form(body: bytes) -> dict[str, str]:
    """The form's parameters (URL-decoded, in the `charset` it declares; UTF-8 by default)."""
    try:
        raw = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise GatewayRefused("not_form_encoded") from exc
    charset = dict(parse_qsl(raw, keep_blank_values=True, encoding="latin-1")).get("charset") or "utf-8"
    try:
        pairs = parse_qsl(
            raw, keep_blank_values=True, strict_parsing=bool(raw), encoding=charset, errors="strict"
        )
    except (ValueError, LookupError, UnicodeDecodeError) as exc:
        raise GatewayRefused("bad_form") from exc
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise GatewayRefused("repeated_parameter")
        params[key] = value
    return params


@dataclass(frozen=True)
class AlipayNotice:
    params: dict[str, str]
    foreign: bool  # signed by Alipay, but for another app (`app_id`): kept, raised to ops


def verify_alipay(body: bytes, keys: AlipayKeys) -> AlipayNotice:
    """An Alipay asynchronous notification's parameters, verified; `GatewayRefused` otherwise."""
    params = parse_alipay_form(body)
    if params.get("sign_type", "RSA2") != "RSA2":
        raise GatewayRefused("sign_type")
    if not params.get("sign"):
        raise GatewayRefused("missing_sign")
    try:
        content = alipay_signed_content(params).encode(params.get("charset") or "utf-8")
    except (LookupError, UnicodeEncodeError) as exc:
        raise GatewayRefused("bad_charset") from exc
    if not _rsa_sha256_valid(keys.public_key, content, params["sign"]):
        raise GatewayRefused("bad_signature")
    return AlipayNotice(params, params.get("app_id") != keys.app_id)


@dataclass(frozen=True)
class Payment:
    """What a verified notification says was paid, in CLM's terms, whichever gateway sent it."""

    gateway: str  # wechatpay | alipay
    transaction_id: str  # the gateway's: the dedup key (resends are re-signed)
    payment_ref: str  # our order number (`out_trade_no`)
    amount_minor: int  # fen
    paid_at: datetime | None
    succeeded: bool  # a success (other trade states are acknowledged, not applied)
    foreign: bool  # for another merchant or app: kept and raised to ops, never applied


ALIPAY_ZONE = "Asia/Shanghai"  # Alipay writes `gmt_payment` in Beijing time, without an offset


def wechat_payment(notice: WechatNotice) -> Payment:
    """The payment a WeChat Pay notice reports; `GatewayRefused` when its fields are unreadable."""
    found = notice.resource
    try:
        amount = found["amount"]["total"]
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("amount.total is fen, an integer")
        paid_at = datetime.fromisoformat(found["success_time"]) if found.get("success_time") else None
        return Payment(
            "wechatpay",
            str(found["transaction_id"]),
            str(found["out_trade_no"]),
            amount,
            paid_at,
            notice.event_type == "TRANSACTION.SUCCESS" and found.get("trade_state") == "SUCCESS",
            notice.foreign,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GatewayRefused("unreadable_transaction") from exc


def alipay_payment(notice: AlipayNotice) -> Payment:
    """The payment an Alipay notice reports (`total_amount` in yuan, 2 decimals, to fen)."""
    from decimal import Decimal, InvalidOperation
    from zoneinfo import ZoneInfo

    found = notice.params
    try:
        yuan = Decimal(found["total_amount"])
        if yuan.as_tuple().exponent < -2 or yuan < 0:  # type: ignore[operator]
            raise ValueError("total_amount is yuan with at most 2 decimals")
        paid = found.get("gmt_payment")
        paid_at = datetime.fromisoformat(paid).replace(tzinfo=ZoneInfo(ALIPAY_ZONE)) if paid else None
        return Payment(
            "alipay",
            found["trade_no"],
            found["out_trade_no"],
            int(yuan * 100),
            paid_at,
            found.get("trade_status") in ("TRADE_SUCCESS", "TRADE_FINISHED"),
            notice.foreign,
        )
    except (KeyError, ValueError, InvalidOperation) as exc:
        raise GatewayRefused("unreadable_transaction") from exc
