"""Preference-tag signals and tags of one dealer's customer, and the dealer's tag counts.

Each event that tags read leaves a signal item under the customer, written with the event's own
effects (no request of its own) and keyed by what it is about and when, so that events applied in
any order, or twice, leave the same signals. The table stream hands each new signal to a refresh:
it reads the customer and every signal in one query and saves the tags, their history and the
count memberships that changed in one transaction, under the customer's `tags_rev` (optimistic:
a refresh that read before another saved reads again). Every signal is written before its own
refresh reads, so the last save always saw them all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.store import bind, records
from chalicelib.store.models import CustomerItem, Item, TagMemberItem, TagSignalItem

HISTORY_KEPT = 200  # a profile's tag history keeps its latest changes
TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit
_SIGNALS = "SIGNAL#"


def signal(
    dealer_id: str, customer_id: str, kind: str, ref: str, at: datetime, data: dict[str, Any]
) -> TagSignalItem:
    """The signal of what an event said about `ref` (a model, a VIN, a repair order) at `at`: one
    item per event, to go out with the event's effects."""
    return TagSignalItem(
        records.customer_pk(dealer_id, customer_id),
        f"{_SIGNALS}{kind}#{ref}#{clock.iso(at)}",
        kind=kind,
        ref=ref,
        at=at,
        data=data,
    )


def ref_of(item: TagSignalItem) -> str:
    """What the signal is about (signals written before `ref` was kept: the rest of their key)."""
    return item.ref or item.sk.split("#", 2)[2]


def customer_of_signal(pk: str, sk: str) -> tuple[str, str] | None:
    """(dealer, customer) of a signal's key, None for any other key (ids never contain '#')."""
    if not sk.startswith(_SIGNALS):
        return None
    kind, _, rest = pk.partition("#")
    dealer_id, _, customer_id = rest.partition("#")
    if kind != "CUST" or not dealer_id or not customer_id:
        return None
    return dealer_id, customer_id


def read(dealer_id: str, customer_id: str) -> tuple[CustomerItem | None, list[TagSignalItem]]:
    """The customer and all its signals, in one consistent query (no filter: the keys tell them
    apart, and moto parses a filter of every item type slowly)."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    bind()
    customer: CustomerItem | None = None
    found: list[TagSignalItem] = []
    request: dict[str, Any] = {
        "TableName": get_settings().table_name,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ExpressionAttributeValues": {
            ":pk": {"S": records.customer_pk(dealer_id, customer_id)},
            ":first": {"S": "CUSTOMER"},
            ":last": {"S": _SIGNALS + "\U0010ffff"},
        },
        "ConsistentRead": True,
    }
    ddb = aws.client("dynamodb")
    while True:
        page = ddb.query(**request)
        for raw in page.get("Items", []):
            item = Item.from_raw_data(raw)
            if isinstance(item, CustomerItem):
                customer = item
            elif isinstance(item, TagSignalItem):
                found.append(item)
        if "LastEvaluatedKey" not in page:
            return customer, found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def save_tags(
    customer: CustomerItem,
    tags: dict[str, Any],
    changes: list[dict[str, Any]],
    members: dict[str, bool],
    superseded: list[TagSignalItem],
) -> bool:
    """In one transaction: the customer's tags and history, whether it carries each tag of
    `members` now, and the superseded signals gone; False (nothing written) when the customer's
    tags were saved by another refresh since `customer` was read."""
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    bind()
    unchanged = (
        CustomerItem.tags_rev.does_not_exist()
        if customer.tags_rev is None
        else CustomerItem.tags_rev == customer.tags_rev
    )
    history = [*(customer.tag_history or []), *changes][-HISTORY_KEPT:]
    dealer_id, customer_id = customer.dealer_id, customer.customer_id
    connection: Any = CustomerItem._get_connection().connection
    try:
        with TransactWrite(connection=connection) as tx:
            tx.update(
                CustomerItem(customer.pk, customer.sk),
                actions=[
                    CustomerItem.tags.set(tags),
                    CustomerItem.tag_history.set(history),
                    CustomerItem.tags_rev.set(int(customer.tags_rev or 0) + 1),
                ],
                condition=unchanged & CustomerItem.pk.exists(),
            )
            for tag, carried in sorted(members.items()):
                tx.save(
                    TagMemberItem(
                        _tags_pk(dealer_id),
                        f"{tag}#{customer_id}",
                        tag=tag,
                        customer_id=customer_id,
                        carried=carried,
                    )
                )
            for item in superseded[: TRANSACTION_ITEMS - 1 - len(members)]:
                tx.delete(TagSignalItem(item.pk, item.sk))
    except TransactWriteError as exc:
        # Only the customer's update carries a condition (PynamoDB orders the items its own way).
        if any(r is not None and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons):
            return False
        raise
    return True


def _tags_pk(dealer_id: str) -> str:
    return f"TAGS#{dealer_id}"


def counts(dealer_id: str) -> dict[str, int]:
    """How many of the dealer's customers carry each tag now."""
    bind()
    found: dict[str, int] = {}
    for member in TagMemberItem.query(_tags_pk(dealer_id), consistent_read=True):
        if isinstance(member, TagMemberItem):
            found[member.tag] = found.get(member.tag, 0) + (1 if member.carried else 0)
    return found


def history_entry(tag: str, change: str, at: datetime) -> dict[str, Any]:
    return {"tag": tag, "change": change, "at": clock.iso(at)}
