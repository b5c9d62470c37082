"""Partner and API-key items (the accept path reads partners in `accept`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.store import bind
from chalicelib.store.accept import StoredSecret
from chalicelib.store.accept import partner_key as _key
from chalicelib.store.models import ApiKeyItem, PartnerItem, SecretEntry

DIRECTORY = "PARTNERS"  # every partner also sits here in the gsi1 index: `clm partner list`


class PartnerExists(Exception):
    pass


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
        gsi1pk=DIRECTORY,
        gsi1sk=partner_id,
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


@dataclass(frozen=True)
class Listed:
    partner_id: str
    kind: str
    name: str | None
    created_at: datetime
    active_secrets: int


def list_partners(now: datetime) -> list[Listed]:
    """Every partner, by id (one index partition; partners are few)."""
    bind()
    out = []
    for item in PartnerItem.due_index.query(DIRECTORY):
        if isinstance(item, PartnerItem):
            active = sum(1 for s in item.secrets if s.retires_at is None or s.retires_at > now)
            out.append(Listed(item.partner_id, item.kind, item.name, item.created_at, active))
    return out
