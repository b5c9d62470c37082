"""Payment gateways' configuration items (`clm gateway configure`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib.store import bind
from chalicelib.store.models import GatewayItem, PlatformKey


@dataclass(frozen=True)
class StoredGateway:
    gateway: str
    merchant_id: str
    sealed_key: str | None
    platform_keys: tuple[tuple[str, str], ...]  # (serial, PEM), newest last


def _key(gateway: str) -> tuple[str, str]:
    return f"GATEWAY#{gateway}", "CONFIG"


def get(gateway: str) -> StoredGateway | None:
    bind()
    try:
        item = GatewayItem.get(*_key(gateway), consistent_read=True)
    except GatewayItem.DoesNotExist:
        return None
    keys = tuple((k.serial, k.public_key) for k in item.platform_keys)
    return StoredGateway(item.gateway, item.merchant_id, item.sealed_key, keys)


def configure(
    gateway: str,
    merchant_id: str,
    sealed_key: str | None,
    serial: str,
    public_key: str,
    now: datetime,
    keep: int,
) -> StoredGateway:
    """Set the merchant id (and sealed key), and add the public key under `serial` (replacing one
    of the same serial); the `keep` newest stay active, so a rotation needs no downtime."""
    bind()
    current = get(gateway)
    kept = [(s, k) for s, k in (current.platform_keys if current else ()) if s != serial]
    keys = [*kept, (serial, public_key)][-keep:]
    GatewayItem(
        *_key(gateway),
        gateway=gateway,
        merchant_id=merchant_id,
        sealed_key=sealed_key,
        platform_keys=[PlatformKey(serial=s, public_key=k, added_at=now) for s, k in keys],
        updated_at=now,
    ).save()
    found = get(gateway)
    assert found is not None
    return found
