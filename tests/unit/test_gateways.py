"""Payment-gateway notifications built the way each gateway builds them (generated RSA keys,
AES-256-GCM), verified by ours and cross-checked against `wechatpayv3` and `python-alipay-sdk`."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.inbound import gateways
from chalicelib.inbound.gateways import GatewayRefused

NOW = datetime(2026, 11, 20, 2, 5, tzinfo=UTC)
APIV3_KEY = b"0123456789abcdef0123456789abcdef"  # 32 bytes, as WeChat's merchant platform sets it


def keypair() -> tuple[Any, str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return private, public_pem, private_pem


PLATFORM, PLATFORM_PEM, _ = keypair()
OTHER, OTHER_PEM, _ = keypair()
KEYS = gateways.WechatKeys("1900000109", APIV3_KEY, {"SERIAL-A": PLATFORM_PEM, "SERIAL-B": OTHER_PEM})


def transaction(**changes: Any) -> dict[str, Any]:
    found = {
        "mchid": "1900000109",
        "appid": "wxd678efh567hg6787",
        "out_trade_no": "L20261120001P01",
        "transaction_id": "4200000000202611200000000001",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-20T10:00:00+08:00",
        "amount": {"total": 350000, "currency": "CNY"},
    }
    found.update(changes)
    return found


def wechat_notification(
    key: Any = PLATFORM,
    serial: str = "SERIAL-A",
    at: datetime = NOW,
    apiv3_key: bytes = APIV3_KEY,
    **changes: Any,
) -> tuple[dict[str, str], bytes]:
    """What WeChat Pay sends: the transaction encrypted under the APIv3 key, the body signed."""
    from wechatpayv3.utils import rsa_sign

    nonce = base64.b64encode(os.urandom(9)).decode()[:12]
    plain = json.dumps(transaction(**changes), ensure_ascii=False).encode()
    ciphertext = base64.b64encode(AESGCM(apiv3_key).encrypt(nonce.encode(), plain, b"transaction")).decode()
    body = json.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": "2026-11-20T10:00:05+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": "transaction",
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    ).encode()
    timestamp, header_nonce = str(int(at.timestamp())), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    signature = rsa_sign(key, f"{timestamp}\n{header_nonce}\n{body.decode()}\n")
    headers = {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return headers, body


def test_a_wechat_notification_verifies_and_decrypts_as_the_reference_library_reads_it() -> None:
    from wechatpayv3.utils import aes_decrypt, rsa_verify

    headers, body = wechat_notification()
    notice = gateways.verify_wechat(headers, body, KEYS, NOW)
    assert notice.event_type == "TRANSACTION.SUCCESS" and not notice.foreign
    assert (
        notice.resource["out_trade_no"] == "L20261120001P01" and notice.resource["amount"]["total"] == 350000
    )
    public = serialization.load_pem_public_key(PLATFORM_PEM.encode())
    ts, nonce, sig = (
        headers["Wechatpay-Timestamp"],
        headers["Wechatpay-Nonce"],
        headers["Wechatpay-Signature"],
    )
    assert rsa_verify(ts, nonce, body.decode(), sig, public)
    resource = json.loads(body)["resource"]
    theirs = aes_decrypt(
        resource["nonce"], resource["ciphertext"], resource["associated_data"], APIV3_KEY.decode()
    )
    assert json.loads(theirs) == notice.resource


def test_a_rotated_platform_key_verifies_under_its_own_serial() -> None:
    headers, body = wechat_notification(key=OTHER, serial="SERIAL-B")
    assert gateways.verify_wechat(headers, body, KEYS, NOW).resource["transaction_id"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("stale", "stale_timestamp"),
        ("future", "stale_timestamp"),
        ("probe", "signature_probe"),
        ("tampered", "bad_signature"),
        ("wrong_key", "bad_signature"),
        ("unknown_serial", "unknown_serial"),
        ("signature_type", "signature_type"),
        ("wrong_apiv3_key", "undecryptable_resource"),
        ("missing_header", "missing_headers"),
    ],
)
def test_a_wechat_notification_that_is_not_wechat_s_is_refused(case: str, reason: str) -> None:
    at = {
        "stale": NOW - timedelta(minutes=5, seconds=1),
        "future": NOW + timedelta(minutes=5, seconds=1),
    }.get(case, NOW)
    headers, body = wechat_notification(
        key=OTHER if case == "wrong_key" else PLATFORM,
        at=at,
        apiv3_key=b"f" * 32 if case == "wrong_apiv3_key" else APIV3_KEY,
    )
    if case == "probe":
        headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    if case == "tampered":
        body = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESS ")
    if case == "unknown_serial":
        headers["Wechatpay-Serial"] = "SERIAL-Z"
    if case == "signature_type":
        headers["Wechatpay-Signature-Type"] = "WECHATPAY2-SM2-WITH-SM3"
    if case == "missing_header":
        del headers["Wechatpay-Nonce"]
    with pytest.raises(GatewayRefused) as refused:
        gateways.verify_wechat(headers, body, KEYS, NOW)
    assert refused.value.reason == reason


def test_a_wechat_notification_at_the_tolerance_edge_and_for_another_merchant() -> None:
    headers, body = wechat_notification(at=NOW - timedelta(minutes=5))
    assert gateways.verify_wechat(headers, body, KEYS, NOW)
    headers, body = wechat_notification(mchid="1900000999")
    assert gateways.verify_wechat(headers, body, KEYS, NOW).foreign  # signed, not ours: kept for ops


ALIPAY, ALIPAY_PEM, ALIPAY_PRIVATE_PEM = keypair()
APP, APP_PEM, APP_PRIVATE_PEM = keypair()
ALIPAY_KEYS = gateways.AlipayKeys("2021000000000001", ALIPAY_PEM)


def alipay_sdk(private_pem: str = ALIPAY_PRIVATE_PEM) -> Any:
    """The SDK as Alipay's side would sign with its private key (and verify with its public one)."""
    from alipay import AliPay

    return AliPay("2021000000000001", app_private_key_string=private_pem, alipay_public_key_string=ALIPAY_PEM)


