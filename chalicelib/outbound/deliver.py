"""Deliver one outbox message to SNS, once.

Powertools idempotency guards the publish: two concurrent deliveries of the same message (a
stream record and a sweeper re-drive, or an SQS redelivery) publish it once. A crash between
publish and bookkeeping can still repeat it: delivery is at-least-once, never lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chalicelib import aws, clock, runtime
from chalicelib.settings import get_settings
from chalicelib.store import outbox

IDEMPOTENCY_TTL = timedelta(days=7)
_guarded: Callable[..., Any] | None = None
_config: Any = None


def _attributes(attributes: dict[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if isinstance(value, list):
            out[name] = {"DataType": "String.Array", "StringValue": json.dumps(value)}
        else:
            out[name] = {"DataType": "String", "StringValue": str(value)}
    return out


def publish(message: outbox.OutboxItem) -> str:
    """Send one stored message; returns the SNS message id."""
    sns = aws.client("sns")
    if message.channel == "sms":
        attrs = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        out = sns.publish(PhoneNumber=message.target, Message=message.message, MessageAttributes=attrs)
    else:
        out = sns.publish(
            TopicArn=get_settings().topics[message.target],
            Message=message.message,
            MessageAttributes=_attributes(message.attributes),
        )
    message_id: str = out["MessageId"]
    return message_id


def _deliver(outbox_id: str) -> dict[str, str]:
    item = outbox.get(outbox_id)
    if item is None:
        raise LookupError(f"outbox message {outbox_id} not found")
    if item.status == "delivered":
        return {"outbox_id": outbox_id, "status": "already_delivered"}
    message_id = publish(item)
    outbox.mark_delivered(outbox_id, clock.now())
    return {"outbox_id": outbox_id, "status": "delivered", "message_id": message_id}


def _build_guard() -> Callable[..., Any]:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#outbox",
        expiry_attr="expires_at",
        boto3_client=aws.client("dynamodb"),
    )
    global _config
    config = _config = IdempotencyConfig(expires_after_seconds=int(IDEMPOTENCY_TTL.total_seconds()))

    @idempotent_function(data_keyword_argument="ref", persistence_store=persistence, config=config)
    def deliver_once(ref: dict[str, str]) -> dict[str, str]:
        return _deliver(ref["outbox_id"])

    return deliver_once


def deliver(outbox_id: str, lambda_context: Any = None) -> dict[str, str]:
    """Publish one outbox message unless it was already published (or is being published)."""
    global _guarded
    if _guarded is None:
        _guarded = _build_guard()
    if lambda_context is not None:
        # Lets Powertools expire an in-progress record when this invocation times out.
        _config.register_lambda_context(lambda_context)
    result: dict[str, str] = _guarded(ref={"outbox_id": outbox_id})
    return result


@runtime.keeps_state
def reset() -> None:
    """Forget the idempotency layer (it holds a client bound to one endpoint)."""
    global _guarded, _config
    _guarded = _config = None
