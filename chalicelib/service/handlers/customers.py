"""The sending dealer's own customers: created on first mention, preferences kept."""

from __future__ import annotations

from typing import Any

from chalicelib.events.care import PREFERENCE_FIELDS, CustomerPreferencesUpdated
from chalicelib.events.sales import NegotiationRecorded, TestDriveCompleted
from chalicelib.service import reminders
from chalicelib.service.handlers import Context, Effects, handles
from chalicelib.service.ownership import Target
from chalicelib.store import records


@handles(TestDriveCompleted, NegotiationRecorded)
def on_customer_mentioned(ctx: Context, data: Any, target: Target, effects: Effects) -> None:
    """The dealer's customer of that id exists from its first mention on (its contact comes with
    the delivery)."""
    if target.dealer_id is not None:
        records.update_customer(target.dealer_id, data.customer_id, {}, ctx.now)


@handles(CustomerPreferencesUpdated)
def on_preferences(ctx: Context, data: CustomerPreferencesUpdated, target: Target, effects: Effects) -> None:
    """What the customer changed; absent fields stay as they were."""
    if target.dealer_id is None:
        return
    changes = {name: getattr(data, name) for name in PREFERENCE_FIELDS}
    if data.birthday is not None:
        changes["birthday"] = data.birthday.isoformat()
        effects.puts.append(
            reminders.birthday_reminder(target.dealer_id, data.customer_id, data.birthday, ctx.now)
        )
    records.update_customer(target.dealer_id, data.customer_id, changes, ctx.now)