def alipay_notification(
    private_pem: str = ALIPAY_PRIVATE_PEM, **changes: str
) -> tuple[dict[str, str], bytes]:
    params = {
        "notify_time": "2026-11-20 10:00:05",
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "app_id": "2021000000000001",
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": "2026112022001400000000000001",
        "out_trade_no": "L20261120001P01",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "3500.00",
        "gmt_payment": "2026-11-20 10:00:00",
        "subject": "车贷第1期 还款",
    }
    params.update(changes)
    sdk = alipay_sdk(private_pem)
    unsigned = "&".join(f"{k}={v}" for k, v in sdk._ordered_data(dict(params)))
    signed = {**params, "sign": sdk._sign(unsigned), "sign_type": "RSA2"}
    return signed, urlencode(signed).encode()


def test_an_alipay_notification_verifies_as_the_reference_sdk_verifies_it() -> None:
    params, body = alipay_notification()
    notice = gateways.verify_alipay(body, ALIPAY_KEYS)
    assert notice.params["out_trade_no"] == "L20261120001P01" and not notice.foreign
    assert notice.params["subject"] == "车贷第1期 还款"  # URL-decoded as UTF-8
    data = dict(params)
    signature = data.pop("sign")
    assert alipay_sdk().verify(data, signature)
    assert gateways.alipay_signed_content(params) == "&".join(
        f"{k}={v}"
        for k, v in alipay_sdk()._ordered_data(
            {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
        )
    )


@pytest.mark.parametrize(
    "case", ["tampered_amount", "wrong_key", "no_sign", "sign_type", "repeated", "not_a_form"]
)
def test_an_alipay_notification_that_is_not_alipay_s_is_refused(case: str) -> None:
    params, body = alipay_notification(
        private_pem=APP_PRIVATE_PEM if case == "wrong_key" else ALIPAY_PRIVATE_PEM
    )
    if case == "tampered_amount":
        body = urlencode({**params, "total_amount": "1.00"}).encode()
    if case == "no_sign":
        body = urlencode({k: v for k, v in params.items() if k != "sign"}).encode()
    if case == "sign_type":
        body = urlencode({**params, "sign_type": "RSA"}).encode()
    if case == "repeated":
        body += b"&total_amount=1.00"
    if case == "not_a_form":
        body = "total_amount=¥1".encode()
    with pytest.raises(GatewayRefused):
        gateways.verify_alipay(body, ALIPAY_KEYS)


def test_an_alipay_notification_for_another_app_is_verified_but_foreign() -> None:
    _, body = alipay_notification(app_id="2021000000009999")
    assert gateways.verify_alipay(body, ALIPAY_KEYS).foreign
