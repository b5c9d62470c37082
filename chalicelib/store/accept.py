"""The accept path's two table requests, made with the low-level client.

Before its 202 a webhook reads its partner (when the warm cache is cold) and puts its inbox item;
nothing else. These two are written without PynamoDB, whose import and model classes would be
most of a cold start's store cost, in the exact shapes `models.PartnerItem` and
`models.InboxItem` read and write (`tests/functional/test_store_shapes.py` checks both round
trips). Everything else in the store goes through the models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import aws, clock, envelope
from chalicelib.settings import get_settings

PENDING_QUEUE = "PENDING#INBOX"
STORED_TIME = "%Y-%m-%dT%H:%M:%S.%f+0000"  # PynamoDB's UTCDateTimeAttribute


def stored_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime(STORED_TIME)


def read_time(value: dict[str, Any] | None) -> datetime | None:
    """A stored UTCDateTimeAttribute (absent or NULL: None)."""
    if not value or "S" not in value:
        return None
    return datetime.fromisoformat(value["S"])


@dataclass(frozen=True)
class InboxRef:
    partner_id: str
    webhook_id: str

    @property
    def key(self) -> tuple[str, str]:
        return f"INBOX#{self.partner_id}#{self.webhook_id}", "INBOX"


@dataclass(frozen=True)
class Accepted:
    pass


@dataclass(frozen=True)
class Existing:
    body_sha256: str


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


def partner_key(partner_id: str) -> tuple[str, str]:
    return f"PARTNER#{partner_id}", "PARTNER"


def get_partner(partner_id: str) -> StoredPartner | None:
    """The partner item as `PartnerItem` wrote it (one consistent GetItem), or None."""
    pk, sk = partner_key(partner_id)
    found = aws.client("dynamodb").get_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": pk}, "sk": {"S": sk}},
        ConsistentRead=True,
    )
    item = found.get("Item")
    if item is None or item.get("et", {}).get("S") != "partner":
        return None
    secrets = []
    for entry in item.get("secrets", {}).get("L", []):
        fields = entry["M"]
        created = read_time(fields.get("created_at"))
        if created is None:
            raise ValueError(f"partner {partner_id}: a stored secret without its creation time")
        secrets.append(StoredSecret(fields["ciphertext"]["S"], created, read_time(fields.get("retires_at"))))
    name = item.get("name", {}).get("S")
    return StoredPartner(item["partner_id"]["S"], item["kind"]["S"], name, tuple(secrets))


def record(ref: InboxRef, event_type: str, body: str, body_sha256: str, now: datetime) -> Accepted | Existing:
    """Store an accepted webhook unless its id is already known; one DynamoDB request.

    It has no TTL yet: it gets one when its outcome is final (an event not yet applied is never
    deleted).

    """
    pk, sk = ref.key
    received = clock.iso(now)
    item = {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "et": {"S": "inbox"},
        "partner_id": {"S": ref.partner_id},
        "webhook_id": {"S": ref.webhook_id},
        "event_type": {"S": event_type},
        "body": {"S": envelope.seal(body)},  # as models.InboxItem.body (a SealedAttribute)
        "body_sha256": {"S": body_sha256},
        "received_at": {"S": stored_time(now)},
        "status": {"S": "pending"},
        "gsi1pk": {"S": PENDING_QUEUE},
        "gsi1sk": {"S": f"{received}#{pk}"},
    }
    ddb = aws.client("dynamodb")
    try:
        ddb.put_item(
            TableName=get_settings().table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ddb.exceptions.ConditionalCheckFailedException as exc:
        old = exc.response.get("Item") or {}
        return Existing(body_sha256=old.get("body_sha256", {}).get("S", ""))
    return Accepted()
