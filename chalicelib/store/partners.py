"""Partner and API-key items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.store import bind
from chalicelib.store.models import ApiKeyItem, PartnerItem, SecretEntry


class PartnerExists(Exception):
    pass


@dataclass(frozen=True)
class StoredSecret:
    sealed: str
    created_at: datetime
    retires_at: datetime | None


@dataclass(frozen=True)
class StoredPartner:
    partner_id: str
    kind: str
    name: str | None
    secrets: tuple[StoredSecret, ...]


def _key(partner_id: str) -> tuple[str, str]:
    return f"PARTNER#{partner_id}", "PARTNER"


def _to_stored(item: PartnerItem) -> StoredPartner:
    return StoredPartner(
        partner_id=item.partner_id,
        kind=item.kind,
        name=item.name,
        secrets=tuple(StoredSecret(s.ciphertext, s.created_at, s.retires_at) for s in item.secrets),
    )


def get_partner(partner_id: str) -> StoredPartner | None:
    bind()
    try:
        return _to_stored(PartnerItem.get(*_key(partner_id), consistent_read=True))
    except DoesNotExist:
        return None


def create_partner(partner_id: str, kind: str, name: str | None, sealed_secret: str, now: datetime) -> None:
    bind()
    pk, sk = _key(partner_id)
    item = PartnerItem(
        pk,
        sk,
        partner_id=partner_id,
        kind=kind,
        name=name,
        secrets=[SecretEntry(ciphertext=sealed_secret, created_at=now, retires_at=None)],
        created_at=now,
    )
    try:
        item.save(condition=PartnerItem.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise PartnerExists(partner_id) from exc
        raise


def replace_secrets(partner_id: str, secrets: list[StoredSecret]) -> None:
    """Write the partner's secret list (optimistic locking on the item's version)."""
    bind()
    item = PartnerItem.get(*_key(partner_id), consistent_read=True)
    item.secrets = [
        SecretEntry(ciphertext=s.sealed, created_at=s.created_at, retires_at=s.retires_at) for s in secrets
    ]
    item.save()


def put_api_key(key_hash: str, partner_id: str, now: datetime) -> None:
    bind()
    ApiKeyItem(f"APIKEY#{key_hash}", "APIKEY", partner_id=partner_id, created_at=now).save()


def partner_id_for_api_key(key_hash: str) -> str | None:
    bind()
    try:
        return ApiKeyItem.get(f"APIKEY#{key_hash}", "APIKEY").partner_id
    except DoesNotExist:
        return None
