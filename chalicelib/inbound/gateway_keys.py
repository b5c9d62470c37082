"""The payment gateways' keys as the notification routes use them: unsealed once, cached per
warm Lambda for a minute (a configuration change is seen within it, or at once after a failure)."""

from __future__ import annotations

import threading
import time
from typing import Any

from chalicelib import clock, runtime
from chalicelib.inbound import vault
from chalicelib.inbound.gateways import AlipayKeys, WechatKeys
from chalicelib.store import gateways as stored

CACHE_SECONDS = 60.0
ACTIVE_PLATFORM_KEYS = 3  # WeChat rotates platform certificates with an overlap
APIV3_KEY_BYTES = 32
_lock = threading.Lock()
_cache: dict[str, tuple[float, Any]] = {}


def _context(gateway: str) -> str:
    return f"gateway:{gateway}"  # the KMS encryption context: a sealed key opens only for its gateway


def configure_wechatpay(mchid: str, apiv3_key: str, serial: str, public_key_pem: str) -> dict[str, Any]:
    """Store WeChat Pay's merchant id, APIv3 key (sealed) and a platform public key."""
    from chalicelib.inbound.gateways import load_public_key

    if len(apiv3_key.encode()) != APIV3_KEY_BYTES:
        raise ValueError(f"the APIv3 key is {APIV3_KEY_BYTES} bytes")
    if not mchid.strip() or not serial.strip():
        raise ValueError("give the merchant id and the platform key's serial")
    load_public_key(public_key_pem)  # a bad key is refused now, not at the first payment
    sealed = vault.seal(_context("wechatpay"), apiv3_key)
    found = stored.configure(
        "wechatpay", mchid, sealed, serial, public_key_pem, clock.now(), ACTIVE_PLATFORM_KEYS
    )
    forget()
    return {
        "gateway": "wechatpay",
        "mchid": found.merchant_id,
        "platform_serials": [s for s, _ in found.platform_keys],
    }


def configure_alipay(app_id: str, public_key_pem: str) -> dict[str, Any]:
    """Store Alipay's app id and Alipay's public key (the newest only: Alipay has one)."""
    from chalicelib.inbound.gateways import load_public_key

    if not app_id.strip():
        raise ValueError("give the app id")
    load_public_key(public_key_pem)
    found = stored.configure("alipay", app_id, None, "alipay", public_key_pem, clock.now(), 1)
    forget()
    return {"gateway": "alipay", "app_id": found.merchant_id}


def _cached(gateway: str, fresh: bool) -> Any:
    with _lock:
        hit = _cache.get(gateway)
    if hit is not None and not fresh and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    found = stored.get(gateway)
    keys: Any = None
    if found is not None and gateway == "wechatpay" and found.sealed_key:
        apiv3 = vault.unseal(_context(gateway), found.sealed_key).encode()
        keys = WechatKeys(found.merchant_id, apiv3, dict(found.platform_keys))
    elif found is not None and gateway == "alipay" and found.platform_keys:
        keys = AlipayKeys(found.merchant_id, found.platform_keys[-1][1])
    if keys is not None:
        with _lock:
            _cache[gateway] = (time.monotonic(), keys)
    return keys


def wechatpay(fresh: bool = False) -> WechatKeys | None:
    found: WechatKeys | None = _cached("wechatpay", fresh)
    return found


def alipay(fresh: bool = False) -> AlipayKeys | None:
    found: AlipayKeys | None = _cached("alipay", fresh)
    return found


@runtime.keeps_state
def forget() -> None:
    with _lock:
        _cache.clear()
