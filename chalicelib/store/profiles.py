"""Preference-tag signals and tags of one dealer's customer, and the dealer's tag counts.

Each event that tags read writes its own signal item under the customer (so two events never
overwrite each other's), then bumps the customer's `signals_rev`. Whoever bumped it last reads
every signal written before, so the tags computed from the highest revision are complete; the
customer's `tags` only ever take a newer revision, and so does each count membership.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import clock
from chalicelib.store import bind, conditional_update, records
from chalicelib.store.models import CustomerItem, TagMemberItem, TagSignalItem

HISTORY_KEPT = 200  # a profile's tag history keeps its latest changes


def _signal_key(kind: str, key: str) -> str:
    return f"SIGNAL#{kind}#{key}"


def note_signal(
    dealer_id: str, customer_id: str, kind: str, key: str, at: datetime, data: dict[str, Any]
) -> CustomerItem | None:
    """Keep what an event said, unless a later one of the same key is kept; then bump the
    customer's signals revision: the customer as it now is (None: no such customer)."""
    bind()
    pk = records.customer_pk(dealer_id, customer_id)
    item = TagSignalItem(pk, _signal_key(kind, key), kind=kind, at=at, data=data)
    newer_kept = TagSignalItem.at > at
    from pynamodb.exceptions import PutError

    try:
        item.save(condition=TagSignalItem.pk.does_not_exist() | ~newer_kept)
    except PutError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
    return bump(dealer_id, customer_id)


def bump(dealer_id: str, customer_id: str) -> CustomerItem | None:
    """The customer with its next signals revision, as it now is (None: no such customer)."""
    bind()
    customer = CustomerItem(records.customer_pk(dealer_id, customer_id), "CUSTOMER")
    if not conditional_update(customer, [CustomerItem.signals_rev.add(1)], CustomerItem.pk.exists()):
        return None
    return customer


def signals(dealer_id: str, customer_id: str) -> list[TagSignalItem]:
    bind()
    pk = records.customer_pk(dealer_id, customer_id)
    found = TagSignalItem.query(pk, TagSignalItem.sk.startswith("SIGNAL#"), consistent_read=True)
    return [i for i in found if isinstance(i, TagSignalItem)]


def save_tags(customer: CustomerItem, rev: int, tags: dict[str, Any], changes: list[dict[str, Any]]) -> bool:
    """Carry `tags` as of revision `rev`, unless the customer changed since it was read (then the
    caller reads it again) or a newer revision is saved."""
    bind()
    history = [*(customer.tag_history or []), *changes][-HISTORY_KEPT:]
    item = CustomerItem(customer.pk, customer.sk)
    unchanged = (
        CustomerItem.tags_rev.does_not_exist()
        if customer.tags_rev is None
        else CustomerItem.tags_rev == customer.tags_rev
    )
    actions = [
        CustomerItem.tags.set(tags),
        CustomerItem.tag_history.set(history),
        CustomerItem.tags_rev.set(rev),
    ]
    return conditional_update(item, actions, unchanged & (CustomerItem.pk.exists()))


def _tags_pk(dealer_id: str) -> str:
    return f"TAGS#{dealer_id}"


def sync_members(dealer_id: str, customer_id: str, rev: int, carried: set[str], tags: list[str]) -> None:
    """The dealer's count memberships of `tags` for this customer as revision `rev` has them (an
    older revision never overwrites a newer one), then noted on the customer as done."""
    bind()
    for tag in sorted(set(tags)):
        member = TagMemberItem(_tags_pk(dealer_id), f"{tag}#{customer_id}")
        actions = [
            TagMemberItem.entity.set(TagMemberItem),
            TagMemberItem.tag.set(tag),
            TagMemberItem.customer_id.set(customer_id),
            TagMemberItem.carried.set(tag in carried),
            TagMemberItem.rev.set(rev),
        ]
        conditional_update(member, actions, TagMemberItem.rev.does_not_exist() | (TagMemberItem.rev < rev))
    customer = CustomerItem(records.customer_pk(dealer_id, customer_id), "CUSTOMER")
    newer = CustomerItem.members_rev.does_not_exist() | (CustomerItem.members_rev < rev)
    conditional_update(customer, [CustomerItem.members_rev.set(rev)], newer & CustomerItem.pk.exists())


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
